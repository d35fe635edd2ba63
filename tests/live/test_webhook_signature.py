"""Webhook signatures: a timestamp and the attempt signed with the body, verified by the receiver, replays refused."""

from __future__ import annotations

import base64
import hmac
import json
import re
import threading
from collections.abc import Iterator
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sopdsl.engine.actions import Action
from sopdsl.live.executors_config import ExecutorConfigError, parse_executors
from sopdsl.live.webhook import (
    ATTEMPT_HEADER,
    KEY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    Webhook,
    check_signature,
    verify_signature,
)

ZONE = ZoneInfo("Asia/Shanghai")
SECRET = b"s3cret"
NOW = 1_773_000_000


class Received:
    """What a local endpoint was sent: (path, headers, body) per request; answers from `statuses`, then 200."""

    def __init__(self) -> None:
        self.url = ""
        self.statuses: list[int] = []
        self.requests: list[tuple[str, Message, bytes]] = []


@pytest.fixture
def received() -> Iterator[Received]:
    state = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append((self.path, self.headers, body))
            self.send_response(state.statuses.pop(0) if state.statuses else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state
    server.shutdown()
    server.server_close()


def _action() -> Action:
    return Action(NOW, "send", "welcome", "k1", member="m1", group="g1", detail={"template": "welcome"})


def _deliver(url: str, *, clock: list[float] | None = None, **options: Any) -> None:
    times = iter(clock or [NOW])
    hook = Webhook(
        url=url, secret=SECRET, zone=ZONE, sleep=lambda s: None, clock=lambda: next(times), **options
    )
    hook(_action(), "idem-1")


def _one(received: Received) -> tuple[dict[str, str], bytes]:
    _deliver(received.url)
    [(_, headers, body)] = received.requests
    return dict(headers.items()), body


def test_a_request_carries_a_timestamped_signature_that_verifies(received: Received) -> None:
    headers, body = _one(received)
    assert re.fullmatch(rf"t={NOW},v1=[0-9a-f]{{64}}", headers[SIGNATURE_HEADER])
    assert headers[TIMESTAMP_HEADER] == str(NOW)
    assert headers[KEY_HEADER] == "idem-1" and headers[ATTEMPT_HEADER] == "1"
    assert check_signature(SECRET, headers, body, now=NOW + 10) == NOW
    assert verify_signature(SECRET, headers, body, now=NOW - 10)
    # Header names are read case-insensitively, as HTTP has them.
    assert verify_signature(SECRET, {k.lower(): v for k, v in headers.items()}, body, now=NOW)


@pytest.mark.parametrize("late", [301, 3600, -301])
def test_a_replay_outside_the_tolerance_is_refused(received: Received, late: int) -> None:
    headers, body = _one(received)
    with pytest.raises(SignatureError, match="outside the 300s tolerance"):
        check_signature(SECRET, headers, body, now=NOW + late)
    assert not verify_signature(SECRET, headers, body, now=NOW + late)
    assert verify_signature(SECRET, headers, body, now=NOW + late, tolerance=abs(late))


def _tampered(headers: dict[str, str], body: bytes, what: str) -> tuple[dict[str, str], bytes]:
    forged = dict(headers)
    if what == "body":
        body = body.replace(b'"member":"m1"', b'"member":"m2"')
    elif what == "timestamp":  # an old request made fresh: both timestamps moved on
        later = str(NOW + 3600)
        forged[SIGNATURE_HEADER] = forged[SIGNATURE_HEADER].replace(f"t={NOW}", f"t={later}")
        forged[TIMESTAMP_HEADER] = later
    elif what == "timestamp header":
        forged[TIMESTAMP_HEADER] = str(NOW + 1)
    elif what == "attempt":
        forged[ATTEMPT_HEADER] = "2"
    elif what == "key":
        forged[KEY_HEADER] = "idem-2"
    elif what == "signature":
        signature = forged[SIGNATURE_HEADER]
        forged[SIGNATURE_HEADER] = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    elif what == "no signature":
        del forged[SIGNATURE_HEADER]
    elif what == "no attempt":
        del forged[ATTEMPT_HEADER]
    elif what == "odd digits":
        forged[ATTEMPT_HEADER] = "²"
    elif what == "malformed":
        forged[SIGNATURE_HEADER] = "sha256=" + forged[SIGNATURE_HEADER].rsplit("=", 1)[1]
    return forged, body


@pytest.mark.parametrize(
    ("what", "message"),
    [
        ("body", "does not match"),
        ("timestamp", "does not match"),
        ("timestamp header", "differs from the signed timestamp"),
        ("attempt", "does not match"),
        ("key", "differs from the signed key"),
        ("signature", "does not match"),
        ("no signature", "no X-Sopdsl-Signature header"),
        ("no attempt", "no X-Sopdsl-Attempt header"),
        ("odd digits", "no X-Sopdsl-Attempt header"),
        ("malformed", "malformed"),
    ],
)
def test_a_tampered_request_is_refused(received: Received, what: str, message: str) -> None:
    headers, body = _one(received)
    forged, forged_body = _tampered(headers, body, what)
    now = NOW + 3600 if what == "timestamp" else NOW
    with pytest.raises(SignatureError, match=message):
        check_signature(SECRET, forged, forged_body, now=now)
    assert not verify_signature(SECRET, forged, forged_body, now=now)


def test_another_secret_does_not_verify(received: Received) -> None:
    headers, body = _one(received)
    assert not verify_signature(b"other secret", headers, body, now=NOW)
    with pytest.raises(SignatureError, match="no secret"):
        check_signature(b"", headers, body, now=NOW)


def test_signatures_are_compared_in_constant_time(
    received: Received, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers, body = _one(received)
    compared: list[tuple[str, str]] = []
    original = hmac.compare_digest

    def compare(a: str, b: str) -> bool:
        compared.append((a, b))
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", compare)
    assert verify_signature(SECRET, headers, body, now=NOW)
    assert not verify_signature(b"other", headers, body, now=NOW)
    assert len(compared) == 2


def test_each_attempt_is_signed_afresh_and_cannot_stand_in_for_another(received: Received) -> None:
    received.statuses = [500]
    _deliver(received.url, clock=[NOW, NOW + 2])
    (_, first, body1), (_, second, body2) = received.requests
    assert body1 == body2
    assert (first[ATTEMPT_HEADER], second[ATTEMPT_HEADER]) == ("1", "2")
    assert (first[TIMESTAMP_HEADER], second[TIMESTAMP_HEADER]) == (str(NOW), str(NOW + 2))
    assert verify_signature(SECRET, first, body1, now=NOW + 2)
    assert verify_signature(SECRET, second, body2, now=NOW + 2)
    # The first request's signature with the second's attempt number: refused.
    mixed = dict(first.items()) | {ATTEMPT_HEADER: "2"}
    assert not verify_signature(SECRET, mixed, body1, now=NOW + 2)


def test_while_rotating_both_secrets_sign_and_a_receiver_may_accept_either(received: Received) -> None:
    _deliver(received.url, previous_secrets=(b"old secret",))
    [(_, headers, body)] = received.requests
    assert headers[SIGNATURE_HEADER].count("v1=") == 2
    assert verify_signature(SECRET, headers, body, now=NOW)  # receivers already on the new secret
    assert verify_signature(b"old secret", headers, body, now=NOW)  # receivers not yet moved
    assert verify_signature([b"unrelated", b"old secret"], headers, body, now=NOW)
    assert verify_signature(["unrelated", "old secret"], headers, body, now=NOW)  # str secrets too
    assert not verify_signature([b"unrelated"], headers, body, now=NOW)


def test_the_config_file_names_the_previous_secret(received: Received) -> None:
    config = f"send:\n  webhook: {received.url}\n  secret_env: NEW\n  previous_secret_env: OLD\n"
    executors = parse_executors(config, "ex.yaml", zone=ZONE, environ={"NEW": "n3w", "OLD": "0ld"})
    executors["send"](_action(), "idem-1")
    [(_, headers, body)] = received.requests
    assert verify_signature(b"n3w", headers, body) and verify_signature(b"0ld", headers, body)
    with pytest.raises(ExecutorConfigError, match=r"ex.yaml:4:3: error: send: the environment variable OLD"):
        parse_executors(config, "ex.yaml", zone=ZONE, environ={"NEW": "n3w"})


def test_credentials_in_the_url_go_as_basic_authentication_not_in_the_request(received: Received) -> None:
    url = received.url.replace("http://", "http://bot:p%40ss@") + "?token=t0k"
    _deliver(url)
    [(path, headers, _)] = received.requests
    assert path == "/hook?token=t0k"
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"bot:p@ss").decode()
    assert "p%40ss" not in repr(Webhook(url=url, secret=SECRET, zone=ZONE))


def test_the_receiver_snippet_in_the_docs_verifies_and_refuses_a_replay(received: Received) -> None:
    docs = (Path(__file__).parent.parent.parent / "docs" / "service.md").read_text(encoding="utf-8")
    section = docs.split("## Receiving webhooks", 1)[1]
    [snippet] = [b for b in re.findall(r"```python\n(.*?)```", section, re.S) if "def receive" in b]
    namespace: dict[str, Any] = {}
    exec(snippet, namespace)
    _deliver(received.url, clock=[__import__("time").time()])
    [(_, headers, body)] = received.requests
    action = namespace["receive"](SECRET, dict(headers.items()), body)
    assert action is not None and json.loads(body) == action
    assert namespace["receive"](SECRET, dict(headers.items()), body) is None  # the same request again
    forged, forged_body = _tampered(dict(headers.items()), body, "body")
    assert namespace["receive"](SECRET, forged, forged_body) is None
