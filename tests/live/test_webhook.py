"""The webhook executor against a local HTTP server: signature, key header, retries, refusals."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import pytest

from sopdsl.engine.actions import Action
from sopdsl.live.webhook import (
    KEY_HEADER,
    SIGNATURE_HEADER,
    PermanentWebhookError,
    Webhook,
    WebhookError,
    verify_signature,
)

ZONE = ZoneInfo("Asia/Shanghai")
SECRET = b"s3cret"


@dataclass
class Receiver:
    """A scripted HTTP endpoint: answers in order from `script`, then 200; records every request."""

    url: str
    script: list[tuple[int, dict[str, str], float]] = field(default_factory=list)
    requests: list[tuple[Message, bytes]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append((self.headers, body))
            status, headers, delay = state.script.pop(0) if state.script else (200, {}, 0.0)
            time.sleep(delay)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            reply = b"" if status < 400 else "请求无效: bad action".encode()
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            try:
                self.wfile.write(reply)
            except BrokenPipeError:
                pass  # the client gave up waiting (the timeout test)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def _action() -> Action:
    return Action(
        1_773_000_000,
        "send",
        "welcome",
        "k-engine",
        member="m1",
        group="g1",
        detail={"template": "welcome", "text": "张三，欢迎加入！"},
    )


def _hook(url: str, sleeps: list[float], **options: object) -> Webhook:
    return Webhook(url=url, secret=SECRET, zone=ZONE, sleep=sleeps.append, **options)  # type: ignore[arg-type]


def test_a_delivered_action_is_signed_and_carries_its_key(receiver: Receiver) -> None:
    sleeps: list[float] = []
    _hook(receiver.url, sleeps)(_action(), "idem-1")
    [(headers, body)] = receiver.requests
    assert headers[SIGNATURE_HEADER].startswith("t=")
    assert verify_signature(SECRET, headers, body)
    assert not verify_signature(b"other secret", headers, body)
    assert headers[KEY_HEADER] == "idem-1"
    payload = json.loads(body.decode("utf-8"))
    assert payload["idempotency_key"] == "idem-1"
    assert payload["kind"] == "send"
    assert payload["member"] == "m1"
    assert payload["text"] == "张三，欢迎加入！"
    assert payload["at"].endswith("+08:00")
    assert sleeps == []


def test_server_errors_are_retried_with_backoff_and_the_same_key(receiver: Receiver) -> None:
    receiver.script = [(503, {}, 0.0), (500, {}, 0.0)]
    sleeps: list[float] = []
    _hook(receiver.url, sleeps, retries=3, backoff=0.25)(_action(), "idem-2")
    assert len(receiver.requests) == 3
    assert {h[KEY_HEADER] for h, _ in receiver.requests} == {"idem-2"}
    assert [h["X-Sopdsl-Attempt"] for h, _ in receiver.requests] == ["1", "2", "3"]
    assert sleeps == [0.25, 0.5]


def test_too_many_requests_waits_as_long_as_retry_after_says(receiver: Receiver) -> None:
    receiver.script = [(429, {"Retry-After": "3"}, 0.0)]
    sleeps: list[float] = []
    _hook(receiver.url, sleeps)(_action(), "idem-3")
    assert len(receiver.requests) == 2
    assert sleeps == [3.0]


def test_a_client_error_is_a_permanent_failure_and_is_not_retried(receiver: Receiver) -> None:
    receiver.script = [(400, {}, 0.0)]
    sleeps: list[float] = []
    with pytest.raises(PermanentWebhookError) as info:
        _hook(receiver.url, sleeps)(_action(), "idem-4")
    assert len(receiver.requests) == 1
    assert info.value.permanent and info.value.status == 400
    message = str(info.value)
    assert "HTTP 400" in message and "请求无效" in message and "idem-4" in message
    assert "not retried" in message


def test_a_redirect_is_reported_not_followed(receiver: Receiver) -> None:
    receiver.script = [(302, {"Location": "http://127.0.0.1:1/elsewhere"}, 0.0)]
    with pytest.raises(PermanentWebhookError, match=r"redirect to http://127\.0\.0\.1:1/elsewhere"):
        _hook(receiver.url, [])(_action(), "idem-5")
    assert len(receiver.requests) == 1


def test_a_server_that_keeps_failing_raises_a_retryable_error(receiver: Receiver) -> None:
    receiver.script = [(500, {}, 0.0)] * 3
    sleeps: list[float] = []
    with pytest.raises(WebhookError) as info:
        _hook(receiver.url, sleeps, retries=2)(_action(), "idem-6")
    assert not info.value.permanent
    assert "after 3 attempt(s)" in str(info.value) and "HTTP 500" in str(info.value)
    assert len(receiver.requests) == 3


def test_a_slow_server_times_out_and_the_retry_succeeds(receiver: Receiver) -> None:
    receiver.script = [(200, {}, 1.0)]
    sleeps: list[float] = []
    _hook(receiver.url, sleeps, timeout=0.2)(_action(), "idem-7")
    assert len(sleeps) == 1  # the first attempt timed out, the second went through
    assert len(receiver.requests) == 2


def test_nobody_listening_is_a_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps: list[float] = []
    with pytest.raises(WebhookError, match="connection failed") as info:
        _hook(f"http://127.0.0.1:{port}/hook", sleeps, retries=1)(_action(), "idem-8")
    assert not info.value.permanent
    assert sleeps == [0.5]
