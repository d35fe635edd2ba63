"""The live runtime: the engine on a real (or manual) clock, with a durable store, an outbox and executors.

Input: a compiled `Plan`, a store, executors, then events (`feed`) and the passing of time
(`tick`, `run`). Output: calls to executors, each with the action's idempotency key, at least
once. Durability is a journal of the engine's inputs plus an outbox of its outputs: the engine
is deterministic, so replaying a shard's journal through a fresh engine rebuilds its state
exactly, and feeding an event appends it, applies it and stores the actions it caused in one
transaction. See docs/runtime.md for the design and its guarantees.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from sopdsl.engine import versions
from sopdsl.engine.actions import Action
from sopdsl.engine.engine import Engine
from sopdsl.engine.events import Event
from sopdsl.engine.versions import PlanChange
from sopdsl.errors import EngineError, PlanError, SopdslError
from sopdsl.live.clock import Clock, ManualClock, RealClock
from sopdsl.live.dispatch import (
    CustomAction,
    Executor,
    ExecutorError,
    RetryPolicy,
    check_custom,
    missing_executors,
    registry,
    resolve,
)
from sopdsl.live.intake import EventError, intake, surrogate
from sopdsl.live.redact import redact_url, redact_urls_in
from sopdsl.live.store import (
    DONE,
    DRY_RUN,
    FAILED,
    PARKED,
    PENDING,
    SKIPPED,
    Batch,
    Entry,
    OutboxRow,
    ShardInfo,
    Store,
)
from sopdsl.live.store import open_store as _open_store
from sopdsl.plan import Plan, loads

__all__ = [
    "Clock",
    "CustomAction",
    "EventError",
    "Executor",
    "ExecutorError",
    "ManualClock",
    "PlanChange",
    "PlanChangedError",
    "RealClock",
    "RetryPolicy",
    "Runtime",
    "open_store",
]

log = logging.getLogger("sopdsl.runtime")

_GRACE = 60  # the engine's clock this far behind the runtime's means the runtime was down


_Check = Callable[[Engine, dict[str, Any]], None]


class _StaleError(Exception):
    """The store's cursor is behind this process's engine."""


class PlanChangedError(EngineError):
    """A shard's journal was recorded under another plan than the one this runtime was given."""


def open_store(url: str, *, migrate: bool = False) -> Store:
    """Open a store by URL: `memory://`, `sqlite:///state.db` or `postgresql://...`."""
    return _open_store("memory://" if url == "memory" else url, migrate=migrate)


@dataclass
class _Shard:
    """A shard's engine as this process holds it, and how far into the journal it is."""

    engine: Engine
    plans: Callable[[str], Plan]  # a plan by its hash, for `plan` entries
    cursor: int = 0
    snapshot_seq: int = 0  # the journal entry its last snapshot was taken after
    collect: list[Action] | None = None  # actions emitted while applying new entries
    changes: list[PlanChange] | None = None  # flows decided by plan entries among the new ones
    started: bool = False  # the engine arms its timers at the first event or advance
    ticked: bool = False  # this process has run the shard's timers since it loaded it

    def sink(self, action: Action) -> None:
        if self.collect is not None:
            self.collect.append(action)

    def play(self, body: dict[str, Any]) -> None:
        changes = _play(self.engine, body, self.plans)
        if self.changes is not None:
            self.changes.extend(changes)
        self.started = self.started or body["op"] in ("event", "advance", "resume")


