"""Shards' engines as one process holds them: journal replay, durable application, snapshots.

Input: a shard's journal in the store (and its latest engine snapshot), new entries to append.
Output: the engine caught up with the journal, and the actions the new entries caused, stored in
the outbox in the same transaction that journals them. The engine is deterministic, so replaying
the journal through a fresh engine (or one restored from a snapshot) rebuilds its state exactly;
`_play` is the one place a journal entry turns into engine calls. See docs/runtime.md.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic
from typing import Any, Protocol

from sopdsl.engine.actions import Action
from sopdsl.engine.engine import Engine
from sopdsl.engine.events import Event
from sopdsl.engine.records import GroupRecord, MemberRecord
from sopdsl.engine.versions import PlanChange
from sopdsl.errors import EngineError, PlanError, SopdslError
from sopdsl.live import long_ids, snapshots_apart
from sopdsl.live.fed import Taken
from sopdsl.live.intake import EventError, surrogate
from sopdsl.live.outbox import row_of
from sopdsl.live.redact import redact_urls_in
from sopdsl.live.shard_figures import ShardFigures
from sopdsl.live.store import Batch, Entry, ShardInfo, Store
from sopdsl.plan import Plan, loads

log = logging.getLogger("sopdsl.runtime")

Check = Callable[[Engine, dict[str, Any]], None]
"""A test of an offered entry against the caught-up engine; raises `EventError` to refuse it."""


class StaleError(Exception):
    """The store's cursor is behind this process's engine."""


class _UnreadSnapshotError(Exception):
    """The shard's snapshot was not read (another worker held it lately), but this one applies it now."""


class ShardSettings(Protocol):
    """What the shards read of their runtime, at each call (`sopdsl.live.runtime.Runtime` is one)."""

    store: Store
    worker: str
    named: bool  # the worker's name was given, not made up for this process
    lease: float
    wall: Callable[[], float]
    snapshot_every: int | None
    missed_after: int | None


SNAPSHOT_MIN = 10_000  # journal entries between snapshots at least, when the interval is automatic
SNAPSHOT_PER_STATE = 2  # ... and at least this many entries per member and flow the engine holds


def snapshot_due(entries: int, every: int | None, state: int) -> bool:
    """Whether `entries` journal entries since the last snapshot call for another one.

    `every` is the runtime's setting: 0 never, a number exactly that many, None automatic: at least
    SNAPSHOT_MIN and SNAPSHOT_PER_STATE entries per member and flow (`state`). A snapshot costs
    in proportion to the state and a restart replays in proportion to the entries, so the automatic
    interval keeps a snapshot's cost per entry bounded as a community grows (a fixed one made a
    16,000-member shard spend an eighth of the service's CPU writing snapshots), and a restart
    replays at most about twice what writing one snapshot costs."""
    if every is None:
        every = max(SNAPSHOT_MIN, SNAPSHOT_PER_STATE * state)
    return every > 0 and entries >= every


@dataclass
class Shard:
    """A shard's engine as this process holds it, and how far into the journal it is."""

    engine: Engine
    plans: Callable[[str], Plan]  # a plan by its hash, for `plan` entries
    cursor: int = 0
    snapshot_seq: int = 0  # the journal entry its last snapshot was taken after
    # Actions emitted while applying new entries, and copies of those the policy held back
    # (status "deferred", never stored: the answer shows them, the outbox gets them when they go).
    collect: list[Action] | None = None
    changes: list[PlanChange] | None = None  # flows decided by plan entries among the new ones
    started: bool = False  # the engine arms its timers at the first event or advance
    ticked: bool = False  # this process has run the shard's timers since it loaded it
    figures: ShardFigures | None = None  # the live per-playbook figures' watcher

    def sink(self, action: Action) -> None:
        """The engine's action sink and hold: keeps the actions of the entries being applied."""
        if self.collect is not None:
            self.collect.append(action)

    def play(self, body: dict[str, Any]) -> None:
        """Apply one journal entry to the engine."""
        changes = _play(self.engine, body, self.plans)
        if self.changes is not None:
            self.changes.extend(changes)
        if self.figures is not None:
            self.figures.event(body)  # counts only while new entries are applied
        self.started = self.started or body["op"] in ("event", "advance", "resume")


