"""The service process (`sopdsl run`): the runtime behind HTTP, stdin lines and a timer loop.

Input: events as JSON, over HTTP (`POST /events`, one event or a list) and, with `--stdin`, one
per line of standard input; the passing of time, from a loop that ticks the runtime. Output: the
runtime's actions, handed to the configured executors and returned to the HTTP caller; `GET
/health` and `GET /metrics` (Prometheus text) for whoever watches the process. The engine stays
single-threaded behind the runtime's own lock; the service feeds one event at a time, in arrival
order, and never holds a feed back while an executor (a slow webhook) works in the timer loop. A
bad event is answered with a located error and the service keeps running.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol, TextIO
from zoneinfo import ZoneInfo

import click

from sopdsl.engine.actions import Action
from sopdsl.errors import PlanError, SopdslError, StoreError
from sopdsl.live.executors_config import ExecutorConfigError, default_executors, load_executors
from sopdsl.live.redact import RedactingFormatter, redact_text, redact_url, redact_urls_in, secrets_of
from sopdsl.plan import Plan, timeutil
from sopdsl.plan import loads as load_plan

if TYPE_CHECKING:
    from sopdsl.live.runtime import Runtime

MAX_BODY = 4 * 1024 * 1024
TICK_EVERY = 1.0  # seconds: the engine's clock has one-second resolution

# Runtime statistics as Prometheus series: name, type, help. Others are exported as gauges.
_SERIES = {
    "events_in": ("sopdsl_events_in_total", "counter", "Events accepted by the runtime."),
    "actions_out": ("sopdsl_actions_out_total", "counter", "Actions handed to executors."),
    "timers_pending": ("sopdsl_timers_pending", "gauge", "Timers waiting to come due."),
    "failures": ("sopdsl_failures_total", "counter", "Executor calls that failed."),
    "parked": ("sopdsl_actions_parked", "gauge", "Actions given up on after their retries."),
    "pending": ("sopdsl_actions_pending", "gauge", "Actions waiting for an executor, or for a retry."),
    "actions_failed": (
        "sopdsl_actions_failed_total",
        "counter",
        "Actions that failed as they were decided (a template or a member's data was at fault); never executed.",
    ),
}


class RuntimeLike(Protocol):
    """What the service needs of a runtime (`sopdsl.live.runtime.Runtime` is one).

    `feed` and `tick` are called from different threads, so the runtime must serialize them.
    """

    def feed(self, event: Mapping[str, Any]) -> list[Action]:
        """Take one event; return the actions it caused."""
        ...

    def feed_many(self, events: Iterable[Mapping[str, Any]]) -> list[Action]:
        """Take several events at once, all or none; return the actions they caused."""
        ...

    def tick(self, now: int | None = None) -> list[Action]:
        """Run the work due by now; return the actions it caused."""
        ...

    def stats(self) -> dict[str, int]:
        """Counters for the metrics endpoint."""
        ...

    def close(self) -> None:
        """Release the store."""
        ...


class RejectedEventError(Exception):
    """An event the runtime refused: the message, the field at fault if known, and its place."""

    def __init__(self, message: str, field: str | None, index: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.index = index

    def to_json(self) -> dict[str, Any]:
        """The error body of a 400 answer."""
        body: dict[str, Any] = {"error": self.message, "field": self.field}
        if self.index is not None:
            body["index"] = self.index
        return body


class ShuttingDownError(Exception):
    """An event arrived after the service began to stop; it was not fed."""


class Service:
    """The runtime served over HTTP and stdin with a timer loop; `start`, then `wait` or `stop`."""

    def __init__(
        self,
        runtime: RuntimeLike,
        *,
        zone: ZoneInfo,
        host: str = "127.0.0.1",
        port: int = 8080,
        tick_every: float = TICK_EVERY,
        log: TextIO | None = None,
    ) -> None:
        self.runtime = runtime
        self.zone = zone
        self.host = host
        self.port = port
        self.tick_every = tick_every
        self.log = log if log is not None else sys.stderr
        self.rejected = 0
        self.tick_errors = 0
        self.last_tick_error: str | None = None
        self.started_at = time.monotonic()
        self._lock = threading.Lock()  # one feed at a time, and none once the runtime is closed
        # One tick at a time: two concurrent ticks of one Runtime were seen handing the same action
        # to its executor twice (memory and SQLite stores).
        self._tick_lock = threading.Lock()
        self._wake = threading.Event()  # set by a feed: its actions go to the executors at once
        self._stop = threading.Event()
        self._closed = False
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    # ---- running -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Listen (raises OSError if the address is taken) and start the HTTP and timer threads."""
        self._server = ThreadingHTTPServer((self.host, self.port), _handler(self))
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._threads = [
            threading.Thread(target=self._server.serve_forever, name="sopdsl-http", daemon=True),
            threading.Thread(target=self._timer_loop, name="sopdsl-timers", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @property
    def url(self) -> str:
        """The base URL the service listens on."""
        return f"http://{self.host}:{self.port}"

    def request_stop(self) -> None:
        """Ask the service to stop; safe from a signal handler or another thread."""
        self._stop.set()
        self._wake.set()

    def wait(self) -> None:
        """Block until a stop is requested (a signal, end of stdin, or `request_stop`)."""
        while not self._stop.wait(0.5):
            pass

    def stop(self) -> None:
        """Stop listening, finish the timer loop, and close the runtime (idempotent)."""
        self.request_stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=30)
        with self._lock, self._tick_lock:
            if not self._closed:
                self._closed = True
                self.runtime.close()

    def _timer_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.tick_every)
            self._wake.clear()
            if not self._stop.is_set():
                self.tick()

    def tick(self) -> list[Action]:
        """Run due timers and hand due actions to executors; a failure is logged and shown by /health."""
        with self._tick_lock:
            if self._closed:
                return []
            try:
                actions = self.runtime.tick()
            except Exception as exc:
                self.tick_errors += 1
                self.last_tick_error = redact_urls_in(f"{type(exc).__name__}: {exc}")
                self._say(f"error: the timer loop failed: {self.last_tick_error}")
                if not isinstance(exc, SopdslError):
                    self._say(redact_urls_in(traceback.format_exc().rstrip()))
                return []
            self.last_tick_error = None
            return actions

    # ---- events ------------------------------------------------------------------------------------

    def feed(self, event: Any, index: int | None = None) -> list[Action]:
        """Feed one decoded JSON event; raise `RejectedEventError` if it is not an object or the runtime refuses it."""
        if not isinstance(event, dict):
            self.rejected += 1
            raise RejectedEventError(f"an event must be a JSON object, got {_json_type(event)}", None, index)
        with self._lock:
            if self._closed:
                raise ShuttingDownError("the service is shutting down; send the event again later")
            try:
                actions = self.runtime.feed(event)
            except SopdslError as exc:
                self.rejected += 1
                raise RejectedEventError(str(exc), getattr(exc, "field", None), index) from None
        if actions:
            self._wake.set()
        return actions

    def submit(self, payload: Any) -> tuple[int, dict[str, Any]]:
        """Feed one event or a list of them, in order; the HTTP status and JSON body to answer with.

        A list stops at its first bad event: the events before it were taken (`accepted`), the
        rest were not, so a client resends from `index` once that event is fixed.
        """
        if not isinstance(payload, list):
            try:
                actions = self.feed(payload)
            except RejectedEventError as exc:
                return HTTPStatus.BAD_REQUEST, exc.to_json() | {"accepted": 0, "actions": []}
            return HTTPStatus.ACCEPTED, {"accepted": 1, "actions": [a.to_json(self.zone) for a in actions]}
        actions, problem = self._feed_list(payload)
        answer = [a.to_json(self.zone) for a in actions]
        if problem is not None:
            assert problem.index is not None
            return HTTPStatus.BAD_REQUEST, problem.to_json() | {"accepted": problem.index, "actions": answer}
        return HTTPStatus.ACCEPTED, {"accepted": len(payload), "actions": answer}

    def _feed_list(self, events: list[Any]) -> tuple[list[Action], RejectedEventError | None]:
        """Feed the events before the first bad one, in one transaction; and the bad one's error."""
        cut = next((i for i, e in enumerate(events) if not isinstance(e, dict)), len(events))
        problem = None
        if cut < len(events):
            problem = RejectedEventError(
                f"an event must be a JSON object, got {_json_type(events[cut])}", None, cut
            )
        with self._lock:
            if self._closed:
                raise ShuttingDownError("the service is shutting down; send the events again later")
            try:
                actions = self.runtime.feed_many(events[:cut]) if cut else []
            except SopdslError as exc:
                # All or none: the events before the bad one go in again, on their own.
                index = getattr(exc, "index", None) or 0
                actions = self.runtime.feed_many(events[:index]) if index else []
                message = getattr(exc, "reason", str(exc))
                problem = RejectedEventError(message, getattr(exc, "field", None), index)
        if problem is not None:
            self.rejected += 1
        if actions:
            self._wake.set()
        return actions, problem

    def feed_lines(self, lines: Iterable[str], *, name: str = "stdin") -> int:
        """Feed one JSON event per line (blank lines skipped); report each bad line and go on. Returns how many were bad."""
        bad = 0
        for number, line in enumerate(lines, start=1):
            if self._stop.is_set():
                break
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError as exc:
                bad += 1
                self.rejected += 1
                self._say(f"{name}:{number}:{exc.colno}: error: not JSON: {exc.msg}; line skipped")
                continue
            try:
                self.feed(event)
            except RejectedEventError as exc:
                bad += 1
                field = f" (field: {exc.field})" if exc.field else ""
                self._say(f"{name}:{number}: error: {exc.message}{field}; line skipped")
        return bad

    # ---- health and metrics -----------------------------------------------------------------------

    def health(self) -> tuple[int, dict[str, Any]]:
        """200 while the timer loop is sound; 503 with the error after a failed tick, or when stopping."""
        body: dict[str, Any] = {
            "status": "ok",
            "uptime_seconds": round(time.monotonic() - self.started_at, 1),
        }
        if self._stop.is_set():
            return HTTPStatus.SERVICE_UNAVAILABLE, {**body, "status": "stopping"}
        if self.last_tick_error is not None:
            return HTTPStatus.SERVICE_UNAVAILABLE, {
                **body,
                "status": "failing",
                "error": self.last_tick_error,
            }
        return HTTPStatus.OK, body

    def metrics(self) -> str:
        """The runtime's statistics and the service's own counters in Prometheus text format."""
        with self._lock:
            stats = dict(self.runtime.stats()) if not self._closed else {}
        lines: list[str] = []

        def series(name: str, kind: str, help_text: str, value: float) -> None:
            lines.extend((f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {value:g}"))

        for key, value in stats.items():
            name, kind, help_text = _SERIES.get(key, (f"sopdsl_{key}", "gauge", f"Runtime statistic {key}."))
            series(name, kind, help_text, value)
        series("sopdsl_events_rejected_total", "counter", "Events refused as malformed.", self.rejected)
        series("sopdsl_tick_errors_total", "counter", "Timer loop runs that failed.", self.tick_errors)
        return "\n".join(lines) + "\n"

    def _say(self, message: str) -> None:
        self.log.write(message + "\n")
        self.log.flush()


def _json_type(value: Any) -> str:
    names = {list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _handler(service: Service) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "sopdsl"

        def do_GET(self) -> None:
            if self._endpoint == "/health":
                self._json(*service.health())
            elif self._endpoint == "/metrics":
                self._send(
                    HTTPStatus.OK, service.metrics().encode(), "text/plain; version=0.0.4; charset=utf-8"
                )
            elif self._endpoint == "/events":
                self._json(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "send events with POST"}, allow="POST")
            else:
                self._not_found()

        def do_POST(self) -> None:
            if self._endpoint != "/events":
                if self._endpoint in ("/health", "/metrics"):
                    self._json(
                        HTTPStatus.METHOD_NOT_ALLOWED, {"error": f"use GET {self._endpoint}"}, allow="GET"
                    )
                else:
                    self._not_found()
                return
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit():
                self._json(HTTPStatus.LENGTH_REQUIRED, {"error": "a Content-Length header is required"})
                return
            if int(length) > MAX_BODY:
                self._json(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    {"error": f"the body is over {MAX_BODY} bytes; send fewer events per request"},
                )
                return
            raw = self.rfile.read(int(length))
            try:
                payload = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                self._json(HTTPStatus.BAD_REQUEST, {"error": "the body is not UTF-8", "field": None})
                return
            except json.JSONDecodeError as exc:
                error = f"the body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
                self._json(HTTPStatus.BAD_REQUEST, {"error": error, "field": None})
                return
            try:
                self._json(*service.submit(payload))
            except ShuttingDownError as exc:
                self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(exc)})
            except Exception as exc:
                # A bug, not the caller's mistake: answered and logged, and the service goes on.
                service._say(
                    "error: internal error while handling an event: "
                    + redact_urls_in(f"{type(exc).__name__}: {exc}")
                )
                service._say(redact_urls_in(traceback.format_exc().rstrip()))
                self._json(
                    HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"internal error: {type(exc).__name__}"}
                )

        @property
        def _endpoint(self) -> str:
            return self.path.split("?", 1)[0]  # a scraper may add a query string

        def _not_found(self) -> None:
            self._json(
                HTTPStatus.NOT_FOUND, {"error": f"no such endpoint {self._endpoint}; try POST /events"}
            )

        def _json(self, status: int, body: Mapping[str, Any], allow: str | None = None) -> None:
            data = json.dumps(body, ensure_ascii=False, sort_keys=True).encode("utf-8")
            self._send(status, data, "application/json; charset=utf-8", allow)

        def _send(self, status: int, data: bytes, content_type: str, allow: str | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            if allow:
                self.send_header("Allow", allow)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per request would drown the action log; errors are reported above

    return Handler


# ---- the command ---------------------------------------------------------------------------------------


def read_plan(paths: tuple[str, ...], root: str | None = None) -> Plan:
    """A compiled plan.json, or playbook files checked and compiled (diagnostics printed, exit 1);
    `root`: the project folder their includes stay in."""
    if len(paths) == 1 and paths[0].endswith(".json"):
        path = Path(paths[0])
        try:
            return load_plan(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise click.UsageError(f"cannot read {path}: {exc}") from None
    # Imported here: the front end (and Lark) loads only when the service is given playbook text.
    from sopdsl.cli import build_plan

    return build_plan(paths, Path(root) if root is not None else None)


@click.command(name="run")
@click.argument("plan_paths", metavar="PLAN...", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--store", required=True, help="sqlite:///state.db, postgresql://..., or memory.")
@click.option(
    "--executors",
    "executors_file",
    type=click.Path(exists=True, dir_okay=False),
    help="Executor configuration (YAML or TOML); without it every action is printed as a JSON line.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8080, show_default=True, type=int, help="Port to listen on; 0 picks a free one."
)
@click.option(
    "--stdin",
    "use_stdin",
    is_flag=True,
    help="Also read one JSON event per line from stdin; stop at its end.",
)
@click.option("--dry-run", is_flag=True, help="Decide everything, but only log what executors would do.")
@click.option(
    "--shard", default="default", show_default=True, help="The community (shard) this process serves."
)
@click.option("--worker", default=None, help="This worker's name, when several share a PostgreSQL store.")
@click.option(
    "--migrate", is_flag=True, help="Upgrade a store at an older schema version (back it up first)."
)
@click.option(
    "--reload",
    "reload_plan",
    is_flag=True,
    help="If the store runs another version of these playbooks, switch it to this one "
    "(members mid-flow finish or move as each playbook's `on change` says).",
)
@click.option(
    "--root",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Project folder: includes and `file` templates may only name files inside it "
    "(default: the folder of each file given, or the folder given).",
)
def run_command(
    plan_paths: tuple[str, ...],
    store: str,
    executors_file: str | None,
    host: str,
    port: int,
    use_stdin: bool,
    dry_run: bool,
    shard: str,
    worker: str | None,
    migrate: bool,
    reload_plan: bool,
    root: str | None,
) -> None:
    """Run playbooks live: events over HTTP (POST /events) and stdin, timers, executors, /health, /metrics.

    SIGHUP reads the playbooks again and switches to them, as --reload does at start.
    """
    # Until the service runs, a SIGHUP (a deploy script reloading early) is ignored, not fatal.
    hangup = signal.signal(signal.SIGHUP, signal.SIG_IGN) if hasattr(signal, "SIGHUP") else None
    try:
        from sopdsl.live.runtime import Runtime, open_store

        try:
            plan = read_plan(plan_paths, root)
        except PlanError as exc:
            click.echo(f"error: {plan_paths[0]}: {exc}", err=True)
            sys.exit(1)
        # The runtime reports retries, parked actions and dry-run decisions through logging.
        # Masked as a last line of defence: a record quoting a URL's password shows `***`.
        to_stderr = logging.StreamHandler(sys.stderr)
        to_stderr.setFormatter(RedactingFormatter("%(levelname)s %(message)s"))
        logging.basicConfig(level=logging.INFO, handlers=[to_stderr])
        zone = timeutil.zone(plan.program.timezone)
        try:
            executors = (
                load_executors(executors_file, zone=zone, actions=plan.program.actions)
                if executors_file
                else default_executors(zone)
            )
        except ExecutorConfigError as exc:
            click.echo(str(exc), err=True)
            sys.exit(1)
        try:
            opened = open_store(store, migrate=migrate)
            runtime = Runtime(
                plan,
                opened,
                executors=executors,
                dry_run=dry_run,
                shard=shard,
                worker=worker,
                on_plan_change="reload" if reload_plan else "refuse",
            )
        except StoreError as exc:
            hint = "\nhint: back the store up, then start with --migrate" if "migrate" in str(exc) else ""
            reason = redact_text(str(exc), secrets_of(store))
            click.echo(f"error: cannot open the store {redact_url(store)}: {reason}{hint}", err=True)
            sys.exit(2)
        except SopdslError as exc:
            click.echo(f"error: {redact_text(str(exc), secrets_of(store))}", err=True)
            sys.exit(1)
        service = Service(runtime, zone=zone, host=host, port=port)
        try:
            service.start()
        except OSError as exc:
            runtime.close()
            click.echo(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}", err=True)
            sys.exit(2)

        mode = " (dry run)" if dry_run else ""
        click.echo(
            f"sopdsl run: plan {plan.content_hash[:12]} ({len(plan.playbooks)} playbook(s)), store {redact_url(store)}{mode}, "
            f"listening on {service.url}",
            err=True,
        )

        def on_signal(signum: int, frame: FrameType | None) -> None:
            service.request_stop()

        reloader = _Reloader(runtime, plan_paths, root)
        previous = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGINT, signal.SIGTERM)}
        if hasattr(signal, "SIGHUP"):
            previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, lambda signum, frame: reloader.request())
        try:
            bad = _serve(service, use_stdin)
        finally:
            reloader.stop()
            service.stop()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        click.echo("sopdsl run: stopped", err=True)
        sys.exit(1 if bad else 0)
    finally:
        if hangup is not None:
            signal.signal(signal.SIGHUP, hangup)


