"""`sopdsl run --fronts N` (fronts.py, front.py): HTTP front processes before the store process.

What a client would notice: the answers are those of a service without fronts, byte for byte
(stored, duplicates, refusals, auth, other endpoints, chunked bodies); a front killed mid-load is
replaced and every event is stored exactly once; a stop answers what was in flight.
"""

from __future__ import annotations

import io
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_service import JOIN, START, ZONE, Recorder, http, plan, start_service

from sopdsl.live.auth import allowed_hosts, parse_tokens
from sopdsl.live.clock import ManualClock
from sopdsl.live.fronts import Fronts
from sopdsl.live.runtime import Runtime
from sopdsl.live.service import Service

TOKEN = "t" * 24
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _service(tmp_path: Path, name: str, fronts: int) -> Service:
    runtime = Runtime(
        plan(), f"sqlite:///{tmp_path / name}", executors={"send": Recorder()}, clock=ManualClock(START)
    )
    return Service(
        runtime,
        zone=ZONE,
        port=0,
        tick_every=0.05,
        log=io.StringIO(),
        tokens=parse_tokens(f"{TOKEN} default", "tokens.txt"),
        allowed_hosts=allowed_hosts("127.0.0.1"),
        fronts=fronts,
    )


@pytest.fixture
def fronted(tmp_path: Path) -> Iterator[Service]:
    svc = _service(tmp_path, "fronted.db", 2)
    svc.start()
    yield svc
    svc.stop()


def _exchange(url: str) -> list[tuple[int, str, Any]]:
    """A client's session touching each kind of answer; (status, content type, body) of each."""
    event = {**JOIN, "id": "e1"}
    json_headers = {**AUTH, "Content-Type": "application/json"}
    asks: list[tuple[str, str, dict[str, str], bytes]] = [
        ("POST", "/events", json_headers, json.dumps(event).encode()),  # stored, with its action
        ("POST", "/events", json_headers, json.dumps(event).encode()),  # a duplicate
        ("POST", "/events", json_headers, json.dumps([{**JOIN, "id": "e2", "member": "m2"}, 7]).encode()),
        # The runtime refuses the second: the first goes in again on its own, and is stored.
        (
            "POST",
            "/events",
            json_headers,
            json.dumps([{**JOIN, "id": "e4", "member": "m4"}, {"kind": "x"}]).encode(),
        ),
        ("POST", "/events", json_headers, b'{"id": "x", '),  # not JSON
        ("POST", "/events", {**AUTH, "Content-Type": "text/plain"}, b"{}"),  # not declared JSON
        ("POST", "/events", {"Content-Type": "application/json"}, b"{}"),  # no token
        ("POST", "/events", {**json_headers, "Host": "evil.example"}, b"{}"),  # DNS rebinding
        ("POST", "/events?shard=other", json_headers, b"{}"),  # another shard
        # A number msgpack cannot carry: the front leaves the decoding to the store process.
        ("POST", "/events", json_headers, json.dumps({**JOIN, "id": "e3", "data": {"n": 10**30}}).encode()),
        ("POST", "/groups/g9", json_headers, b'{"tags": ["vip"]}'),  # the admin API
        ("GET", "/members/m1", AUTH, b""),
        ("GET", "/healthz", {}, b""),
        ("GET", "/nowhere", AUTH, b""),
    ]
    seen = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for method, path, headers, body in asks:
            answer = client.request(method, path, headers=headers, content=body or None)
            seen.append((answer.status_code, answer.headers.get("content-type", ""), answer.json()))
    return seen


def test_answers_through_fronts_are_the_services_own(tmp_path: Path) -> None:
    answers = []
    for name, fronts in (("alone.db", 0), ("fronted.db", 2)):
        svc = _service(tmp_path, name, fronts)
        svc.start()
        try:
            answers.append(_exchange(svc.url))
            metrics = httpx.get(f"{svc.url}/metrics", headers=AUTH, timeout=30).text
        finally:
            svc.stop()
        # Refusals are counted where the app runs, whichever process read the request.
        assert 'sopdsl_requests_refused_total{status="401"} 1.0' in metrics
    alone, fronted = answers
    assert fronted == alone
    stored, duplicate = fronted[0][2], fronted[1][2]
    assert (stored["stored"], stored["actions"][0]["status"]) == ([0], "queued")
    assert (duplicate["duplicate"], duplicate["duplicate_ids"]) == (1, ["e1"])
    refused = fronted[3][2]
    assert (fronted[3][0], refused["stored"], refused["failed"][0]["index"]) == (400, [0], 1)
    assert [action["member"] for action in refused["actions"]] == ["m4"]  # e4 fed: its welcome
    assert [status for status, _, _ in fronted[4:10]] == [400, 415, 401, 421, 403, 202]


