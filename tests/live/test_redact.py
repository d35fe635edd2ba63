"""Redaction: no password or secret parameter of a store or webhook URL in logs, errors or the store."""

from __future__ import annotations

import base64
import datetime as dt
import io
import logging
import socket
import sqlite3
import textwrap
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from runtime_helpers import Replaced

import sopdsl
from sopdsl.engine.actions import Action
from sopdsl.errors import StoreError
from sopdsl.live.clock import ManualClock
from sopdsl.live.command import run_command
from sopdsl.live.dispatch import RetryPolicy
from sopdsl.live.executors_config import ExecutorConfigError, parse_executors
from sopdsl.live.redact import (
    RedactingFormatter,
    is_secret_name,
    redact_text,
    redact_url,
    redact_urls_in,
    secrets_of,
)
from sopdsl.live.runtime import PlanChangedError, Runtime
from sopdsl.live.service import Service
from sopdsl.live.store import check_version
from sopdsl.plan import Plan, timeutil

PASSWD = "PASSWD-7f3k"
SECRET = "SECRET-q9z2"
ZONE = timeutil.zone("Asia/Shanghai")
START = 1_773_000_000
JOIN = {"kind": "join", "member": "m1", "group": "g1", "data": {"name": "张三"}}
PLAYBOOK = textwrap.dedent(
    """
    timezone "Asia/Shanghai"
    template welcome = "{{ member.name }}，欢迎加入！"
    playbook welcome "新人欢迎" {
        on member joins
        do { send welcome to member }
    }
    """
)


def plan(greeting: str = "欢迎加入") -> Plan:
    text = PLAYBOOK.replace("欢迎加入", greeting)
    return sopdsl.compile_program(sopdsl.check(sopdsl.load_text(text, "welcome.sop")))


def assert_clean(text: str) -> None:
    assert PASSWD not in text
    assert SECRET not in text
    assert urllib.parse.quote(PASSWD) not in text


# ---- the helper ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://sop:PASSWD@db.example.com:5432/sopdsl",
            "postgresql://sop:***@db.example.com:5432/sopdsl",
        ),
        (
            "http://u:PASSWD@127.0.0.1:8080/hook?token=SECRET&kind=send",
            "http://u:***@127.0.0.1:8080/hook?token=***&kind=send",
        ),
        # Case-insensitive names, `-` or `_`, and a fragment too.
        (
            "https://bot.example.com/x?X-Api-Key=SECRET&Signature=SECRET&page=2#access_token=SECRET",
            "https://bot.example.com/x?X-Api-Key=***&Signature=***&page=2#access_token=***",
        ),
        ("https://h/x?sig=SECRET&key=SECRET&auth=SECRET", "https://h/x?sig=***&key=***&auth=***"),
        # No scheme; a scheme-relative URL.
        ("sop:PASSWD@db:5432/sopdsl", "sop:***@db:5432/sopdsl"),
        ("//sop:PASSWD@db/sopdsl", "//sop:***@db/sopdsl"),
        # IPv6 hosts, with and without a port.
        ("postgresql://sop:PASSWD@[::1]:5432/db", "postgresql://sop:***@[::1]:5432/db"),
        ("postgresql://sop:PASSWD@[2001:db8::1]/db", "postgresql://sop:***@[2001:db8::1]/db"),
        # Percent-encoded password; an `@` left unencoded in it.
        ("postgresql://sop:p%40ss%2Fw%3A@db/x", "postgresql://sop:***@db/x"),
        ("postgresql://sop:p@ss@db/x", "postgresql://sop:***@db/x"),
        # libpq parameters in the query: passwords masked, options kept.
        (
            "postgresql://sop@db/x?options=-csearch_path%3Ds1&sslpassword=SECRET&password=PASSWD",
            "postgresql://sop@db/x?options=-csearch_path%3Ds1&sslpassword=***&password=***",
        ),
        # libpq keyword/value DSNs, quoted or not.
        ("host=db user=sop password=PASSWD dbname=x", "host=db user=sop password=*** dbname=x"),
        ("host=db password='PASS WD\\' x' dbname=x", "host=db password=*** dbname=x"),
        ("host=db password = PASSWD@x port=5432", "host=db password = *** port=5432"),
        # Nothing secret: unchanged.
        ("sqlite:///state.db", "sqlite:///state.db"),
        ("sqlite:////var/lib/sopdsl/state.db", "sqlite:////var/lib/sopdsl/state.db"),
        ("memory://", "memory://"),
        ("postgresql://sop@db:5432/x", "postgresql://sop@db:5432/x"),
        ("https://bot.example.com/hook?tenant=shop-1", "https://bot.example.com/hook?tenant=shop-1"),
        ("http://[::1", "http://[::1"),
        ("", ""),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url.replace("PASSWD", PASSWD).replace("SECRET", SECRET)) == expected
    assert redact_url(expected) == expected  # already masked: unchanged