class Runtime:
    """The sopdsl engine run live; see the module docstring and docs/runtime.md.

    `feed` and `tick` may be called from different threads (an HTTP handler and a timer loop).
    """

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
        snapshot_every: int = 10_000,
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
        # Journal entries between engine snapshots (0: none): a restart replays at most this many.
        self.snapshot_every = snapshot_every
        # Rows claimed at a time: few enough that other workers get a share while slow
        # executors work through them; enough to keep a claim's round trip cheap per row.
        self.batch = batch
        self.late = late  # seconds an event may be older than the engine's clock
        self.early = early  # seconds an event may be ahead of the runtime's clock
        # A timer overdue by more than this was missed while the runtime was down (see _tick_entry);
        # by default only on the wall clock, since a manual clock jumps on purpose.
        self.missed_after = (
            (_GRACE if isinstance(self.clock, RealClock) else None) if missed_after == -1 else missed_after
        )
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.executors = registry(plan, executors or {})
        self.store: Store = open_store(store) if isinstance(store, str) else store
        self._lock = threading.RLock()
        # One dispatch at a time: rows leased to this worker may be claimed again by it (that is
        # how a restarted worker takes its rows back), so two concurrent dispatches could double up.
        self._dispatching = threading.Lock()
        self._wake = threading.Event()
        self._shards: dict[str, _Shard] = {}
        self._loaded: dict[str, _Shard] = {}  # restored from a snapshot, not yet applied here
        self._plans: dict[str, Plan] = {plan.content_hash: plan}
        self.closed = False
        try:
            self.store.save_plan(plan.content_hash, plan.dumps())
            info = self.store.ensure_shard(
                shard, start=self.clock.now(), seed=seed, plan_hash=plan.content_hash
            )
            if info.plan_now != plan.content_hash and versions.same_files(self._plan(info.plan_now), plan):
                # The same playbooks compiled from another folder (`sopdsl run /abs/path` after
                # `sopdsl run playbooks/`): nothing changed, so go on with the recorded plan.
                self.plan = plan = self._plans[info.plan_now]
            if info.plan_now != plan.content_hash and on_plan_change == "refuse":
                raise PlanChangedError(
                    f"shard '{shard}' in {redact_url(self.store.url)} runs plan {info.plan_now[:12]}, not "
                    f"{plan.content_hash[:12]}. To switch it to this version (members mid-flow finish "
                    "or move as each playbook's `on change` says), pass on_plan_change='reload' "
                    "(sopdsl run --reload); to start afresh, use another shard or store"
                )
            # Recover now (replay the journal), so a broken store shows at start, not at the first event.
            with self._lock:
                self._apply(shard, [], until=None)
            if info.plan_now != plan.content_hash:
                self._switch(plan, self._plan(info.plan_now))
        except BaseException:
            if isinstance(store, str):
                self.store.close()
            raise

    # ---- set-up --------------------------------------------------------------------------------------

    def register_custom(
        self, name: str, args: type[BaseModel], fn: Callable[[BaseModel, Action, str], None]
    ) -> None:
        """Register the executor of custom action `name`; raises `ExecutorError` if a call of it cannot fit `args`."""
        check_custom(self.plan, name, args)
        self.executors[f"call:{name}"] = CustomAction(args, fn)

    def reload(self, plan: Plan) -> list[PlanChange]:
        """Switch the shard to another version of the plan now, journaled; return what happened to flows in progress.

        Members mid-flow finish on the version they started or move to the new one, as the new
        version of their playbook declares (`on change finish | migrate`); each decision is also
        logged. Raises `ExecutorError` when a registered custom action cannot take the new
        version's calls; nothing changes then. With several workers, whichever holds the shard
        applies the switch (this call then returns []); give every worker the new plan.
        """
        if not plan.content_hash:
            plan = plan.with_hash()
        if plan.content_hash == self.plan.content_hash or versions.same_files(self.plan, plan):
            return []
        return self._switch(plan, self.plan)

    def _switch(self, plan: Plan, previous: Plan) -> list[PlanChange]:
        for key, executor in self.executors.items():
            name = key.removeprefix("call:")
            if isinstance(executor, CustomAction) and name in plan.program.actions:
                check_custom(plan, name, executor.args)
        self.store.save_plan(plan.content_hash, plan.dumps())
        self._plans[plan.content_hash] = plan
        body = {"op": "plan", "hash": plan.content_hash, "time": self.clock.now()}
        changes: list[PlanChange] = []
        with self._lock:
            self._apply(self.shard, [body], until=None, changes=changes)
        unrecorded = versions.unrecorded_windows(previous, plan)
        if unrecorded:
            log.warning(
                "sopdsl runtime: plan %s counts %s events over time windows plan %s did not record; "
                "those counts start from zero now",
                plan.content_hash[:12],
                ", ".join(unrecorded),
                previous.content_hash[:12],
            )
        self.plan = plan
        self._wake.set()
        return changes

    def missing_executors(self) -> list[str]:
        """Action kinds the plan can emit that no executor handles (their actions would be parked)."""
        return missing_executors(self.plan, self.executors)

    def add_group(
        self,
        group_id: str,
        *,
        name: str = "",
        tags: Iterable[str] = (),
        timezone: str | None = None,
        operator: str | None = None,
        owner: str | None = None,
    ) -> None:
        """Register a group (journaled: it survives restarts). Adding one again is ignored."""
        body = {
            "op": "group",
            "id": f"group:{group_id}",
            "time": self.clock.now(),
            "group": group_id,
            "name": name,
            "tags": sorted(set(tags)),
            "zone": timezone,
            "operator": operator,
            "owner": owner,
        }
        self._submit(_plain(body, f"group '{group_id}'"))

    def add_member(
        self,
        member_id: str,
        *,
        groups: Iterable[str] = (),
        name: str = "",
        tags: Iterable[str] = (),
        attributes: Mapping[str, Any] | None = None,
        nickname: str = "",
        joined_at: int | None = None,
        referrer: str | None = None,
        channel: str | None = None,
        counters: Mapping[str, float] | None = None,
    ) -> None:
        """Register a member already present (journaled); one registered after the start counts as silent from then.

        New arrivals come as `join` events, which also start the playbooks that greet them.
        """
        body = {
            "op": "member",
            "id": f"member:{member_id}",
            "time": self.clock.now(),
            "member": member_id,
            "groups": list(groups),
            "name": name,
            "tags": sorted(set(tags)),
            "attributes": dict(attributes or {}),
            "nickname": nickname,
            "joined_at": joined_at,
            "referrer": referrer,
            "channel": channel,
            "counters": dict(counters or {}),
        }
        self._submit(_plain(body, f"member '{member_id}'"))

    # ---- events and time -------------------------------------------------------------------------------

    def feed(self, event: Mapping[str, Any] | Event) -> list[Action]:
        """Take one event: validate, journal, apply, store its actions, all at once; return the actions.

        Raises `EventError` (with `field`) for a bad event; nothing is stored then. An event whose
        `id` was fed before is ignored (returns []), so a bot may resend after a timeout.
        """
        body = intake(event, self.plan.program, self.clock.now())
        self._not_early(body)
        return self._submit(body, check=self._not_late)

    def feed_many(self, events: Iterable[Mapping[str, Any] | Event]) -> list[Action]:
        """Take several events in one transaction (one disk flush): all are stored, or none.

        For a bot that receives events in bursts: durable throughput grows with the batch. A bad
        event raises `EventError` whose `index` is its place in the batch (and whose message
        starts with it); nothing is stored then. Events are applied in the order given.
        """
        now = self.clock.now()
        bodies: list[dict[str, Any]] = []
        for index, event in enumerate(events):
            try:
                body = intake(event, self.plan.program, now)
                self._not_early(body)
            except EventError as exc:
                raise EventError(exc.reason, exc.field, index) from None
            bodies.append(body)
        if not bodies:
            return []

        def not_late(engine: Engine, body: dict[str, Any]) -> None:
            try:
                self._not_late(engine, body)
            except EventError as exc:
                # The store may hand the step copies of the bodies: found by content, not identity.
                index = next((i for i, b in enumerate(bodies) if b == body), None)
                raise EventError(exc.reason, exc.field, index) from None

        with self._lock:
            actions = self._apply(self.shard, bodies, until=None, check=not_late)
        if actions:
            self._wake.set()
        return actions

    def enqueue(self, event: Mapping[str, Any] | Event) -> bool:
        """Journal an event for whichever worker applies this shard, without applying it here.

        For a front end that takes events while workers elsewhere run them. The event is checked
        like `feed` checks it, except against the engine's clock, which only the applier knows.
        Returns False for an event whose `id` was taken before.
        """
        body = intake(event, self.plan.program, self.clock.now())
        self._not_early(body)
        taken = self.store.append(self.shard, [body]) == 1
        self._wake.set()
        return taken

    def _not_early(self, body: dict[str, Any]) -> None:
        if body["time"] > self.clock.now() + self.early:
            raise EventError(
                f"event time {body['time']} is {body['time'] - self.clock.now()} s ahead of the runtime's clock "
                f"(more than {self.early} s): check the sender's clock or time zone",
                "time",
            )

    def _not_late(self, engine: Engine, body: dict[str, Any]) -> None:
        if body.get("op") == "event" and body["time"] < engine.now - self.late:
            raise EventError(
                f"event time {body['time']} is {engine.now - body['time']} s before the engine's clock "
                f"(more than {self.late} s): what it would have changed has already happened",
                "time",
            )

    def tick(self, now: int | None = None) -> list[Action]:
        """Run the timers due by `now` (default: the clock's time) and dispatch due actions; return the actions decided."""
        moment = self.clock.now() if now is None else now
        decided = self._run_timers(moment)
        self.dispatch(moment)
        return decided

    def _run_timers(self, moment: int) -> list[Action]:
        decided: list[Action] = []
        with self._lock:
            if self.closed:
                return decided
            for name in self.store.work(self.worker, time.time(), moment, 64):
                decided.extend(self._apply(name, [], until=moment))
        return decided

    def dispatch(self, now: int | None = None) -> int:
        """Hand due outbox rows to their executors; return how many were handled."""
        moment = self.clock.now() if now is None else now
        handled = 0
        with self._dispatching:
            while not self.closed and (
                rows := self.store.claim(self.worker, time.time(), moment, self.lease, self.batch)
            ):
                # Stop short of the lease's end: after it, another worker may have claimed the rest.
                deadline = time.time() + self.lease * 0.8
                done = []
                for row in rows:
                    if time.time() > deadline:
                        break
                    self._execute(row, moment)
                    done.append(row)
                # One transaction for the batch: a crash before it only means these are sent again.
                # Done rows free the next row of their member, so claim again until none is due.
                self.store.finish(done, self.worker)
                handled += len(done)
        return handled

    def run(self, stop: threading.Event | None = None, *, idle: float = 1.0) -> None:
        """Tick until `stop` is set (or the runtime is closed), sleeping until the next due work (at most `idle` s)."""
        stop = stop if stop is not None else threading.Event()
        while not stop.is_set() and not self.closed:
            delay = self._cycle(idle)
            if isinstance(self.clock, RealClock):
                # Sleep on the wake-up event so a fed event is dispatched at once; poll `stop` often.
                self._wake.wait(min(delay, 0.25))
                self._wake.clear()
            else:
                self.clock.sleep(delay)

    async def run_async(self, stop: asyncio.Event | None = None, *, idle: float = 1.0) -> None:
        """`run` for asyncio: the store and executors work in a thread, the loop stays free."""
        stop = stop if stop is not None else asyncio.Event()
        while not stop.is_set() and not self.closed:
            delay = await asyncio.to_thread(self._cycle, idle)
            if isinstance(self.clock, RealClock):
                try:
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                except TimeoutError:
                    pass
            else:
                self.clock.sleep(delay)
                await asyncio.sleep(0)

    def _cycle(self, idle: float) -> float:
        """One loop turn: timers, dispatch, then how long to sleep. A failing turn is logged and retried."""
        if self.closed:
            return 0.0
        try:
            moment = self.clock.now()
            progressed = bool(self._run_timers(moment)) | bool(self.dispatch(moment))
        except Exception:
            log.exception("sopdsl runtime: tick failed; retrying in %.1f s", idle)
            return idle
        if progressed:
            return 0.0  # finishing work may have freed more (a member's next action)
        wake = self.store.next_wakeup()
        if wake is None or wake <= self.clock.now():
            # Nothing scheduled, or due work this worker cannot take yet (another worker's lease,
            # a member's earlier action waiting for its retry): poll, never spin.
            return idle
        return float(min(idle, wake - self.clock.now()))

    # ---- reading -----------------------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """events_in, actions_out, timers_pending, failures, parked (totals over the store), pending, and
        actions_failed (decided but failed: a template or a member's data was at fault)."""
        totals = self.store.stats()
        with self._lock:
            timers = sum(len(s.engine.heap) for s in self._shards.values())
        return {
            "events_in": totals["events_in"],
            "actions_out": totals["actions_out"],
            "timers_pending": timers,
            "failures": totals["failures"],
            "parked": totals["parked"],
            "pending": totals["pending"],
            "actions_failed": totals["failed"],
        }

    def parked(self) -> list[OutboxRow]:
        """Actions given up on after their retries, with the last error: for a person to look at."""
        return [r for r in self.store.outbox() if r.status == PARKED]

    def requeue(self, key: str, shard: str | None = None) -> bool:
        """Send a parked action again (once its cause is fixed), with fresh retries; False if it is not parked."""
        queued = self.store.requeue(shard or self.shard, key, self.clock.now())
        self._wake.set()
        return queued

    def purge(self, days: float = 30) -> int:
        """Delete outbox rows finished more than `days` ago (parked ones stay); how many went."""
        return self.store.purge(self.clock.now() - int(days * 86400))

    def engine(self, shard: str | None = None) -> Engine:
        """The shard's engine, caught up with the store (read it, do not drive it)."""
        name = shard or self.shard
        with self._lock:
            self._apply(name, [], until=None)
            found = self._shards.get(name)
            if found is None:
                raise EngineError(f"shard '{name}' is held by another worker")
            return found.engine

    def close(self) -> None:
        """Give up this worker's leases and close the store (idempotent)."""
        if self.closed:
            return
        self.closed = True
        # Wait for a loop turn in another thread to finish with the store before closing it.
        with self._dispatching, self._lock:
            for name in self._shards:
                self.store.release(name, self.worker)
            self._shards.clear()
            self.store.close()

    # ---- applying -----------------------------------------------------------------------------------

    def _submit(self, body: dict[str, Any], check: _Check | None = None) -> list[Action]:
        with self._lock:
            actions = self._apply(self.shard, [body], until=None, check=check)
        if actions:
            self._wake.set()
        return actions

    def _apply(
        self,
        name: str,
        new: list[dict[str, Any]],
        *,
        until: int | None,
        check: _Check | None = None,
        changes: list[PlanChange] | None = None,
    ) -> list[Action]:
        """Apply a shard's pending entries, the new ones and (with `until`) its due timers, durably."""
        try:
            return self._apply_once(name, new, until, check, changes)
        except _StaleError:
            # The store is behind this process's engine (restored from a backup?): rebuild it.
            self._shards.pop(name, None)
            return self._apply_once(name, new, until, check, changes, restore=False)

    def _apply_once(
        self,
        name: str,
        new: list[dict[str, Any]],
        until: int | None,
        check: _Check | None,
        changes: list[PlanChange] | None,
        restore: bool = True,
    ) -> list[Action]:
        cached = self._shards.get(name)
        # Not held yet: start from the latest snapshot, so only the journal after it is read. One
        # restored while another worker holds the shard is kept for when this one takes it.
        loaded = self._loaded.pop(name, None) if cached is None and restore else None
        if cached is None and loaded is None and restore and self.snapshot_every:
            loaded = self._restored(name)
        since = cached.cursor if cached is not None else loaded.cursor if loaded is not None else 0
        collected: list[Action] = []
        made: list[PlanChange] = []

        def step(info: ShardInfo, existing: list[Entry], offered: list[dict[str, Any]]) -> Batch:
            shard = self._shards.get(name)
            if shard is None:
                shard = loaded if loaded is not None else self._fresh(info)
                self._shards[name] = shard
            if since > info.applied:
                raise _StaleError
            for entry in existing:
                if entry.seq <= info.applied:
                    shard.play(entry.body)
            shard.cursor = info.applied
            if check is not None:
                for body in offered:
                    check(shard.engine, body)  # refusing now leaves engine and store in step
            pending = [e.body for e in existing if e.seq > info.applied]
            shard.collect = collected
            decided: list[PlanChange] = []
            shard.changes = decided
            try:
                for body in [*pending, *offered]:
                    shard.play(body)
                due = shard.engine.next_due()
                # The first tick also starts the engine (setting up groups and members does not),
                # which arms the calendars: they may be due at once.
                if until is not None and (not shard.started or (due is not None and due <= until)):
                    overdue = until - due if shard.started and due is not None else 0
                    tick = self._tick_entry(overdue, first=not shard.ticked, until=until)
                    shard.play(tick)
                    shard.ticked = True
                    offered = [*offered, tick]
            finally:
                shard.collect = shard.changes = None
            shard.cursor = info.head + len(offered)
            snapshot = None
            if self.snapshot_every and shard.cursor - shard.snapshot_seq >= self.snapshot_every:
                try:
                    snapshot = (shard.cursor, shard.engine.snapshot())
                except EngineError as exc:  # some state it cannot write: the journal still has it all
                    log.warning("sopdsl runtime: shard '%s': no snapshot taken: %s", name, exc)
                shard.snapshot_seq = shard.cursor
            rows = [_row(name, a) for a in collected]
            # A shard not started yet is due at once, so the next tick of any worker starts it.
            due = shard.engine.next_due() if shard.started else info.start
            running = shard.engine.plan.content_hash
            made[:] = decided
            return Batch(
                entries=offered,
                rows=rows,
                next_due=due,
                plan_now=running if running != info.plan_now else None,
                snapshot=snapshot,
            )

        try:
            batch = self.store.apply(
                name, new, step, since=since, worker=self.worker, wall=time.time(), lease=self.lease
            )
        except (EventError, _StaleError):
            raise  # refused before the engine moved on
        except BaseException as exc:
            # The engine may be ahead of what was committed: rebuild it from the store next time.
            self._shards.pop(name, None)
            if isinstance(exc, SopdslError) or not isinstance(exc, Exception):
                raise
            log.exception("sopdsl runtime: applying to shard '%s' failed; nothing was stored", name)
            reason = redact_urls_in(f"{type(exc).__name__}: {exc}")
            raise EngineError(f"applying to shard '{name}' failed ({reason}); nothing was stored") from exc
        held = self._shards.get(name)
        if (
            name == self.shard
            and held is not None
            and held.engine.plan.content_hash != self.plan.content_hash
        ):
            # Another worker journaled a switch and this one applied it: check events against it.
            self.plan = held.engine.plan
        for change in made:
            log.info("sopdsl runtime: shard '%s': %s", name, change)
        if changes is not None:
            changes.extend(made)
        if loaded is not None and self._shards.get(name) is not loaded:
            self._loaded[name] = loaded  # the step did not run: another worker holds the shard
        if batch is None:
            return []
        return collected

    def _tick_entry(self, overdue: int, *, first: bool, until: int) -> dict[str, Any]:
        if first and self.missed_after is not None and overdue > self.missed_after:
            # This process's first look at the shard finds timers long overdue: the runtime was
            # down. Timers missed meanwhile fire now, and calendar entries follow their playbook's
            # `missed` setting (skip, or run the latest once). Later in the same process a late
            # timer (a slow executor held the loop up) is only late, and fires as usual.
            return {"op": "resume", "until": until}
        return {"op": "advance", "until": until}

    def _plan(self, plan_hash: str) -> Plan:
        """A plan by its hash: one this runtime was given, or one the store keeps."""
        plan = self._plans.get(plan_hash)
        if plan is None:
            text = self.store.load_plan(plan_hash)
            if text is None:
                raise PlanError(
                    f"the store does not hold plan {plan_hash[:12]}, which a shard's journal names"
                )
            plan = self._plans[plan_hash] = loads(text)
        return plan

    def _fresh(self, info: ShardInfo) -> _Shard:
        """A new engine for a shard, under the plan its journal starts with."""
        # keep_log=False: a long-running process holds no action after it is in the outbox.
        engine = Engine(self._plan(info.plan_hash), start=info.start, seed=info.seed, keep_log=False)
        shard = _Shard(engine, self._plan)
        engine.sinks.append(shard.sink)
        return shard

    def _restored(self, name: str) -> _Shard | None:
        """The shard's engine from its latest snapshot; None when there is none or it cannot be read (replay)."""
        found = self.store.load_snapshot(name)
        if found is None:
            return None
        seq, blob = found
        try:
            engine = Engine.restore(blob, self._plan, keep_log=False)
        except (EngineError, PlanError) as exc:
            # Never half-read: an older format (a pickle, which is never unpickled), a foreign or
            # damaged blob, a plan the store lacks. The next snapshot replaces it.
            log.warning(
                "sopdsl runtime: shard '%s': %s; the snapshot is dropped and the journal replayed instead",
                name,
                exc,
            )
            return None
        shard = _Shard(engine, self._plan, cursor=seq, snapshot_seq=seq, started=engine.started)
        engine.sinks.append(shard.sink)
        return shard

    # ---- dispatching --------------------------------------------------------------------------------

    def _execute(self, row: OutboxRow, now: int) -> None:
        """Call the row's executor and set the row's outcome (the caller stores it)."""
        action = _action(row.action)
        key = row.key if row.shard == "default" else f"{row.shard}/{row.key}"
        row.attempts += 1
        if self.dry_run:
            log.info("dry run: would %s %s (key %s)", action.kind, _describe(action), key)
            row.status = DRY_RUN
            return
        executor = resolve(self.executors, action)
        try:
            if executor is None:
                raise ExecutorError(f"no executor is registered for '{action.kind}' actions")
            executor(action, key)
        except Exception as exc:
            row.failures += 1
            row.error = redact_urls_in(f"{type(exc).__name__}: {exc}")  # stored and logged
            permanent = bool(getattr(exc, "permanent", False)) or isinstance(exc, ExecutorError)
            if permanent or row.attempts >= self.retry.attempts:
                row.status = PARKED
                log.error(
                    "sopdsl runtime: parked %s %s (key %s) after %d attempt(s): %s",
                    action.kind,
                    _describe(action),
                    key,
                    row.attempts,
                    row.error,
                )
            else:
                row.next_at = now + self.retry.delay(row.failures)
                log.warning(
                    "sopdsl runtime: %s %s (key %s) failed, retry %d at %d: %s",
                    action.kind,
                    _describe(action),
                    key,
                    row.attempts,
                    row.next_at,
                    row.error,
                )
        else:
            row.status, row.error = DONE, None


def _play(engine: Engine, body: dict[str, Any], plans: Callable[[str], Plan]) -> list[PlanChange]:
    """Apply one journal entry to an engine: the only place entries turn into engine calls.

    An event goes in with the bot's id; one without is known to the engine by its number among
    the shard's journaled events, so its actions' keys are the same on every replay, and the
    same as a dry run of the same events gives them.
    """
    op = body["op"]
    if op == "plan":
        return engine.reload(plans(body["hash"]), at=int(body["time"]))
    if op == "event":
        engine.feed(
            Event(
                body["kind"],
                int(body["time"]),
                member=body.get("member"),
                group=body.get("group"),
                data=dict(body.get("data") or {}),
                name=body.get("name"),
                id=str(body["id"]) if body.get("id") is not None else None,
            )
        )
        return []
    if op in ("advance", "resume"):
        if op == "resume":
            engine.now = max(engine.now, int(body["until"]))
        engine.advance(int(body["until"]))
        return []
    if op not in ("group", "member"):
        raise EngineError(f"journal entry with unknown op {op!r}: written by a newer sopdsl?")
    if engine.started and "time" in body:
        # Registered while running: the engine's clock moves to now first, so their silence
        # and calendars count from when they were registered, not from the last event.
        engine.advance(int(body["time"]))
    if op == "group":
        engine.add_group(
            body["group"],
            name=body.get("name") or None,
            tags=body.get("tags", ()),
            zone=body.get("zone"),
            operator=body.get("operator"),
            owner=body.get("owner"),
        )
    else:
        engine.add_member(
            body["member"],
            name=body.get("name", ""),
            nickname=body.get("nickname", ""),
            tags=body.get("tags", ()),
            attributes=body.get("attributes") or {},
            groups=body.get("groups", ()),
            joined_at=body.get("joined_at"),
            referrer=body.get("referrer"),
            channel=body.get("channel"),
            counters=body.get("counters") or {},
        )
    return []


_ACTION_FIELDS = tuple(f.name for f in dataclasses.fields(Action))


def _plain(body: dict[str, Any], what: str) -> dict[str, Any]:
    """The entry as JSON gives it back, so the engine sees now exactly what a replay will see."""

    def dates(value: Any) -> str:
        if isinstance(value, dt.date):
            return value.isoformat()
        raise TypeError(f"{type(value).__name__} is not JSON data")

    try:
        plain: dict[str, Any] = json.loads(json.dumps(body, ensure_ascii=False, default=dates))
    except (TypeError, ValueError) as exc:
        raise EngineError(f"{what}: {exc}") from None
    broken = surrogate(plain)
    if broken is not None:
        raise EngineError(
            f"{what}: '{broken}' holds a lone surrogate (half of a character); pass the text itself"
        )
    return plain


def _row(shard: str, action: Action) -> OutboxRow:
    order = action.member if action.member else f"group:{action.group or '-'}"
    return OutboxRow(
        shard=shard,
        key=action.key,
        order_key=order,
        kind=action.kind,
        action={name: getattr(action, name) for name in _ACTION_FIELDS} | {"detail": dict(action.detail)},
        status=PENDING if action.status == "done" else FAILED if action.status == "failed" else SKIPPED,
        next_at=action.time,
    )


def _action(data: dict[str, Any]) -> Action:
    return Action(**data)


def _describe(action: Action) -> str:
    what = (
        action.detail.get("template")
        or action.detail.get("action")
        or ",".join(action.detail.get("tags", []))
    )
    who = action.member or action.group or "-"
    return f"{what} -> {who}".strip()
