"""The service: events over HTTP and stdin in, actions out to executors, health, metrics, config."""

from __future__ import annotations

import io
import json
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from livestores import store_url
from runtime_helpers import Replaced

import sopdsl
from sopdsl.engine.actions import Action
from sopdsl.errors import EngineError
from sopdsl.live.clock import ManualClock
from sopdsl.live.command import run_command
from sopdsl.live.executors_config import parse_executors
from sopdsl.live.runtime import Runtime
from sopdsl.live.service import Service
from sopdsl.live.webhook import verify_signature
from sopdsl.plan import Plan, timeutil

ZONE = timeutil.zone("Asia/Shanghai")
PLAYBOOK = textwrap.dedent(
    """
    timezone "Asia/Shanghai"
    action crm_note "写入CRM" { level: text }
    template welcome = "{{ member.name }}，欢迎加入！"
    template nudge = "{{ member.name }}，来做个自我介绍吧"
    playbook welcome "新人欢迎" {
        on member joins
        do {
            send welcome to member
            wait 1 hours for member posts else {
                send nudge to member
            }
        }
    }
    """
)
START = 1_773_000_000  # 2026-03-09 04:00 in Shanghai: no quiet hours in the way


def plan() -> Plan:
    return sopdsl.compile_program(sopdsl.check(sopdsl.load_text(PLAYBOOK, "welcome.sop")))


class Recorder:
    """A recording executor; `wait` polls, since the timer loop hands actions over in its own thread."""

    def __init__(self) -> None:
        self.calls: list[tuple[Action, str]] = []

    def __call__(self, action: Action, key: str) -> None:
        self.calls.append((action, key))

    def wait(self, count: int) -> list[tuple[Action, str]]:
        deadline = time.monotonic() + 10
        while len(self.calls) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.calls


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def runtime(clock: ManualClock, recorder: Recorder) -> Runtime:
    return Runtime(plan(), "memory://", executors=dict.fromkeys(("send", "call"), recorder), clock=clock)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def service(runtime: Runtime) -> Iterator[Service]:
    log = io.StringIO()
    svc = Service(runtime, zone=ZONE, port=0, tick_every=0.05, log=log)
    svc.start()
    yield svc
    svc.stop()


