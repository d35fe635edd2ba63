"""The service (`sopdsl run`): the runtime behind HTTP, stdin lines and a timer loop.

Input: events as JSON, over HTTP (`POST /events`, one event or a list) and, with `--stdin`, one
per line of standard input; the passing of time, from a loop that ticks the runtime. Output: the
runtime's actions, handed to the configured executors and returned to the HTTP caller as
`queued`; health, readiness and Prometheus metrics for whoever watches the process. The engine
stays single-threaded behind the runtime's own lock; the service feeds one batch at a time, in
arrival order, and never holds a feed back while an executor (a slow webhook) works in the timer
loop. A bad event is answered with a located error and the service keeps running.

The HTTP app is in `app.py` (Starlette), its serving in `http.py` (uvicorn), the `sopdsl run`
command in `command.py`, reading the playbooks (at start and on SIGHUP) in `reload.py`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
import traceback
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from sopdsl.engine.actions import Action
from sopdsl.errors import SopdslError
from sopdsl.live.auth import Tokens
from sopdsl.live.bodies import MAX_BODY
from sopdsl.live.closing import RuntimeClosedError
from sopdsl.live.commit import ClosedError, GroupCommitter, settle
from sopdsl.live.metrics import ServiceCounters, exposition, registry
from sopdsl.live.redact import redact_urls_in
from sopdsl.live.runtime import Fed
from sopdsl.live.service_types import (
    Answered,
    Receiver,
    RejectedEventError,
    RuntimeLike,
    ShuttingDownError,
)

__all__ = [
    "MAX_BODY",
    "TICK_EVERY",
    "Answered",
    "Receiver",
    "RejectedEventError",
    "RuntimeLike",
    "Service",
    "ShuttingDownError",
]

TICK_EVERY = 1.0  # seconds: the engine's clock has one-second resolution
DISPATCH_GATHER = 0.005  # seconds a woken timer loop waits for more fed actions before dispatching


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
        tokens: Tokens | None = None,
        allowed_hosts: Iterable[str] | None = None,
        group_commit: bool = True,
        receivers: Iterable[Receiver] = (),
        reuse_port: bool = False,
        fronts: int = 0,
    ) -> None:
        self.runtime = runtime
        self.zone = zone
        self.host = host
        self.port = port
        self.tick_every = tick_every
        self.log = log if log is not None else sys.stderr
        self.tokens = tokens  # None: no authentication (`--insecure-no-auth`, loopback only)
        self.allowed_hosts = list(allowed_hosts) if allowed_hosts is not None else None
        self.receivers = list(receivers)  # platform callbacks, each at its own path
        self.reuse_port = reuse_port  # one of several worker processes listening on one port
        self.fronts = fronts  # HTTP front processes reading requests for this one (`fronts.py`)
        self.counters = ServiceCounters()
        self.registry = registry(self._stats, self.counters)
        self.last_tick_error: str | None = None
        self.started_at = time.monotonic()
        # Guards reading the runtime's stats and (without group commit) feeds: none once it is closed.
        self._lock = threading.Lock()
        # One tick at a time: two concurrent ticks of one Runtime were seen handing the same action
        # to its executor twice (memory and SQLite stores).
        self._tick_lock = threading.Lock()
        self._wake = threading.Event()  # set by a feed: its actions go to the executors at once
        self._stop = threading.Event()
        self._ticked = threading.Event()  # the timer loop has run once: the store answers
        self._closed = False
        # Requests arriving together share a transaction and its sync (commit.py); Temporal's front has no store.
        syncer = getattr(runtime, "store", None)
        self._committer = GroupCommitter(runtime.feed_batch, self.wake_up, syncer) if group_commit else None
        self._server: Any = None
        self._threads: list[threading.Thread] = []

    @property
    def rejected(self) -> int:
        """Events refused as malformed so far (HTTP and stdin)."""
        return self.counters.rejected

    @property
    def tick_errors(self) -> int:
        """Timer loop runs that failed so far."""
        return self.counters.tick_errors

    # ---- running -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Listen (raises OSError if the address is taken), then serve HTTP and run the timer loop in threads."""
        from sopdsl.live.app import create_app
        from sopdsl.live.http import Server

        if self.fronts:
            from sopdsl.live.fronts import Fronts

            self._server = Fronts(self, create_app(self))
        else:
            self._server = Server(create_app(self), self.host, self.port, reuse_port=self.reuse_port)
        self.port = self._server.port
        self._server.start()
        self._threads = [threading.Thread(target=self._timer_loop, name="sopdsl-timers", daemon=True)]
        for thread in self._threads:
            thread.start()

    @property
    def url(self) -> str:
        """The base URL the service listens on."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def wake_up(self) -> None:
        """Run the timer loop's next turn now (entries were committed or journaled for this
        worker); thread-safe. Set only when clear: setting it again takes its lock and notifies."""
        if not self._wake.is_set():
            self._wake.set()

    def request_stop(self) -> None:
        """Ask the service to stop; safe from a signal handler or another thread."""
        self._stop.set()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        """Whether a stop was requested."""
        return self._stop.is_set()

    def wait(self) -> None:
        """Block until a stop is requested (a signal, end of stdin, or `request_stop`)."""
        while not self._stop.wait(0.5):
            pass

    def stop(self) -> None:
        """Stop listening, let requests in progress finish, finish the timer loop, close the runtime (idempotent)."""
        self.request_stop()
        if self._server is not None:
            self._server.stop()
        for thread in self._threads:
            thread.join(timeout=30)
        if self._committer is not None:
            self._committer.close()
        with self._lock, self._tick_lock:
            if not self._closed:
                self._closed = True
                self.runtime.close()

    def _timer_loop(self) -> None:
        woken_at = -DISPATCH_GATHER  # when the last turn woken by a feed began
        woken = False
        while not self._stop.is_set():
            if woken:
                # Under load, at most one turn per DISPATCH_GATHER: the transactions committed
                # meanwhile are dispatched together, one claim and one finish for all their
                # actions instead of a pair each. A feed after a quiet spell goes out at once.
                rest = woken_at + DISPATCH_GATHER - time.monotonic()
                if rest > 0:
                    self._stop.wait(rest)
                woken_at = time.monotonic()
            self._wake.clear()
            self.tick()
            self._ticked.set()
            woken = self._wake.wait(self.tick_every)

    def tick(self) -> list[Action]:
        """Run due timers and hand due actions to executors; a failure is logged and shown by /health."""
        with self._tick_lock:
            if self._closed:
                return []
            try:
                actions = self.runtime.tick()
            except Exception as exc:
                self.counters.tick_errors += 1
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
            self.counters.rejected += 1
            raise RejectedEventError(f"an event must be a JSON object, got {_json_type(event)}", None, index)
        fed, problem = self._feed_list([event])
        if problem is not None:
            raise RejectedEventError(problem.message, problem.field, index)
        return fed.actions

    def serves(self, shard: str) -> bool:
        """Whether events for `shard` can be fed here: the runtime's own, or any when it takes many."""
        return shard == self.runtime.shard or bool(getattr(self.runtime, "many_shards", False))

    def submit(self, payload: Any, shard: str | None = None) -> tuple[int, dict[str, Any]]:
        """Feed one event or a list of them, in order; the HTTP status and JSON body to answer with.

        The answer says which events were stored (`stored`, their places), which were not stored
        again because their `id` was taken before (`duplicate`, `duplicate_ids`), which one was
        refused and why (`failed`: its place, the error and the field), and which were not tried
        after it (`not_tried`). A list stops at its first bad event: the events before it were
        stored, so a client fixes that one and resends from `index`. Actions the events caused
        are `queued`: the executors get them from the timer loop, after the answer.
        """
        events = payload if isinstance(payload, list) else [payload]
        return self._answer(events, *self._feed_list(events, shard))

    async def submit_async(self, payload: Any, shard: str | None = None) -> tuple[int, dict[str, Any]]:
        """`submit` from the event loop, which goes on serving other requests while these commit."""
        answered: asyncio.Future[tuple[int, dict[str, Any]]] = asyncio.get_running_loop().create_future()
        self.submit_soon(payload, settle(answered), shard)
        return await answered

    def submit_soon(self, payload: Any, done: Answered, shard: str | None = None) -> None:
        """`submit` from the event loop without waiting: `done(answer, None)` is called in the loop
        once the events are durable, or `done(None, error)` (HTTP fronts' hot path, and
        `submit_async`'s)."""
        events = payload if isinstance(payload, list) else [payload]
        shard = None if shard == self.runtime.shard else shard
        if self._committer is None:  # no group commit: fed in a thread, as `submit` feeds
            self._submit_in_thread(events, shard, done)
            return
        commit = self._committer.submit_soon
        try:
            cut, problem = self._objects(events)
        except ShuttingDownError as exc:
            done(None, exc)
            return

        def answer(fed: Fed, problem: RejectedEventError | None) -> None:
            try:
                found = self._answer(events, *self._counted(fed, problem))
            except Exception as exc:  # a bug: answered as one (500), not left unanswered
                done(None, exc)
            else:
                done(found, None)

        def first(fed: Fed | None, error: BaseException | None) -> None:
            if error is None:
                answer(fed or _NOTHING, problem)
            elif isinstance(error, SopdslError) and not isinstance(error, RuntimeClosedError):
                # All or none: the events before the bad one go in again, on their own.
                index = getattr(error, "index", None) or 0
                rejected = _rejected(error, index)
                if not index:
                    answer(_NOTHING, rejected)
                    return

                def again(fed: Fed | None, error: BaseException | None) -> None:
                    if error is None:
                        answer(fed or _NOTHING, rejected)
                    else:
                        done(None, _shutting_down(error))

                commit(events[:index], again, shard)
            else:
                done(None, _shutting_down(error))

        if cut:
            commit(events[:cut], first, shard)
        else:
            answer(_NOTHING, problem)

    def _answer(
        self, events: list[Any], fed: Fed, problem: RejectedEventError | None
    ) -> tuple[int, dict[str, Any]]:
        cut = problem.index if problem is not None and problem.index is not None else len(events)
        duplicates = set(fed.duplicates)
        stored = [i for i in range(cut) if i not in duplicates]
        body: dict[str, Any] = {
            "accepted": len(stored),
            "stored": stored,
            "duplicate": len(duplicates),
            "duplicate_ids": [events[i].get("id") for i in sorted(duplicates)],
            "failed": [],
            "not_tried": list(range(cut + 1, len(events))),
            "actions": [self.action_json(a) for a in fed.actions],
        }
        if problem is None:
            return HTTPStatus.ACCEPTED, body
        failed = {"index": cut, "error": problem.message, "field": problem.field}
        return HTTPStatus.BAD_REQUEST, body | problem.to_json() | {"index": cut, "failed": [failed]}

    def action_json(self, action: Action) -> dict[str, Any]:
        """An action as an answer shows it. The runtime hands back `queued` for one to go out
        (`fed.queued`, the one place that says so), and a Temporal front lists none."""
        return action.to_json(self.zone)

    def _submit_in_thread(self, events: list[Any], shard: str | None, done: Answered) -> None:
        def fed(future: asyncio.Future[tuple[Fed, RejectedEventError | None]]) -> None:
            if future.cancelled():
                return
            error = future.exception()
            if error is not None:
                done(None, error)
                return
            try:
                found = self._answer(events, *future.result())
            except Exception as exc:  # a bug: answered as one (500), not left unanswered
                done(None, exc)
            else:
                done(found, None)

        loop = asyncio.get_running_loop()
        loop.run_in_executor(None, self._feed_list, events, shard).add_done_callback(fed)

    def _feed_list(
        self, events: list[Any], shard: str | None = None
    ) -> tuple[Fed, RejectedEventError | None]:
        """Feed the events before the first bad one, in one transaction; and the bad one's error."""
        cut, problem = self._objects(events)
        try:
            fed = self._feed(events[:cut], shard) if cut else _NOTHING
        except RuntimeClosedError as exc:
            raise ShuttingDownError(str(exc)) from None
        except SopdslError as exc:
            # All or none: the events before the bad one go in again, on their own.
            index = getattr(exc, "index", None) or 0
            fed = self._feed(events[:index], shard) if index else _NOTHING
            problem = _rejected(exc, index)
        return self._counted(fed, problem)

    def _objects(self, events: list[Any]) -> tuple[int, RejectedEventError | None]:
        """How many events come before the first that is not a JSON object, and its error."""
        cut = next((i for i, e in enumerate(events) if not isinstance(e, dict)), len(events))
        problem = None
        if cut < len(events):
            problem = RejectedEventError(
                f"an event must be a JSON object, got {_json_type(events[cut])}", None, cut
            )
        if self._closed or self._stop.is_set():
            raise ShuttingDownError("the service is shutting down; send the events again later")
        return cut, problem

    def _counted(self, fed: Fed, problem: RejectedEventError | None) -> tuple[Fed, RejectedEventError | None]:
        if problem is not None:
            self.counters.rejected += 1
        self.counters.duplicates += len(fed.duplicates)
        if fed.actions and not self._wake.is_set():
            self._wake.set()
        return fed, problem

    def _feed(self, events: list[Any], shard: str | None = None) -> Fed:
        if self._committer is not None:
            try:
                return self._committer.submit(events, shard)
            except ClosedError as exc:
                raise ShuttingDownError(str(exc)) from None
        with self._lock:
            if shard is None:
                return self.runtime.feed_batch(events)
            return self.runtime.feed_batch(events, shard=shard)  # type: ignore[call-arg]

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
                self.counters.rejected += 1
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

    def live(self) -> tuple[int, dict[str, Any]]:
        """Liveness (`/healthz`): the process answers; 503 only once it is stopping."""
        if self._stop.is_set():
            return HTTPStatus.SERVICE_UNAVAILABLE, {"status": "stopping"}
        return HTTPStatus.OK, {"status": "ok"}

    def ready(self) -> tuple[int, dict[str, Any]]:
        """Readiness (`/readyz`): the timer loop has run and its last run reached the store."""
        status, body = self.health()
        if status == HTTPStatus.OK and not self._ticked.is_set():
            return HTTPStatus.SERVICE_UNAVAILABLE, {**body, "status": "starting"}
        return status, body

    def _stats(self) -> dict[str, float]:
        with self._lock:
            stats: dict[str, float] = dict(self.runtime.stats()) if not self._closed else {}
        if stats:
            # Webhook attempts that failed and were retried inside one executor call: the store
            # sees only the call's outcome, so they are added here.
            stats["failures"] = stats.get("failures", 0) + sum(
                getattr(e, "failed_attempts", 0) for e in _unique(self.runtime.executors)
            )
        return stats

    def metrics(self) -> str:
        """The runtime's statistics and the service's own counters in Prometheus text format."""
        return exposition(self.registry)

    def say(self, message: str) -> None:
        """Write one line to the service's log (stderr by default)."""
        self.log.write(message + "\n")
        self.log.flush()


_NOTHING = Fed([], [])


def _shutting_down(error: BaseException) -> BaseException:
    """The committer's refusal after it closed as the service's (a 503); any other error as it is."""
    closed = isinstance(error, (ClosedError, RuntimeClosedError))
    return ShuttingDownError(str(error)) if closed else error


def _rejected(exc: SopdslError, index: int) -> RejectedEventError:
    return RejectedEventError(getattr(exc, "reason", str(exc)), getattr(exc, "field", None), index)


def _unique(executors: Any) -> list[Any]:
    """Each executor once (one webhook may serve several kinds)."""
    found: dict[int, Any] = {}
    for executor in dict(executors or {}).values():
        found.setdefault(id(executor), executor)
    return list(found.values())


def _json_type(value: Any) -> str:
    names = {list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def __getattr__(name: str) -> Any:
    # `run_command` lived here before v2: imported on first use, since the command imports this module.
    if name == "run_command":
        from sopdsl.live.command import run_command

        return run_command
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