def test_a_chunked_body_reaches_the_store_through_a_front(fronted: Service) -> None:
    connection = HTTPConnection("127.0.0.1", fronted.port, timeout=30)
    events = [{**JOIN, "id": f"c{n}", "member": f"m{n}"} for n in range(200)]
    data = json.dumps(events).encode()
    parts = iter([data[:1000], data[1000:5000], data[5000:]])
    connection.request(
        "POST",
        "/events",
        body=parts,
        headers={**AUTH, "Content-Type": "application/json"},
        encode_chunked=True,
    )
    answer = connection.getresponse()
    assert answer.status == 202
    assert json.loads(answer.read())["stored"] == list(range(200))


def test_a_killed_front_is_replaced_and_each_event_is_stored_once(fronted: Service) -> None:
    server = fronted._server
    assert isinstance(server, Fronts)
    first = server.pids()
    answered: dict[str, int] = {}
    stop = threading.Event()

    def post(slot: int) -> None:
        number = 0
        while not stop.is_set():
            number += 1
            event_id = f"k{slot}-{number}"
            while True:  # a client resends what it got no answer for
                try:
                    status = httpx.post(
                        f"{fronted.url}/events",
                        json={**JOIN, "id": event_id, "member": f"k{slot}-{number}"},
                        headers=AUTH,
                        timeout=30,
                    ).status_code
                except httpx.TransportError:
                    continue
                answered[event_id] = status
                break

    clients = [threading.Thread(target=post, args=(slot,)) for slot in range(4)]
    for client in clients:
        client.start()
    time.sleep(1.0)
    os.kill(first[0], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (len(server.pids()) < 2 or first[0] in server.pids()):
        time.sleep(0.1)
    time.sleep(1.5)
    stop.set()
    for client in clients:
        client.join(timeout=60)
    assert first[0] not in server.pids() and len(server.pids()) == 2
    assert set(answered.values()) == {202}
    stats = httpx.get(f"{fronted.url}/health", timeout=30).json()
    assert stats["status"] == "ok"
    runtime = fronted.runtime
    assert isinstance(runtime, Runtime)
    # Each answered event is in the journal once: a resent one was a duplicate, not a second copy.
    assert runtime.stats()["events_in"] == len(answered)


def test_a_stop_answers_what_is_in_flight_and_ends_the_fronts(tmp_path: Path) -> None:
    svc = _service(tmp_path, "stop.db", 1)
    runtime = svc.runtime
    assert isinstance(runtime, Runtime) and svc._committer is not None
    gate, entered = threading.Event(), threading.Event()
    feed = runtime.feed_batch
    taken: list[int] = []  # the events of the transaction held (requests that came together share it)

    def held(events: Any, *args: Any) -> Any:
        taken.append(len(events))
        entered.set()
        gate.wait(30)  # the store is slow: the requests wait in the service process
        return feed(events, *args)

    svc._committer.feed_batch = held
    svc.start()
    results: list[int] = []

    def post(n: int) -> None:
        answer = httpx.post(
            f"{svc.url}/events", json={**JOIN, "id": f"s{n}", "member": f"s{n}"}, headers=AUTH, timeout=60
        )
        results.append(answer.status_code)

    posts = [threading.Thread(target=post, args=(n,)) for n in range(10)]
    for thread in posts:
        thread.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (
        not entered.is_set() or taken[0] + len(svc._committer._queue) < 10
    ):
        time.sleep(0.05)
    stopping = threading.Thread(target=svc.stop)
    stopping.start()
    time.sleep(0.5)
    gate.set()
    for thread in [*posts, stopping]:
        thread.join(timeout=60)
    assert results == [202] * 10  # each fed and answered although the stop began first
    server = svc._server
    assert isinstance(server, Fronts)
    assert all(p is not None and p.poll() is not None for p in server.processes)  # no front left running


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry))
    return found


def test_sopdsl_run_with_fronts_serves_and_its_fronts_go_with_it(tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plan().dumps(), encoding="utf-8")
    process, url = start_service(str(plan_file), "--store", f"sqlite:///{tmp_path / 's.db'}", "--fronts", "2")
    try:
        status, body = http(url + "/events", JOIN)
        assert status == 202 and body["actions"][0]["text"] == "张三，欢迎加入！"
        assert http(url + "/events", {"kind": "tag", "member": "m2"})[0] == 400
        fronts = _children(process.pid)
        assert len(fronts) == 2
    finally:
        process.kill()  # no stop in order: the fronts notice that the store process is gone
        process.communicate(timeout=30)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(pid) for pid in fronts):
        time.sleep(0.1)
    assert not [pid for pid in fronts if _alive(pid)]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