def call(
    service: Service, method: str, path: str, body: Any = None, raw: bytes | None = None
) -> tuple[int, Any]:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    headers = {"Content-Type": "application/json"} if data is not None else {}
    request = urllib.request.Request(service.url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, text = response.status, response.read().decode()
            kind = response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        status, text, kind = exc.code, exc.read().decode(), exc.headers.get("Content-Type", "")
    return status, json.loads(text) if kind.startswith("application/json") else text


def metric(service: Service, name: str) -> float:
    status, text = call(service, "GET", "/metrics")
    assert status == 200
    values = {
        line.split()[0]: float(line.split()[1]) for line in text.splitlines() if not line.startswith("#")
    }
    return values[name]


JOIN = {"kind": "join", "member": "m1", "group": "g1", "data": {"name": "张三"}}


# ---- events over HTTP ------------------------------------------------------------------------------


def test_an_event_posted_comes_back_as_actions_and_reaches_the_executor(
    service: Service, recorder: Recorder
) -> None:
    status, body = call(service, "POST", "/events", JOIN)
    assert status == 202
    assert body["accepted"] == 1
    [action] = body["actions"]
    assert (action["kind"], action["member"], action["text"]) == ("send", "m1", "张三，欢迎加入！")
    [(executed, key)] = recorder.wait(1)
    assert executed.detail["template"] == "welcome" and key == action["key"]


def test_a_list_of_events_is_fed_in_order(service: Service, recorder: Recorder) -> None:
    second = {**JOIN, "member": "m2", "data": {"name": "李四"}}
    status, body = call(service, "POST", "/events", [JOIN, second])
    assert status == 202 and body["accepted"] == 2
    assert [a["member"] for a in body["actions"]] == ["m1", "m2"]
    assert [a.member for a, _ in recorder.wait(2)] == ["m1", "m2"]


def test_a_bad_event_is_a_400_naming_the_field_and_the_service_goes_on(
    service: Service, recorder: Recorder
) -> None:
    status, body = call(service, "POST", "/events", {"kind": "tag", "member": "m1"})
    assert status == 400
    assert body["field"] == "name"
    assert "needs a name" in body["error"]
    status, _ = call(service, "POST", "/events", JOIN)
    assert status == 202
    assert [a.member for a, _ in recorder.wait(1)] == ["m1"]


def test_a_list_stops_at_its_first_bad_event_and_says_where(service: Service, recorder: Recorder) -> None:
    bad = {"kind": "joined", "member": "m2", "group": "g1"}
    status, body = call(service, "POST", "/events", [JOIN, bad, {**JOIN, "member": "m3"}])
    assert status == 400
    assert (body["index"], body["accepted"], body["field"]) == (1, 1, "kind")
    assert "unknown event kind 'joined'" in body["error"]
    assert [a["member"] for a in body["actions"]] == ["m1"]
    assert [a.member for a, _ in recorder.wait(1)] == ["m1"]
    assert metric(service, "sopdsl_events_in_total") == 1  # the third event was not fed


def test_a_list_goes_into_the_store_in_one_transaction(
    service: Service, runtime: Runtime, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    applied: list[int] = []
    real = runtime.store.apply

    def counted(shard: str, new: Sequence[dict[str, Any]], *a: Any, **k: Any) -> Any:
        applied.append(len(new))
        return real(shard, new, *a, **k)

    monkeypatch.setattr(runtime.store, "apply", counted)
    batch = [{**JOIN, "member": f"m{i}", "data": {"name": f"成员{i}"}} for i in range(5)]
    status, body = call(service, "POST", "/events", batch)
    assert (status, body["accepted"]) == (202, 5)
    assert 5 in applied and not [n for n in applied if 0 < n < 5]  # one transaction took all five
    assert sorted((a.member for a, _ in recorder.wait(5)), key=str) == [f"m{i}" for i in range(5)]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("not an event", "an event must be a JSON object, got a string"),
        ({**JOIN, "member": "m3", "time": START - 86400}, "before the engine's clock"),
    ],
)
def test_a_list_with_a_bad_event_takes_the_events_before_it(
    service: Service, recorder: Recorder, clock: ManualClock, bad: Any, message: str
) -> None:
    call(service, "POST", "/events", {**JOIN, "member": "m0"})  # the engine's clock is now START
    first = [{**JOIN, "member": "m1"}, {**JOIN, "member": "m2"}]
    status, body = call(service, "POST", "/events", [*first, bad, {**JOIN, "member": "m4"}])
    assert status == 400
    assert (body["index"], body["accepted"]) == (2, 2)
    assert message in body["error"] and not body["error"].startswith("event 2")
    assert [a["member"] for a in body["actions"]] == ["m1", "m2"]
    assert sorted((a.member for a, _ in recorder.wait(3)), key=str) == ["m0", "m1", "m2"]
    assert metric(service, "sopdsl_events_in_total") == 3


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            b'{"kind": "join",',
            "the body is not JSON: Expecting property name enclosed in double quotes at line 1",
        ),
        (b'"join"', "an event must be a JSON object, got a string"),
        (b"[1]", "an event must be a JSON object, got a number"),
    ],
)
def test_a_body_that_is_not_events_is_a_400(service: Service, raw: bytes, message: str) -> None:
    status, body = call(service, "POST", "/events", raw=raw)
    assert status == 400
    assert body["error"].startswith(message)


def test_unknown_endpoints_and_methods_are_refused(service: Service) -> None:
    assert call(service, "GET", "/nowhere")[0] == 404
    assert call(service, "GET", "/events")[0] == 405
    assert call(service, "POST", "/health", {})[0] == 405
    assert call(service, "GET", "/health?verbose=1")[0] == 200  # a query string does not change the endpoint


# ---- health, metrics, timers -----------------------------------------------------------------------


def test_health_is_ok_while_running(service: Service) -> None:
    status, body = call(service, "GET", "/health")
    assert status == 200 and body["status"] == "ok"


def test_metrics_count_events_actions_and_rejections(service: Service) -> None:
    assert metric(service, "sopdsl_events_in_total") == 0
    call(service, "POST", "/events", JOIN)
    call(service, "POST", "/events", {"kind": "message"})
    assert metric(service, "sopdsl_events_in_total") == 1
    assert metric(service, "sopdsl_actions_out_total") == 1
    assert metric(service, "sopdsl_events_rejected_total") == 1
    assert metric(service, "sopdsl_timers_pending") >= 1  # the welcome flow waits an hour
    _, text = call(service, "GET", "/metrics")
    assert "# TYPE sopdsl_events_in_total counter" in text
    assert "# TYPE sopdsl_timers_pending gauge" in text


def test_the_timer_loop_runs_due_work_without_any_request(
    service: Service, clock: ManualClock, recorder: Recorder
) -> None:
    call(service, "POST", "/events", JOIN)
    recorder.wait(1)
    clock.advance(3600)
    assert [a.detail["template"] for a, _ in recorder.wait(2)] == ["welcome", "nudge"]
    assert recorder.calls[1][0].time == START + 3600