class Shards:
    """The engines of the shards this process holds, kept in step with the store.

    Not thread-safe: the runtime calls it under its own lock.
    """

    def __init__(self, settings: ShardSettings, plan: Plan) -> None:
        # Read at each call, not copied: the runtime's attributes stay the one place they are set.
        self.settings = settings
        # The other worker a free shard is left to, or None to take it (the runtime sets its
        # `Balance.left_to`, which needs `hand_over` of this object).
        self.left_to: Callable[[str], str | None] = lambda shard: None
        self.plans: dict[str, Plan] = {plan.content_hash: plan}
        self.held: dict[str, Shard] = {}
        self._loaded: dict[str, Shard] = {}  # restored from a snapshot, not yet applied here
        # Shards another worker held at this process's last feed for them, and when (monotonic).
        self._elsewhere: dict[str, float] = {}
        self._told: set[str] = set()  # shards whose lease held elsewhere an unnamed worker was warned of
        # Read-only copies of shards another worker holds, kept caught up with their journals
        # (`peek`): what the admin API shows of them.
        self._peeked: dict[str, Shard] = {}
        # What catching engines up has cost (a restart: the journal after the latest snapshot).
        self.replayed = 0  # journal entries played that were journaled before this call
        self.restored = 0  # engines restored from a snapshot
        self.snapshots = snapshots_apart.Snapshots(settings.store)  # large engines' snapshots
        self.long_told: dict[str, int] = {}  # shards warned of: their ids over MAX_ID (`long_ids`)

    def apply(
        self,
        name: str,
        new: list[dict[str, Any]],
        *,
        until: int | None,
        check: Check | None = None,
        changes: list[PlanChange] | None = None,
        taken: Taken | None = None,
    ) -> list[Action]:
        """Apply a shard's pending entries, the new ones and (with `until`) its due timers, durably.

        `taken` receives the new entries the store journaled (not those whose event id it had),
        and how many actions each caused."""
        self.snapshots.collect()  # those written apart since the last call
        try:
            return self._apply_once(name, new, until, check, changes, taken)
        except _UnreadSnapshotError:
            self._elsewhere.pop(name, None)  # read its snapshot this time
            return self.apply(name, new, until=until, check=check, changes=changes, taken=taken)
        except StaleError:
            # The store is behind this process's engine (restored from a backup?): rebuild it.
            self.held.pop(name, None)
            return self._apply_once(name, new, until, check, changes, taken, restore=False)

    def _apply_once(
        self,
        name: str,
        new: list[dict[str, Any]],
        until: int | None,
        check: Check | None,
        changes: list[PlanChange] | None,
        taken: Taken | None = None,
        restore: bool = True,
    ) -> list[Action]:
        s = self.settings
        cached = self.held.get(name)
        # Not held yet: start from the latest snapshot, so only the journal after it is read. One
        # restored while another worker holds the shard is kept for when this one takes it.
        loaded = self._loaded.pop(name, None) if cached is None and restore else None
        # A shard another worker held a moment ago most likely still is: its feed is only
        # journaled here, so its snapshot is not read for it (a query per list); should this
        # worker take the shard over after all, the step below starts again with it.
        seen = self._elsewhere.get(name)
        unread = cached is None and seen is not None and monotonic() - seen < s.lease
        if cached is None and loaded is None and restore and s.snapshot_every != 0 and not unread:
            loaded = self._restored(name)
        since = cached.cursor if cached is not None else loaded.cursor if loaded is not None else 0
        collected: list[Action] = []
        made: list[PlanChange] = []
        fork_at: list[int] = []  # the entry a snapshot written apart is taken after, if one is due

        def step(info: ShardInfo, existing: list[Entry], offered: list[dict[str, Any]]) -> Batch:
            shard = self.held.get(name)
            if shard is None and loaded is None and unread and restore and s.snapshot_every != 0:
                raise _UnreadSnapshotError  # nothing is written: the transaction rolls back
            self._elsewhere.pop(name, None)
            taken_now = shard is None
            if shard is None:
                shard = loaded if loaded is not None else self._fresh(info)
                self.held[name] = shard
                self._peeked.pop(name, None)  # held now: its read-only copy goes
            if since > info.applied:
                raise StaleError
            for entry in existing:
                if entry.seq <= info.applied:
                    shard.play(entry.body)
                    self.replayed += 1
            shard.cursor = info.applied
            if check is not None:
                for body in offered:
                    check(shard.engine, body)  # refusing now leaves engine and store in step
            pending = [e.body for e in existing if e.seq > info.applied]
            shard.collect = collected
            if shard.figures is not None:
                shard.figures.begin()
            decided: list[PlanChange] = []
            shard.changes = decided
            try:
                for body in pending:
                    shard.play(body)
                self.replayed += len(pending)
                caused = []
                for body in offered:
                    before = len(collected)
                    shard.play(body)
                    caused.append(len(collected) - before)
                if taken is not None:
                    taken.bodies, taken.caused = list(offered), caused
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
                tally = shard.figures.end() if shard.figures is not None else None
            shard.cursor = info.head + len(offered)
            if taken_now:  # its journal played, pending entries too: the ids it holds are known
                long_ids.tell(name, shard.engine, self.long_told)
            snapshot = None
            engine = shard.engine
            if snapshot_due(
                shard.cursor - shard.snapshot_seq, s.snapshot_every, len(engine.members) + len(engine.flows)
            ):
                if snapshots_apart.apart(engine):
                    fork_at[:] = [shard.cursor]  # once committed, by a child (snapshots_apart)
                else:
                    try:
                        snapshot = (shard.cursor, engine.snapshot())
                    except EngineError as exc:  # some state it cannot write: the journal still has it all
                        log.warning("sopdsl runtime: shard '%s': no snapshot taken: %s", name, exc)
                shard.snapshot_seq = shard.cursor
            rows = [row_of(name, a) for a in collected if a.status != "deferred"]
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
                figures=tally,
            )

        def elsewhere(accepted: list[dict[str, Any]]) -> None:
            # Journaled for the worker holding the shard: which events were new is known here,
            # what they cause is decided there.
            if not s.named and name not in self._told and accepted:
                self._told.add(name)
                # Most likely this very bot before a restart, under a name made up for it then:
                # its lease has to lapse first, and nothing else would tell why nothing happens.
                log.warning(
                    "sopdsl runtime: shard '%s' is held by another worker's lease, so events fed "
                    "here are stored for it and return no actions; if that worker is gone (this bot "
                    "before a restart, under a name made up for that process), this one applies them "
                    "once its lease lapses, up to %g s from its last apply, and their actions go out "
                    "late. Name the worker the same across restarts (Runtime(worker=...), sopdsl run "
                    "--worker NAME) to take its leases back at once",
                    name,
                    s.lease,
                )
            self._elsewhere[name] = monotonic()
            if taken is not None:
                taken.bodies, taken.caused = list(accepted), [0] * len(accepted)

        try:
            batch = s.store.apply(
                name,
                new,
                step,
                since=since,
                worker=s.worker,
                wall=s.wall(),
                lease=s.lease,
                appended=elsewhere,
                # A read (nothing new, no timers) may take a free shard; the next turn hands it on.
                defer_to=self.left_to(name) if new or until is not None else None,
            )
        except (EventError, StaleError, _UnreadSnapshotError):
            raise  # refused before the engine moved on
        except BaseException as exc:
            # The engine may be ahead of what was committed: rebuild it from the store next time.
            self.held.pop(name, None)
            if isinstance(exc, SopdslError) or not isinstance(exc, Exception):
                raise
            log.exception("sopdsl runtime: applying to shard '%s' failed; nothing was stored", name)
            reason = redact_urls_in(f"{type(exc).__name__}: {exc}")
            raise EngineError(f"applying to shard '{name}' failed ({reason}); nothing was stored") from exc
        for change in made:
            log.info("sopdsl runtime: shard '%s': %s", name, change)
        if changes is not None:
            changes.extend(made)
        if loaded is not None and self.held.get(name) is not loaded:
            self._loaded[name] = loaded  # the step did not run: another worker holds the shard
        if batch is None:
            return []
        if fork_at:  # committed: the engine is at that entry until this returns
            self.snapshots.fork(name, fork_at[0], self.held[name].engine)
        return collected

    def _tick_entry(self, overdue: int, *, first: bool, until: int) -> dict[str, Any]:
        missed_after = self.settings.missed_after
        if first and missed_after is not None and overdue > missed_after:
            # This process's first look at the shard finds timers long overdue: the runtime was
            # down. Timers missed meanwhile fire now, and calendar entries follow their playbook's
            # `missed` setting (skip, or run the latest once). Later in the same process a late
            # timer (a slow executor held the loop up) is only late, and fires as usual.
            return {"op": "resume", "until": until}
        return {"op": "advance", "until": until}

    def plan(self, plan_hash: str) -> Plan:
        """A plan by its hash: one this runtime was given, or one the store keeps."""
        plan = self.plans.get(plan_hash)
        if plan is None:
            text = self.settings.store.load_plan(plan_hash)
            if text is None:
                raise PlanError(
                    f"the store does not hold plan {plan_hash[:12]}, which a shard's journal names"
                )
            plan = self.plans[plan_hash] = loads(text)
        return plan

    def peek(self, name: str, info: Callable[[], ShardInfo]) -> Engine:
        """A read-only engine of a shard another worker holds, caught up with its journal (its
        snapshot, then the entries after it; next time only the new ones). Never driven: its
        actions and figures are the holder's. `info` gives the shard's record, for a copy made
        from the journal's start."""
        shard = self._peeked.get(name)
        if shard is None:
            shard = self._from_snapshot(name) if self.settings.snapshot_every != 0 else None
            if shard is None:
                shard = self._fresh(info())
            shard.figures = None
            self._peeked[name] = shard
        for entry in self.settings.store.journal(name, after=shard.cursor):
            shard.play(entry.body)
            shard.cursor = entry.seq
        return shard.engine

    def _fresh(self, info: ShardInfo) -> Shard:
        """A new engine for a shard, under the plan its journal starts with."""
        # keep_log=False: a long-running process holds no action after it is in the outbox.
        engine = Engine(self.plan(info.plan_hash), start=info.start, seed=info.seed, keep_log=False)
        shard = Shard(engine, self.plan)
        engine.sinks.append(shard.sink)
        engine.holds.append(shard.sink)
        shard.figures = ShardFigures(engine)
        return shard

    def _restored(self, name: str) -> Shard | None:
        """The shard's engine from its latest snapshot, to apply its journal; None when there is
        none or it cannot be read (replay)."""
        shard = self._from_snapshot(name)
        if shard is not None:
            self.restored += 1
        return shard

    def _from_snapshot(self, name: str) -> Shard | None:
        """The shard's engine from its latest snapshot (not counted as a restore: `peek` reads one
        too); None when there is none or it cannot be read."""
        found = self.settings.store.load_snapshot(name)
        if found is None:
            return None
        seq, blob = found
        try:
            engine = Engine.restore(blob, self.plan, keep_log=False)
        except (EngineError, PlanError) as exc:
            # Never half-read: an older format (a pickle, which is never unpickled), a foreign or
            # damaged blob, a plan the store lacks. The next snapshot replaces it.
            log.warning(
                "sopdsl runtime: shard '%s': %s; the snapshot is dropped and the journal replayed instead",
                name,
                exc,
            )
            return None
        shard = Shard(engine, self.plan, cursor=seq, snapshot_seq=seq, started=engine.started)
        engine.sinks.append(shard.sink)
        engine.holds.append(shard.sink)
        shard.figures = ShardFigures(engine)
        return shard

    def timers(self) -> int:
        """Timers waiting in the engines held here."""
        return sum(len(s.engine.heap) for s in self.held.values())

    def hand_over(self, name: str, to: str) -> None:
        """Pass this worker's lease on a shard to worker `to`, and forget its engine."""
        self.settings.store.hand_over(
            name, self.settings.worker, to, self.settings.wall() + self.settings.lease
        )
        self.held.pop(name, None)
        self._loaded.pop(name, None)
        self._elsewhere[name] = monotonic()  # its next feed here is journaled for `to`: no snapshot read

    def release(self) -> None:
        """Give up this worker's leases on the shards it holds, and forget their engines."""
        self.snapshots.close()  # while the leases are still this worker's
        for name in self.held:
            self.settings.store.release(name, self.settings.worker)
        self.held.clear()


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
        engine.add_group(GroupRecord.from_journal(body))
    else:
        engine.add_member(MemberRecord.from_journal(body))
    return []


def plain(body: dict[str, Any], what: str) -> dict[str, Any]:
    """The entry as JSON gives it back, so the engine sees now exactly what a replay will see."""

    def dates(value: Any) -> str:
        if isinstance(value, dt.date):
            return value.isoformat()
        raise TypeError(f"{type(value).__name__} is not JSON data")

    try:
        result: dict[str, Any] = json.loads(json.dumps(body, ensure_ascii=False, default=dates))
    except (TypeError, ValueError) as exc:
        raise EngineError(f"{what}: {exc}") from None
    broken = surrogate(result)
    if broken is not None:
        raise EngineError(
            f"{what}: '{broken}' holds a lone surrogate (half of a character); pass the text itself"
        )
    return result


play_entry = _play  # the public name: the Temporal workflow (sopdsl/temporal/) plays the same entries