@pytest.mark.parametrize(
    "name",
    ["token", "ACCESS_TOKEN", "api_key", "X-Api-Key", "apikey", "secret", "client_secret", "password",
     "passwd", "pwd", "sslpassword", "signature", "sig", "key", "auth", "credential", "session_id"],
)  # fmt: skip
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name", ["kind", "page", "tenant", "options", "host", "dbname", "user", "keys_count"]
)
def test_ordinary_names(name: str) -> None:
    assert not is_secret_name(name)


def test_urls_and_pairs_inside_a_message_are_masked() -> None:
    message = (
        f"webhook http://u:{PASSWD}@127.0.0.1:1/hook?token={SECRET} failed for send action a/b "
        f"(key a/b): connection failed; dsn host=db password={PASSWD} port=5432; "
        f"'postgresql://sop:{PASSWD}@[::1]/x'"
    )
    masked = redact_urls_in(message)
    assert_clean(masked)
    assert "http://u:***@127.0.0.1:1/hook?token=*** failed for send action a/b (key a/b)" in masked
    assert "password=*** port=5432" in masked and "'postgresql://sop:***@[::1]/x'" in masked


def test_known_secrets_are_masked_out_of_their_url_too() -> None:
    url = f"http://u:{urllib.parse.quote(PASSWD + '@')}@h/x?token={SECRET}"
    assert set(secrets_of(url)) >= {PASSWD + "@", SECRET}
    answer = f"403 (token {SECRET} is revoked; user u, password {PASSWD}@)"
    assert_clean(redact_text(answer, secrets_of(url)))
    assert redact_text("status 500 at x", ["x"]) == "status 500 at x"  # too short to mask as text


def test_the_log_formatter_masks_messages_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("sopdsl.test_redact")
    logger.addHandler(handler)
    try:
        try:
            raise ConnectionError(f"cannot reach https://u:{PASSWD}@h/x?api_key={SECRET}")
        except ConnectionError:
            logger.exception("while posting to %s", f"https://h/?token={SECRET}")
    finally:
        logger.removeHandler(handler)
    assert "ConnectionError: cannot reach https://u:***@h/x?api_key=***" in stream.getvalue()
    assert_clean(stream.getvalue())


# ---- a webhook that fails, through the runtime and its SQLite store -----------------------------------


@pytest.fixture
def failing_receiver() -> Iterator[tuple[int, list[tuple[str, str]]]]:
    """An endpoint answering 500, echoing the token and the password it was sent in its answer."""
    seen: list[tuple[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((self.path, self.headers.get("Authorization", "")))
            reply = f"internal error for {self.path} ({self.headers.get('Authorization')})".encode()
            self.send_response(500)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1]), seen
    server.shutdown()
    server.server_close()