def test_a_failing_timer_loop_shows_in_health(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(now: int | None = None) -> list[Action]:
        raise EngineError("store unreachable")

    monkeypatch.setattr(service, "runtime", Replaced(service.runtime, tick=broken))
    service.tick()
    status, body = call(service, "GET", "/health")
    assert status == 503
    assert body["status"] == "failing" and "store unreachable" in body["error"]
    monkeypatch.undo()
    service.tick()
    assert call(service, "GET", "/health")[0] == 200


# ---- stdin -------------------------------------------------------------------------------------------


def test_stdin_lines_are_fed_and_a_bad_line_is_reported_with_its_number(
    service: Service, recorder: Recorder
) -> None:
    lines = [
        json.dumps(JOIN),
        "",
        "{not json",
        json.dumps({"kind": "tag", "member": "m1"}),
        json.dumps({**JOIN, "member": "m2"}),
    ]
    bad = service.feed_lines(lines)
    assert bad == 2
    assert [a.member for a, _ in recorder.wait(2)] == ["m1", "m2"]
    assert isinstance(service.log, io.StringIO)
    log = service.log.getvalue()
    assert "stdin:3:2: error: not JSON" in log
    assert (
        "stdin:4: error: a tag event needs a name (the tag, or the custom event's name) (field: name); line skipped"
        in log
    )


# ---- the command ---------------------------------------------------------------------------------------

RUN = "import sys; from sopdsl.live.command import run_command; run_command(prog_name='sopdsl run')"


def start_service(*args: str) -> tuple[subprocess.Popen[str], str]:
    """`sopdsl run ARGS --port 0` in a subprocess; returns it and the URL it listens on."""
    process = subprocess.Popen(
        [sys.executable, "-c", RUN, *args, "--port", "0", "--insecure-no-auth"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    assert process.stderr is not None
    line = process.stderr.readline()
    found = re.search(r"listening on (http://\S+)", line)
    if found is None:
        process.kill()
        _, rest = process.communicate()
        raise AssertionError(f"the service did not start: {line}{rest}")
    return process, found.group(1)


def http(url: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    try:
        request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            status, text, kind = response.status, response.read().decode(), response.headers["Content-Type"]
    except urllib.error.HTTPError as exc:
        status, text, kind = exc.code, exc.read().decode(), exc.headers["Content-Type"]
    return status, json.loads(text) if kind.startswith("application/json") else text


def series(url: str) -> dict[str, float]:
    _, text = http(url + "/metrics")
    return {line.split()[0]: float(line.split()[1]) for line in text.splitlines() if not line.startswith("#")}


@pytest.fixture
def plan_file(tmp_path: Path) -> Path:
    path = tmp_path / "plan.json"
    path.write_text(plan().dumps(), encoding="utf-8")
    return path


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_sopdsl_run_serves_events_stops_on_sigterm_and_keeps_its_state(
    kind: str, tmp_path: Path, plan_file: Path, request: pytest.FixtureRequest
) -> None:
    store = store_url(kind, tmp_path, request)
    process, url = start_service(str(plan_file), "--store", store)
    try:
        assert http(url + "/health")[0] == 200
        status, body = http(url + "/events", JOIN)
        assert status == 202 and body["actions"][0]["text"] == "张三，欢迎加入！"
        assert http(url + "/events", {"kind": "tag", "member": "m2"})[0] == 400
        deadline = time.monotonic() + 10
        while series(url)["sopdsl_actions_pending"] > 0 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "sopdsl run: stopped" in err and "Traceback" not in err
    [logged] = [json.loads(line) for line in out.splitlines()]
    assert (logged["kind"], logged["member"], logged["text"]) == ("send", "m1", "张三，欢迎加入！")

    # Started again on the same store: the event is remembered and its action is not sent twice.
    process, url = start_service(str(plan_file), "--store", store)
    try:
        assert series(url)["sopdsl_events_in_total"] == 1
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert out == ""


def test_sopdsl_run_reads_stdin_and_reports_a_bad_line(tmp_path: Path, plan_file: Path) -> None:
    lines = [json.dumps(JOIN), '{"kind": "join", "member": "m2", "group": "g1", "colour": "red"}', ""]
    result = CliRunner().invoke(
        run_command,
        [
            str(plan_file),
            "--store",
            f"sqlite:///{tmp_path / 's.db'}",
            "--stdin",
            "--port",
            "0",
            "--insecure-no-auth",
        ],
        input="\n".join(lines),
    )
    assert result.exit_code == 1, result.output
    assert "stdin:2: error: unknown event field 'colour'" in result.stderr
    assert "(field: colour); line skipped" in result.stderr
    [logged] = [json.loads(line) for line in result.stdout.splitlines()]
    assert logged["member"] == "m1" and logged["kind"] == "send"


def test_sopdsl_run_dry_run_logs_what_it_would_do_and_executes_nothing(plan_file: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            RUN,
            str(plan_file),
            "--store",
            "memory://",
            "--stdin",
            "--port",
            "0",
            "--dry-run",
            "--insecure-no-auth",
        ],
        input=json.dumps(JOIN) + "\n",
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "(dry run)" in result.stderr
    assert "dry run: would send welcome -> m1" in result.stderr


def test_sopdsl_run_compiles_playbook_files(tmp_path: Path) -> None:
    source = tmp_path / "welcome.sop"
    source.write_text(PLAYBOOK, encoding="utf-8")
    result = CliRunner().invoke(
        run_command,
        [str(source), "--store", "memory://", "--stdin", "--port", "0", "--insecure-no-auth"],
        input=json.dumps(JOIN),
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["text"] == "张三，欢迎加入！"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--store", "redis://x"], 2, "error: cannot open the store redis://x: unknown store URL"),
        (
            ["--store", "memory://", "--executors", "EXECUTORS"],
            1,
            "ex.yaml:1:1: error: unknown action kind 'sned'",
        ),
        (["--store", "memory://", "--port", "PORT"], 2, "error: cannot listen on 127.0.0.1:"),
    ],
)
def test_sopdsl_run_refuses_bad_settings_with_a_clear_error(
    tmp_path: Path, plan_file: Path, args: list[str], code: int, message: str
) -> None:
    config = tmp_path / "ex.yaml"
    config.write_text("sned: log\n", encoding="utf-8")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        args = [port if a == "PORT" else str(config) if a == "EXECUTORS" else a for a in args]
        result = CliRunner().invoke(run_command, [str(plan_file), *args, "--insecure-no-auth"])
    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_sopdsl_run_refuses_a_changed_plan_file(tmp_path: Path, plan_file: Path) -> None:
    plan_file.write_text(
        plan_file.read_text(encoding="utf-8").replace("欢迎加入", "欢迎光临"), encoding="utf-8"
    )
    result = CliRunner().invoke(run_command, [str(plan_file), "--store", "memory://", "--insecure-no-auth"])
    assert result.exit_code == 1
    assert "plan content hash does not match" in result.stderr


# ---- webhooks through the service ------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[int], list[tuple[Message, bytes]]]]:
    """A local webhook endpoint answering with the statuses in its list (then 200)."""
    statuses: list[int] = []
    received: list[tuple[Message, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append((self.headers, self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(statuses.pop(0) if statuses else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", statuses, received
    server.shutdown()
    server.server_close()


def webhook_service(url: str, clock: ManualClock) -> Service:
    config = f"send:\n  webhook: {url}\n  secret_env: HOOK_SECRET\n  backoff: 0\n"
    executors = parse_executors(config, "ex.yaml", zone=ZONE, environ={"HOOK_SECRET": "k"})
    runtime = Runtime(plan(), "memory://", executors=executors, clock=clock)
    service = Service(runtime, zone=ZONE, port=0, tick_every=0.05, log=io.StringIO())
    service.start()
    return service


def test_a_configured_webhook_receives_signed_actions_after_a_server_error(
    receiver: tuple[str, list[int], list[tuple[Message, bytes]]], clock: ManualClock
) -> None:
    url, statuses, received = receiver
    statuses.append(503)
    service = webhook_service(url, clock)
    try:
        status, body = call(service, "POST", "/events", JOIN)
        assert status == 202
        deadline = time.monotonic() + 10
        while len(received) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(received) == 2  # the 503, then the retry that went through
        for headers, payload in received:
            assert verify_signature(b"k", headers, payload)
            assert headers["Idempotency-Key"] == body["actions"][0]["key"]
        assert json.loads(received[1][1])["text"] == "张三，欢迎加入！"
    finally:
        service.stop()


def test_a_webhook_that_refuses_an_action_gets_it_parked_and_counted(
    receiver: tuple[str, list[int], list[tuple[Message, bytes]]], clock: ManualClock
) -> None:
    url, statuses, received = receiver
    statuses.append(422)
    service = webhook_service(url, clock)
    try:
        call(service, "POST", "/events", JOIN)
        deadline = time.monotonic() + 10
        while metric(service, "sopdsl_actions_parked") < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert metric(service, "sopdsl_actions_parked") == 1
        assert metric(service, "sopdsl_failures_total") == 1
        assert len(received) == 1  # a refusal is not retried
    finally:
        service.stop()


def test_a_webhook_answering_500_is_counted_in_failures_even_when_its_retry_succeeds(
    receiver: tuple[str, list[int], list[tuple[Message, bytes]]], clock: ManualClock
) -> None:
    url, statuses, received = receiver
    statuses.append(500)
    service = webhook_service(url, clock)
    try:
        call(service, "POST", "/events", JOIN)
        deadline = time.monotonic() + 10
        while len(received) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(received) == 2
        assert metric(service, "sopdsl_failures_total") == 1
        assert metric(service, "sopdsl_actions_parked") == 0
    finally:
        service.stop()
