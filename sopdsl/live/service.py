"""The service (`sopdsl run`): the runtime behind HTTP, stdin lines and a timer loop.

Input: events as JSON, over HTTP (`POST /events`, one event or a list) and, with `--stdin`, one
per line of standard input; the passing of time, from a loop that ticks the runtime. Output: the
runtime's actions, handed to the configured executors and returned to the HTTP caller; `GET
/health` and `GET /metrics` (Prometheus text) for whoever watches the process. The engine stays
single-threaded behind the runtime's own lock; the service feeds one event at a time, in arrival
order, and never holds a feed back while an executor (a slow webhook) works in the timer loop. A
bad event is answered with a located error and the service keeps running.

The HTTP protocol itself is in `http.py`, the `sopdsl run` command in `command.py`, reading the
playbooks (at start and on SIGHUP) in `reload.py`.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from typing import Any, Protocol, TextIO
from zoneinfo import ZoneInfo

from sopdsl.engine.actions import Action
from sopdsl.errors import SopdslError
from sopdsl.live.http import MAX_BODY, ShuttingDownError, listen
from sopdsl.live.redact import redact_urls_in

__all__ = [
    "MAX_BODY",
    "TICK_EVERY",
    "RejectedEventError",
    "RuntimeLike",
    "Service",
    "ShuttingDownError",
]

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
        self._server = listen(self, self.host, self.port)
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
                self.say(f"error: the timer loop failed: {self.last_tick_error}")
                if not isinstance(exc, SopdslError):
                    self.say(redact_urls_in(traceback.format_exc().rstrip()))
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
                self.say(f"{name}:{number}:{exc.colno}: error: not JSON: {exc.msg}; line skipped")
                continue
            try:
                self.feed(event)
            except RejectedEventError as exc:
                bad += 1
                field = f" (field: {exc.field})" if exc.field else ""
                self.say(f"{name}:{number}: error: {exc.message}{field}; line skipped")
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

    def say(self, message: str) -> None:
        """Write one line to the service's log (stderr by default)."""
        self.log.write(message + "\n")
        self.log.flush()


def _json_type(value: Any) -> str:
    names = {list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def __getattr__(name: str) -> Any:
    # `run_command` lived here before v2: imported on first use, since the command imports this module.
    if name == "run_command":
        from sopdsl.live.command import run_command

        return run_command
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