def test_a_failing_webhook_keeps_its_credentials_out_of_the_log_and_the_outbox(
    failing_receiver: tuple[int, list[tuple[str, str]]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port, seen = failing_receiver
    url = f"http://u:{PASSWD}@127.0.0.1:{port}/hook?token={SECRET}"
    config = f"send:\n  webhook: '{url}'\n  secret_env: K\n  retries: 1\n  backoff: 0\n"
    executors = parse_executors(config, "ex.yaml", zone=ZONE, environ={"K": "k"})
    clock = ManualClock(START)
    db = tmp_path / "state.db"
    runtime = Runtime(
        plan(), f"sqlite:///{db}", executors=executors, clock=clock, retry=RetryPolicy(attempts=2, base=10)
    )
    with caplog.at_level(logging.INFO):
        runtime.feed(JOIN)
        runtime.tick()  # two requests, both 500: a retry warning
        clock.advance(60)
        runtime.tick()  # two more: parked
    runtime.close()

    # The requests reached the endpoint: the password as Basic authentication, the token in the query.
    assert len(seen) == 4
    basic = "Basic " + base64.b64encode(f"u:{PASSWD}".encode()).decode()
    assert set(seen) == {(f"/hook?token={SECRET}", basic)}

    logged = caplog.text
    assert "parked send" in logged
    # When the retry goes as a person reads it, not in epoch seconds.
    retry_at = dt.datetime.fromtimestamp(START + 10, ZONE).isoformat()
    assert f"failed, retry 1 in 10 s ({retry_at}): " in logged and str(START + 10) not in logged
    assert f"webhook http://u:***@127.0.0.1:{port}/hook?token=*** failed" in logged
    assert "HTTP 500" in logged
    assert_clean(logged)

    with sqlite3.connect(db) as conn:
        [(status, error)] = conn.execute("SELECT status, error FROM sopdsl_outbox").fetchall()
    assert status == "parked" and "HTTP 500" in error and "u:***@" in error
    assert_clean(error)


def test_an_executor_error_quoting_a_url_is_masked_in_the_outbox(caplog: pytest.LogCaptureFixture) -> None:
    def send(action: Action, key: str) -> None:
        raise ConnectionError(f"POST https://bot:{PASSWD}@h/send?api_key={SECRET} timed out")

    runtime = Runtime(plan(), "memory://", executors={"send": send}, clock=ManualClock(START))
    with caplog.at_level(logging.INFO):
        runtime.feed(JOIN)
        runtime.tick()
    [row] = runtime.store.outbox()
    runtime.close()
    assert row.error == "ConnectionError: POST https://bot:***@h/send?api_key=*** timed out"
    assert_clean(caplog.text)


# ---- stores and the service ---------------------------------------------------------------------------


def with_password(url: str) -> tuple[str, str]:
    """The URL with a password (PASSWD, unless it has one: trust authentication ignores it), and the password."""
    parts = urllib.parse.urlsplit(url)
    userinfo, _, hostport = parts.netloc.rpartition("@")
    if ":" in userinfo:
        return url, userinfo.split(":", 1)[1]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{userinfo}:{PASSWD}@{hostport}")), PASSWD


@pytest.fixture(params=["sqlite", "postgres"])
def secret_store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """A store URL carrying a secret that opens all the same, and that secret."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}?token={SECRET}", SECRET
    return with_password(request.getfixturevalue("postgres_db"))


def test_the_run_banner_masks_the_store_url(secret_store: tuple[str, str], tmp_path: Path) -> None:
    store, secret = secret_store
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plan().dumps(), encoding="utf-8")
    result = CliRunner().invoke(
        run_command,
        [str(plan_file), "--store", store, "--stdin", "--port", "0", "--insecure-no-auth"],
        input="",
    )
    assert result.exit_code == 0, result.output
    assert "sopdsl run: plan" in result.stderr and "***" in result.stderr
    assert secret not in result.output and secret not in result.stderr


@pytest.mark.parametrize(
    "store",
    [
        f"postgresql://sop:{PASSWD}@127.0.0.1:PORT/x?sslpassword={SECRET}",
        f"redis://sop:{PASSWD}@cache/0?token={SECRET}",
        f"sqlite:///no/such/folder/state.db?token={SECRET}",
    ],
)
def test_cannot_open_the_store_masks_the_url(store: str, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])  # nobody listens there
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plan().dumps(), encoding="utf-8")
    result = CliRunner().invoke(
        run_command,
        [str(plan_file), "--store", store.replace("PORT", port), "--port", "0", "--insecure-no-auth"],
    )
    assert result.exit_code == 2, result.output
    assert "error: cannot open the store" in result.stderr and "***" in result.stderr
    assert_clean(result.output)
    assert_clean(result.stderr)


def test_a_changed_plan_error_masks_the_store_url(secret_store: tuple[str, str], tmp_path: Path) -> None:
    store, secret = secret_store
    Runtime(plan(), store, clock=ManualClock(START)).close()
    with pytest.raises(PlanChangedError, match=r"runs plan") as info:
        Runtime(plan("欢迎光临"), store, clock=ManualClock(START))
    assert "***" in str(info.value) and secret not in str(info.value)

    plan_file = tmp_path / "changed.json"
    plan_file.write_text(plan("欢迎光临").dumps(), encoding="utf-8")
    result = CliRunner().invoke(
        run_command, [str(plan_file), "--store", store, "--port", "0", "--insecure-no-auth"]
    )
    assert result.exit_code == 1, result.output
    assert "error: shard 'default' in" in result.stderr and "--reload" in result.stderr
    assert secret not in result.output and secret not in result.stderr


def test_a_schema_version_error_masks_the_store_url() -> None:
    for found, migrate in ((99, False), (1, False)):
        with pytest.raises(StoreError) as info:
            check_version(found, f"postgresql://sop:{PASSWD}@db/x?password={PASSWD}", migrate)
        assert "postgresql://sop:***@db/x?password=***" in str(info.value)
        assert_clean(str(info.value))


def test_a_config_error_masks_the_webhook_url() -> None:
    config = f"send:\n  webhook: 'ftp://u:{PASSWD}@h/x?token={SECRET}'\n  secret_env: K\n"
    with pytest.raises(ExecutorConfigError, match="must be an http") as info:
        parse_executors(config, "ex.yaml", zone=ZONE, environ={"K": "k"})
    assert_clean(str(info.value))


def test_health_and_the_log_mask_a_timer_loop_error() -> None:
    runtime = Runtime(plan(), "memory://", clock=ManualClock(START))
    log = io.StringIO()

    def broken(now: int | None = None) -> list[Action]:
        raise OSError(f"cannot reach postgresql://sop:{PASSWD}@db/x?sslpassword={SECRET}")

    service = Service(Replaced(runtime, tick=broken), zone=ZONE, port=0, tick_every=3600, log=log)
    service.tick()
    status, body = service.health()
    runtime.close()
    assert status == 503 and "postgresql://sop:***@db/x?sslpassword=***" in body["error"]
    assert_clean(body["error"])
    assert "Traceback" in log.getvalue()
    assert_clean(log.getvalue())
