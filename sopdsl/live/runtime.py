"""The live runtime's facade: the engine on a real (or manual) clock, with a durable store, an outbox and executors.

Input: a compiled `Plan`, a store, executors, then events (`feed`) and the passing of time
(`tick`, `run`). Output: calls to executors, each with the action's idempotency key, at least
once. Durability is a journal of the engine's inputs plus an outbox of its outputs: the engine
is deterministic, so replaying a shard's journal through a fresh engine rebuilds its state
exactly, and feeding an event appends it, applies it and stores the actions it caused in one
transaction. See docs/runtime.md for the design and its guarantees.

`Runtime` holds the settings and the locks, and hands the work on: `shards.py` replays and
applies journals, `outbox.py` dispatches the actions to executors, `loop.py` ticks it on its
clock (`run`, `run_async`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, TypeVar

from sopdsl.engine import versions
from sopdsl.engine.actions import Action
from sopdsl.engine.engine import Engine
from sopdsl.engine.events import Event
from sopdsl.engine.versions import PlanChange
from sopdsl.live import loop
from sopdsl.live.balance import Balance
from sopdsl.live.clock import Clock, ManualClock, RealClock
from sopdsl.live.closing import RuntimeClosedError, refuse_if_closed
from sopdsl.live.dispatch import (
    CustomAction,
    Executor,
    ExecutorError,
    RetryPolicy,
    registry,
)
from sopdsl.live.fed import Fed, Taken, fed, queued, without_held
from sopdsl.live.intake import EventError, intake
from sopdsl.live.outbox import Outbox
from sopdsl.live.plan_switch import PlanChangedError, Switching
from sopdsl.live.redact import redact_url
from sopdsl.live.registering import Registering
from sopdsl.live.retention import Keeping, Retention
from sopdsl.live.shards import Check, Shards
from sopdsl.live.store import Store
from sopdsl.live.store import open_store as _open_store
from sopdsl.live.store_contacts import share_store
from sopdsl.plan import Plan, timeutil

__all__ = [
    "Clock",
    "CustomAction",
    "EventError",
    "Executor",
    "ExecutorError",
    "Fed",
    "ManualClock",
    "PlanChange",
    "PlanChangedError",
    "RealClock",
    "RetryPolicy",
    "Runtime",
    "RuntimeClosedError",
    "open_store",
]

log = logging.getLogger("sopdsl.runtime")

T = TypeVar("T")

_GRACE = 60  # the engine's clock this far behind the runtime's means the runtime was down


def _glance(seconds: int) -> str:
    """Past a minute, seconds as a person reads them at a glance (`23 min 10 s; `, `24 h; `); else nothing."""
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minute} min; " if minute else f"{hours} h; "
    if minutes:
        return f"{minute} min {second} s; " if second else f"{minute} min; "
    return ""


def open_store(url: str, *, migrate: bool = False) -> Store:
    """Open a store by URL: `memory://`, `sqlite:///state.db` or `postgresql://...`."""
    return _open_store("memory://" if url == "memory" else url, migrate=migrate)


class Runtime(Registering, Keeping, Switching):
    """The sopdsl engine run live; see the module docstring and docs/runtime.md.

    `feed` and `tick` may be called from different threads (an HTTP handler and a timer loop).
    """

    many_shards = True  # `feed_batch(..., shard=NAME)` feeds any shard of the store

    def __init__(
        self,
        plan: Plan,
        store: Store | str,
        *,
        executors: Mapping[str, Executor | CustomAction] | None = None,
        clock: Clock | None = None,
        dry_run: bool = False,
        shard: str = "default",
        worker: str | None = None,
        seed: int = 0,
        retry: RetryPolicy | None = None,
        lease: float = 30.0,
        batch: int = 20,
        late: int = 300,
        early: int = 300,
        missed_after: int | None = -1,
        on_plan_change: Literal["refuse", "reload"] = "refuse",
        snapshot_every: int | None = None,
        concurrency: int = 1,
        keep_days: float | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if on_plan_change not in ("refuse", "reload"):
            raise ValueError(f"on_plan_change must be 'refuse' or 'reload', not {on_plan_change!r}")
        if not plan.content_hash:
            plan = plan.with_hash()
        self.plan = plan
        self.clock: Clock = clock if clock is not None else RealClock()
        self.dry_run = dry_run
        self.shard = shard
        self.seed = seed
        self.retry = retry if retry is not None else RetryPolicy()
        self.lease = lease
        self.wall = wall  # epoch seconds that leases are timed by (tests pass one they move by hand)
        # Journal entries between engine snapshots (0: none; None: automatic, growing with the
        # engine's state, see `shards.snapshot_due`): a restart replays at most that many.
        self.snapshot_every = snapshot_every
        # Rows claimed at a time: few enough that other workers get a share while slow
        # executors work through them; enough to keep a claim's round trip cheap per row.
        self.batch = batch
        # Executor calls one worker makes at once (each claimed batch holds one row per member):
        # above 1, executors that wait on a platform's API overlap their waits. Executors must
        # then be thread-safe (the webhook's and the log's are).
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        self.concurrency = concurrency
        # A loop that dispatches between other work may set it (see outbox.py): None, dispatch
        # until nothing is due (as `dispatch_apart`'s thread does).
        self.dispatch_budget: float | None = None
        # The loop `run_async` runs on, while it runs: async executors are awaited there.
        self.event_loop: asyncio.AbstractEventLoop | None = None
        # Called when work arrives, while `run_async` waits on its loop (a threading.Event's wait
        # would block the loop): it wakes at once, as `run` does, instead of at its next poll.
        self.on_wake: Callable[[], None] | None = None
        self.on_plan_change = on_plan_change
        self.retention = Retention(keep_days)  # finished rows older than that are purged daily
        self.late = late  # seconds an event may be older than the engine's clock
        self.early = early  # seconds an event may be ahead of the runtime's clock
        # A timer overdue by more than this was missed while the runtime was down (see shards.py);
        # by default only on the wall clock, since a manual clock jumps on purpose.
        self.missed_after = (
            (_GRACE if isinstance(self.clock, RealClock) else None) if missed_after == -1 else missed_after
        )
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.named = worker is not None  # a made-up name dies with the process (see shards.py)
        self.executors = registry(plan, executors or {})
        self.store: Store = open_store(store) if isinstance(store, str) else store
        share_store(self.executors.values(), self.store)  # a callback and a send may meet in other workers
        self._lock = threading.RLock()
        self.wake = threading.Event()  # set when work arrives: the loop (loop.py) goes on at once
        self.closed = False
        self._shards = Shards(self, plan)
        # Which shards this worker applies, when several share the store (balance.py).
        self._balance = Balance(self, self._shards.hand_over)
        self._shards.left_to = self._balance.left_to
        self._outbox = Outbox(self)
        self._known = {shard}  # shards whose record this runtime has made sure of
        try:
            self.store.save_plan(plan.content_hash, plan.dumps())
            info = self.store.ensure_shard(
                shard, start=self.clock.now(), seed=seed, plan_hash=plan.content_hash
            )
            if info.plan_now != plan.content_hash and versions.same_files(
                self._shards.plan(info.plan_now), plan
            ):
                # The same playbooks compiled from another folder (`sopdsl run /abs/path` after
                # `sopdsl run playbooks/`): nothing changed, so go on with the recorded plan.
                self.plan = plan = self._shards.plans[info.plan_now]
            if info.plan_now != plan.content_hash and on_plan_change == "refuse":
                raise PlanChangedError(shard, redact_url(self.store.url), info.plan_now, plan.content_hash)
            # Recover now (replay the journal), so a broken store shows at start, not at the first event.
            with self._lock:
                self._apply(shard, [], until=None)
            if info.plan_now != plan.content_hash:
                self._switch(plan, self._shards.plan(info.plan_now))
        except BaseException:
            if isinstance(store, str):
                self.store.close()
            raise

    # ---- set-up --------------------------------------------------------------------------------------

    def read(self, look: Callable[[Engine], T]) -> T:
        """`look(engine)` on the shard's engine, caught up with the store, while nothing else moves it."""
        with self._lock:
            return look(self.engine())

    def look(self, view: str, argument: str) -> Any:
        """A view of the engine by name (`admin_views.VIEWS`: group, member, tasks), as the admin API shows it."""
        from sopdsl.live.admin_views import look

        return self.read(lambda engine: look(engine, view, argument))

    # ---- events and time -------------------------------------------------------------------------------

    def feed(self, event: Mapping[str, Any] | Event) -> list[Action]:
        """Take one event: validate, journal, apply, store its actions, all at once; return the actions
        (those to go out say `queued`: their executors run after, from the loop).

        Raises `EventError` (with `field`) for a bad event; nothing is stored then. An event whose
        `id` was fed before is ignored (returns []), so a bot may resend after a timeout.
        """
        body = intake(event, self.plan.declarations, self.clock.now())
        self._not_early(body)
        return self._submit(body, check=self._not_late)

    def feed_many(self, events: Iterable[Mapping[str, Any] | Event]) -> list[Action]:
        """Take several events in one transaction (one disk flush): all are stored, or none.

        For a bot that receives events in bursts: durable throughput grows with the batch. A bad
        event raises `EventError` whose `index` is its place in the batch (and whose message
        starts with it); nothing is stored then. Events are applied in the order given.
        """
        return without_held(self.feed_batch(events).actions)

    def feed_batch(self, events: Iterable[Mapping[str, Any] | Event], shard: str | None = None) -> Fed:
        """`feed_many`, also saying which events were not stored because their `id` was taken before,
        and listing, among the actions, copies of those the policy held back (status "deferred").

        `shard` names another shard (community) of the store than the runtime's own; it is made
        on first use, starting now under this runtime's plan."""
        name = shard or self.shard
        refuse_if_closed(self.closed, self.store.url)
        if name not in self._known:
            self._ensure(name)
        now = self.clock.now()
        bodies: list[dict[str, Any]] = []
        for index, event in enumerate(events):
            try:
                body = intake(event, self.plan.declarations, now)
                self._not_early(body)
            except EventError as exc:
                raise EventError(exc.reason, exc.field, index) from None
            bodies.append(body)
        if not bodies:
            return Fed([], [])

        def not_late(engine: Engine, body: dict[str, Any]) -> None:
            try:
                self._not_late(engine, body)
            except EventError as exc:
                # The store may hand the step copies of the bodies: found by content, not identity.
                index = next((i for i, b in enumerate(bodies) if b == body), None)
                raise EventError(exc.reason, exc.field, index) from None

        taken = Taken()
        with self._lock:
            actions = self._apply(name, bodies, until=None, check=not_late, taken=taken)
        if actions:
            self._woken()
        return fed(bodies, queued(actions), taken)

    def _ensure(self, shard: str) -> None:
        """Make sure of another shard's record: created now under this plan, or running it already."""
        info = self.store.ensure_shard(
            shard, start=self.clock.now(), seed=self.seed, plan_hash=self.plan.content_hash
        )
        running = info.plan_now
        if running != self.plan.content_hash and not versions.same_files(
            self._shards.plan(running), self.plan
        ):
            if self.on_plan_change == "refuse":
                raise PlanChangedError(shard, redact_url(self.store.url), running, self.plan.content_hash)
            body = {"op": "plan", "hash": self.plan.content_hash, "time": self.clock.now()}
            with self._lock:
                self._apply(shard, [body], until=None)
        self._known.add(shard)

    def enqueue(self, event: Mapping[str, Any] | Event) -> bool:
        """Journal an event for whichever worker applies this shard, without applying it here.

        For a front end that takes events while workers elsewhere run them. The event is checked
        like `feed` checks it, except against the engine's clock, which only the applier knows.
        Returns False for an event whose `id` was taken before.
        """
        body = intake(event, self.plan.declarations, self.clock.now())
        self._not_early(body)
        refuse_if_closed(self.closed, self.store.url)
        taken = self.store.append(self.shard, [body]) == 1
        self._woken(stored=False)
        return taken

    def _not_early(self, body: dict[str, Any]) -> None:
        now = self.clock.now()
        if body["time"] > now + self.early:
            raise EventError(
                f"event time {self._when(body['time'])} is {body['time'] - now} s ahead of the "
                f"runtime's clock ({_glance(body['time'] - now)}the runtime is at {self._local(now)}), "
                f"more than the {self.early} s allowed: check the sender's clock or time zone",
                "time",
            )

    def _not_late(self, engine: Engine, body: dict[str, Any]) -> None:
        if body.get("op") == "event" and body["time"] < engine.now - self.late:
            raise EventError(
                f"event time {self._when(body['time'])} is {engine.now - body['time']} s before the "
                f"engine's clock ({_glance(engine.now - body['time'])}the engine is at "
                f"{self._local(engine.now)}), more than the {self.late} s allowed: what it would have "
                "changed has already happened",
                "time",
            )

    def _when(self, moment: int) -> str:
        # Epoch seconds as the sender wrote them, and the local time a person reads.
        return f"{moment} ({self._local(moment)})"

    def _local(self, moment: int) -> str:
        return timeutil.iso(moment, timeutil.zone(self.plan.declarations.timezone))

    def _woken(self, stored: bool = True) -> None:
        # Set already, mostly (a service never clears it): a look costs less than setting it again,
        # which takes its lock and notifies, once per transaction.
        if not self.wake.is_set():
            self.wake.set()
        if self.on_wake is not None:
            self.on_wake()
        self._outbox.poke()
        if stored and not self._outbox.apart:  # no dispatcher thread of its own: tell the others'
            self.store.announce(self.worker)

    def dispatch_apart(self, poll: float) -> None:
        """Dispatch in a thread of its own from now on, woken by work and every `poll` seconds;
        `tick` then runs timers only (a worker sharing its store: see `Outbox.dispatch_apart`)."""
        self._outbox.dispatch_apart(self.clock.now, poll)

    def tick(self, now: int | None = None) -> list[Action]:
        """Run the timers due by `now` (default: the clock's time) and dispatch due actions; return the
        actions decided (`queued` for those to go out: the outbox says which were sent)."""
        moment = self.clock.now() if now is None else now
        decided = self.run_timers(moment)
        if self._outbox.apart:
            self._outbox.poke()
        else:
            self.dispatch(moment)
        self.housekeep(moment)
        return decided

    def run_timers(self, moment: int) -> list[Action]:
        """Apply the timers due by `moment` in the shards this worker may take (balance.py); the actions decided."""
        decided: list[Action] = []
        names: list[str] = []
        with self._lock:
            if not self.closed:
                self._balance.turn()
                names = self.store.work(self.worker, self.wall(), moment, 64, self._balance.theirs())
        for name in names:
            # The lock is taken a shard at a time, so feeds (another thread) go on between them.
            with self._lock:
                if self.closed:
                    return decided  # not `break`, which mypyc does not compile inside `with`
                decided.extend(queued(without_held(self._apply(name, [], until=moment))))
        return decided

    def watch(self, wake: Callable[[], None]) -> bool:
        """Have the store call `wake` when another worker journals entries for a shard this one holds
        or announces outbox rows (those poke `dispatch_apart`'s thread, if any); False if it cannot tell."""
        return self.store.watch(self.worker, wake, self._outbox.poke if self._outbox.apart else wake)

    def dispatch(self, now: int | None = None) -> int:
        """Hand due outbox rows to their executors; return how many were handled."""
        moment = self.clock.now() if now is None else now
        return self._outbox.dispatch(moment)

    def run(self, stop: threading.Event | None = None, *, idle: float = 1.0) -> None:
        """Tick until `stop` is set (or the runtime is closed), sleeping until the next due work (at most `idle` s)."""
        loop.run(self, stop, idle=idle)

    async def run_async(self, stop: asyncio.Event | None = None, *, idle: float = 1.0) -> None:
        """`run` for asyncio: the store and executors work in a thread, the loop stays free."""
        await loop.run_async(self, stop, idle=idle)

    # ---- reading -----------------------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """events_in, actions_out, timers_pending, failures, parked (totals over the store), pending,
        actions_failed (decided but failed: a template or a member's data was at fault), and
        ids_over_limit (ids over `MAX_ID` the shards this worker holds were loaded with)."""
        totals = self.store.stats()
        with self._lock:
            timers = self._shards.timers()
            told = self._shards.long_told
            long = sum(told.get(name, 0) for name in self._shards.held)
        return {
            "events_in": totals["events_in"],
            "actions_out": totals["actions_out"],
            "timers_pending": timers,
            "failures": totals["failures"],
            "parked": totals["parked"],
            "pending": totals["pending"],
            "actions_failed": totals["failed"],
            "ids_over_limit": long,
        }

    def engine(self, shard: str | None = None) -> Engine:
        """The shard's engine, caught up with the store (read it, do not drive it)."""
        name = shard or self.shard
        refuse_if_closed(self.closed, self.store.url)
        with self._lock:
            self._apply(name, [], until=None)
            found = self._shards.held.get(name)
            if found is not None:
                return found.engine
            # Another worker applies it: a copy read from the store shows what it has committed
            # (the shard's record asked for only when the copy is first made, without a snapshot).
            return self._shards.peek(
                name,
                lambda: self.store.ensure_shard(
                    name, start=self.clock.now(), seed=self.seed, plan_hash=self.plan.content_hash
                ),
            )

    def close(self) -> None:
        """Give up this worker's leases and close the store (idempotent)."""
        if self.closed:
            return
        self.closed = True
        self._outbox.stop_apart()
        # Wait for a loop turn in another thread to finish with the store before closing it.
        with self._outbox.busy, self._lock:
            self._outbox.close()
            self._balance.leave()
            self._shards.release()
            self.store.close()

    # ---- applying -----------------------------------------------------------------------------------

    def _submit(self, body: dict[str, Any], check: Check | None = None) -> list[Action]:
        refuse_if_closed(self.closed, self.store.url)
        with self._lock:
            actions = self._apply(self.shard, [body], until=None, check=check)
        if actions:
            self._woken()
        return queued(without_held(actions))

    def _apply(
        self,
        name: str,
        new: list[dict[str, Any]],
        *,
        until: int | None,
        check: Check | None = None,
        changes: list[PlanChange] | None = None,
        taken: Taken | None = None,
    ) -> list[Action]:
        """Apply a shard's pending entries, the new ones and (with `until`) its due timers, durably."""
        actions = self._shards.apply(name, new, until=until, check=check, changes=changes, taken=taken)
        held = self._shards.held.get(name)
        if (
            name == self.shard
            and held is not None
            and held.engine.plan.content_hash != self.plan.content_hash
        ):
            # Another worker journaled a switch and this one applied it: check events against it.
            self.plan = held.engine.plan
        return actions