class _Reloader:
    """Reads the playbooks again on SIGHUP, in a thread (compiling takes a while), one reload at a
    time, so the last signal's files win."""

    def __init__(self, runtime: Runtime, plan_paths: tuple[str, ...], root: str | None = None) -> None:
        self.runtime = runtime
        self.plan_paths = plan_paths
        self.root = root
        self._one = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._stopped = False

    def request(self) -> None:
        """Start a reload (from the signal handler: it only starts a thread)."""
        thread = threading.Thread(target=self._run, name="sopdsl-reload", daemon=True)
        self._threads.append(thread)
        thread.start()

    def stop(self) -> None:
        """Let a reload in progress finish, and start no more."""
        self._stopped = True
        for thread in self._threads:
            thread.join(timeout=60)

    def _run(self) -> None:
        with self._one:
            if not self._stopped:
                _reload(self.runtime, self.plan_paths, self.root)


def _reload(runtime: Runtime, plan_paths: tuple[str, ...], root: str | None = None) -> None:
    """Read the playbooks again and switch the runtime to them; on any error keep the running version."""
    before = runtime.plan.content_hash
    running = f"still running plan {before[:12]}"
    try:
        plan = read_plan(plan_paths, root)
        changes = runtime.reload(plan)
    except SystemExit:  # the playbooks have errors, printed above by the checker
        click.echo(
            f"sopdsl run: reload refused ({running}): fix the errors above, then send SIGHUP again", err=True
        )
        return
    except (SopdslError, click.ClickException) as exc:
        click.echo(f"sopdsl run: reload refused ({running}): {redact_urls_in(str(exc))}", err=True)
        return
    except Exception as exc:  # a store gone away, say: the service goes on with what it runs
        reason = redact_urls_in(f"{type(exc).__name__}: {exc}")
        click.echo(f"sopdsl run: reload failed ({running}): {reason}", err=True)
        return
    if runtime.plan.content_hash == before:
        click.echo(f"sopdsl run: the playbooks are unchanged; {running}", err=True)
        return
    moved = f", {len(changes)} flow(s) in progress decided (see the log)" if changes else ""
    click.echo(f"sopdsl run: now running plan {runtime.plan.content_hash[:12]}{moved}", err=True)
    missing = runtime.missing_executors()
    if missing:
        click.echo(f"sopdsl run: warning: no executor for {', '.join(missing)}", err=True)


def _serve(service: Service, use_stdin: bool) -> int:
    """Wait for a signal (or the end of stdin); how many stdin lines were rejected."""
    if not use_stdin:
        service.wait()
        return 0
    counted: list[int] = []

    def read_stdin() -> None:
        counted.append(service.feed_lines(sys.stdin))
        service.request_stop()

    reader = threading.Thread(target=read_stdin, name="sopdsl-stdin", daemon=True)
    reader.start()
    service.wait()
    reader.join(timeout=1)
    if counted:
        service.tick()  # at the end of input, what is already due runs before the process goes
    return sum(counted)
