"""The app served by uvicorn on a real socket: what only a real connection shows (slow clients,
bursts of connections, chunked and oversized bodies, a graceful stop)."""

from __future__ import annotations

import asyncio
import io
import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from test_service import JOIN, START, ZONE, Recorder, plan

from sopdsl.live import http as served
from sopdsl.live.auth import allowed_hosts
from sopdsl.live.clock import ManualClock
from sopdsl.live.runtime import Runtime
from sopdsl.live.service import Service

HEADERS = {"Content-Type": "application/json"}


@pytest.fixture
def service() -> Iterator[Service]:
    runtime = Runtime(plan(), "memory://", executors={"send": Recorder()}, clock=ManualClock(START))
    svc = Service(
        runtime,
        zone=ZONE,
        port=0,
        tick_every=0.05,
        log=io.StringIO(),
        allowed_hosts=allowed_hosts("127.0.0.1"),
    )
    svc.start()
    yield svc
    svc.stop()


def test_slow_connections_hold_no_thread_and_are_closed(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(served, "HEAD_TIMEOUT", 1.0)  # read when a connection is made
    before = threading.active_count()
    slow = []
    for _ in range(300):
        sock = socket.create_connection(("127.0.0.1", service.port), timeout=10)
        sock.sendall(b"POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the rest
        slow.append(sock)
    try:
        assert threading.active_count() <= before + 2  # the threadpool may start one; not one per connection
        answer = httpx.get(f"{service.url}/healthz", timeout=10)
        assert answer.status_code == 200
        time.sleep(1.5)
        closed = 0
        for sock in slow:
            sock.settimeout(2)
            try:
                closed += sock.recv(1) == b""
            except (ConnectionResetError, TimeoutError):
                closed += 0
        assert closed == len(slow)  # each closed by the head timeout
    finally:
        for sock in slow:
            sock.close()


def test_a_burst_of_connections_is_queued_not_reset(service: Service) -> None:
    socks = [socket.create_connection(("127.0.0.1", service.port), timeout=30) for _ in range(400)]
    try:
        for sock in socks:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        answers = []
        for sock in socks:
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
            answers.append(data.split(b"\r\n", 1)[0])
    finally:
        for sock in socks:
            sock.close()
    assert set(answers) == {b"HTTP/1.1 200 OK"}


def test_a_chunked_body_is_accepted(service: Service) -> None:
    def parts() -> Iterator[bytes]:
        text = json.dumps([JOIN, {**JOIN, "member": "m2"}]).encode()
        yield text[:10]
        yield text[10:]

    answer = httpx.post(f"{service.url}/events", content=parts(), headers=HEADERS, timeout=10)
    assert answer.request.headers.get("Transfer-Encoding") == "chunked"
    assert answer.status_code == 202 and answer.json()["accepted"] == 2


@pytest.mark.parametrize("chunked", [False, True])
def test_an_oversized_body_gets_a_413_the_client_receives(service: Service, chunked: bool) -> None:
    big = json.dumps([JOIN] * 80_000).encode()
    content = iter([big[i : i + 65536] for i in range(0, len(big), 65536)]) if chunked else big
    answer = httpx.post(f"{service.url}/events", content=content, headers=HEADERS, timeout=30)
    assert answer.status_code == 413
    assert "send fewer events per request" in answer.json()["error"]
    assert httpx.get(f"{service.url}/healthz", timeout=10).status_code == 200


def test_a_body_too_deep_or_a_huge_number_leaves_the_server_up(service: Service) -> None:
    for raw in ("[" * 200_000 + "]" * 200_000, '{"kind": "order", "data": {"amount": ' + "7" * 5000 + "}}"):
        answer = httpx.post(f"{service.url}/events", content=raw, headers=HEADERS, timeout=10)
        assert answer.status_code == 400
    assert isinstance(service.log, io.StringIO)
    assert "Traceback" not in service.log.getvalue()
    assert httpx.post(f"{service.url}/events", json=JOIN, timeout=10).status_code == 202


def test_a_stop_lets_the_request_in_progress_finish(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = service.submit_async
    entered = threading.Event()

    async def slow_submit(payload: object) -> tuple[int, dict[str, object]]:
        entered.set()
        await asyncio.sleep(0.5)
        return await real(payload)

    monkeypatch.setattr(service, "submit_async", slow_submit)
    found: list[int] = []
    poster = threading.Thread(
        target=lambda: found.append(httpx.post(f"{service.url}/events", json=JOIN, timeout=10).status_code)
    )
    poster.start()
    assert entered.wait(10)
    service._server.stop()  # stop listening while the request is being handled
    poster.join(10)
    assert found == [202]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{service.url}/healthz", timeout=2)


def test_an_address_in_use_is_an_os_error_not_an_exit(service: Service) -> None:
    other = Service(service.runtime, zone=ZONE, port=service.port, log=io.StringIO())
    with pytest.raises(OSError):
        other.start()
