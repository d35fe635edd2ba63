"""Figures of a dry run, observed from outside the engine: the events fed, the action log, and
where each flow's steps run (the engine's step hook).

Nothing here adds state to the engine: a `Collector` is attached to an engine (a sink and a step
hook) and sees each event as the dry run feeds it. Day boundaries are local midnights in the
run's zone; the current day's bounds are cached, so an event costs a comparison, not a date
conversion.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import compress
from operator import attrgetter
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sopdsl import lang
from sopdsl.engine.actions import Action
from sopdsl.engine.engine import Engine
from sopdsl.engine.events import Event
from sopdsl.engine.state import Flow
from sopdsl.figures.goals import Goals, experiment_counts
from sopdsl.figures.model import NO_GROUP, Figures, FlowFigures, GroupDay, number
from sopdsl.plan import CompiledPlaybook, timeutil

_COUNTED = frozenset({"message", "join", "leave", "order"})  # the kinds of events counted
_WHO = attrgetter("kind", "group", "member")
_KIND = attrgetter("kind")
_DIRECT = frozenset({"member", "referrer"})  # targets whose action names the member it reaches
_T = TypeVar("_T")
_NOTHING = GroupDay()


@dataclass(slots=True)
class _Cell:
    """One group's counts on one day, while the run goes."""

    deliveries: int = 0
    reached: set[str] = field(default_factory=set)
    posters: set[str | None] = field(default_factory=set)
    messages: int = 0
    joins: int = 0
    leaves: int = 0
    removed: int = 0
    orders: int = 0
    buyers: set[str | None] = field(default_factory=set)
    amount: float = 0

    def freeze(self) -> GroupDay:
        return GroupDay(
            deliveries=self.deliveries,
            reached=len(self.reached),
            posters=len(self.posters),
            messages=self.messages,
            joins=self.joins,
            leaves=self.leaves,
            removed=self.removed,
            orders=self.orders,
            buyers=len(self.buyers),
            amount=self.amount,
        )


class _Days:
    """Local days of instants, the last day's bounds cached (times mostly come in order)."""

    __slots__ = ("hi", "label", "lo", "tz")

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self.lo, self.hi, self.label = 1, 0, ""

    def of(self, time: int) -> str:
        if self.lo <= time < self.hi:
            return self.label
        tz = self.tz
        local = dt.datetime.fromtimestamp(time, tz)
        lo = time - (local.hour * 3600 + local.minute * 60 + local.second)
        hi = lo + 86400
        # A day with a clock change is not 24 hours long: its bounds are found the long way.
        if (
            dt.datetime.fromtimestamp(lo, tz).time() != dt.time()
            or dt.datetime.fromtimestamp(hi, tz).time() != dt.time()
        ):
            day = local.date()
            lo = timeutil.resolve(dt.datetime.combine(day, dt.time()), tz)
            hi = timeutil.resolve(dt.datetime.combine(day + dt.timedelta(days=1), dt.time()), tz)
        self.lo, self.hi, self.label = lo, hi, local.date().isoformat()
        return self.label


class Collector:
    """Counts a dry run's figures: attach it to the engine before the run, pass the events through
    `events`, then call `figures` once the run has ended."""

    def __init__(self, zone: str, attribution: lang.Attribution = lang.Attribution.LAST_TOUCH) -> None:
        self.zone = zone
        self.attribution = attribution
        self._goals: Goals | None = None
        tz = timeutil.zone(zone)
        self._event_days = _Days(tz)
        self._action_days = _Days(tz)
        self._by_day: dict[str, dict[str | None, _Cell]] = {}  # day → group (None: none named) → counts
        self._actions: dict[tuple[str, str, str, str], int] = {}  # (day, playbook, kind, status) → count
        self._started: Counter[str] = Counter()
        self._completed: Counter[str] = Counter()
        self._newest_flow = 0
        self._at_stop = 0  # the flow told of at a `stop` once: it ends when told again
        self._ends: dict[str, tuple[CompiledPlaybook, list[frozenset[int]]]] = {}  # see `_ends`
        self._settled: dict[tuple[str, str], GroupDay] = {}  # (group, day) → counts of a past day
        self._engine: Engine | None = None
        self._first = 0

    def attach(self, engine: Engine) -> None:
        """Watch `engine` from now on (a sink for its actions, a hook on its steps)."""
        self._engine = engine
        self._first = engine.now
        self._goals = Goals(engine, self.attribution, timeutil.zone(self.zone))
        engine.sinks.append(self._action)
        chained = engine.on_step
        if chained is None:
            engine.on_step = self._step
        else:  # coverage is watching too: both are told

            def both(pb: CompiledPlaybook, flow: Flow, now: int) -> None:
                chained(pb, flow, now)
                self._step(pb, flow, now)

            engine.on_step = both

    def events(self, events: Iterable[_T]) -> Iterator[_T]:
        """The events, unchanged, each counted as it passes on its way to the engine (anything
        else in the stream, such as a fixture's reloads, passes uncounted)."""
        goals = self._goals
        if goals is not None and goals.kinds:
            return self._events_and_goals(events, goals)
        return self._events(events)

    def _events(self, events: Iterable[_T]) -> Iterator[_T]:
        # The hot loop of a counted run: an event is only kept (one append, nothing allocated)
        # and a day's events are counted in bulk, by C-level maps, when the next day begins.
        lo = hi = 0
        label = ""
        today: list[Event] = []
        keep = today.append
        try:
            for event in events:
                try:
                    time: int = event.time  # type: ignore[attr-defined]
                    event.kind  # type: ignore[attr-defined]  # noqa: B018
                except AttributeError:  # a fixture's reload
                    yield event
                    continue
                if not lo <= time < hi:
                    label, lo, hi = self._next_day(label, today, time)
                keep(event)  # type: ignore[arg-type]
                yield event
        finally:
            self._tally(label, today)

    def _events_and_goals(self, events: Iterable[_T], goals: Goals) -> Iterator[_T]:
        # As `_events`, and a goal's event is judged once the engine has taken it in (when the
        # next is asked for): the timers before it have run by then, so the splits and sends
        # before it are known.
        lo = hi = 0
        label = ""
        today: list[Event] = []
        keep = today.append
        goal_kinds = goals.kinds
        taken: Event | None = None
        try:
            for event in events:
                if taken is not None:
                    goals.event(taken)
                    taken = None
                try:
                    kind = event.kind  # type: ignore[attr-defined]
                except AttributeError:  # a fixture's reload
                    yield event
                    continue
                time: int = event.time  # type: ignore[attr-defined]
                if not lo <= time < hi:
                    label, lo, hi = self._next_day(label, today, time)
                keep(event)  # type: ignore[arg-type]
                if kind in goal_kinds:
                    taken = event  # type: ignore[assignment]
                yield event
        finally:
            self._tally(label, today)
            if taken is not None:
                goals.event(taken)

    def _next_day(self, label: str, today: list[Event], time: int) -> tuple[str, int, int]:
        """Count the events of the day `label` and settle the days before it; the day of `time`,
        and its bounds."""
        self._tally(label, today)
        self._settle(label)
        days = self._event_days
        return days.of(time), days.lo, days.hi

    def _settle(self, last: str) -> None:
        """Keep only the counts of the days before `last`, the previous event's day: the engine's
        clock has passed them (it is at or after that event), so no action of theirs can come.
        A long run so holds the members' names of about two days, not of all of them."""
        for day in [day for day in self._by_day if day < last]:
            for group, cell in self._by_day.pop(day).items():
                key = (group or NO_GROUP, day)
                done = self._settled.get(key)
                self._settled[key] = cell.freeze() if done is None else done.plus(cell.freeze())

    def _tally(self, day: str, events: list[Event]) -> None:
        """Add a day's events to its cells, and forget them. The counting is done by C-level
        maps over the day's events; Python only walks the distinct (kind, group, member)."""
        if not events:
            return
        today = self._by_day.setdefault(day, {})
        orders = False
        for (kind, group, member), count in Counter(map(_WHO, events)).items():
            if kind not in _COUNTED:
                continue
            cell = today.get(group)
            if cell is None:
                cell = today[group] = _Cell()
            if kind == "message":
                cell.messages += count
                cell.posters.add(member)
            elif kind == "join":
                cell.joins += count
            elif kind == "leave":
                cell.leaves += count
            else:
                orders = True
        if orders:
            for event in compress(events, map("order".__eq__, map(_KIND, events))):
                self._order(today, event)
        events.clear()

    def _order(self, today: dict[str | None, _Cell], event: Event) -> None:
        cell = today[event.group]  # made by `_tally` for the day's counts
        cell.orders += 1
        cell.buyers.add(event.member)
        amount = event.data.get("amount", 0)
        if isinstance(amount, int | float) and not isinstance(amount, bool):
            cell.amount += amount

    def _action(self, action: Action) -> None:
        time = action.time
        days = self._action_days
        day = days.label if days.lo <= time < days.hi else days.of(time)
        status = action.status
        key = (day, action.playbook, action.kind, status)
        counts = self._actions
        counts[key] = counts.get(key, 0) + 1
        if status != "done":
            return
        kind = action.kind
        if kind == "send" and action.target != "operator":
            cell = self._cell(day, action.group)
            cell.deliveries += 1
            reached: Iterable[str] = ()
            if action.target in _DIRECT:
                if action.member is not None:
                    reached = (action.member,)
            elif action.group is not None and (group := self.engine.groups.get(action.group)) is not None:
                # A post to the group reaches everyone in it at the time.
                reached = group.members
            cell.reached.update(reached)
            goals = self._goals
            if goals is not None and (action.playbook in goals.with_goals or action.playbook in goals.arms):
                arm = action.detail.get("arm")
                for member in reached:
                    goals.touched(action.playbook, member, time, arm)
        elif kind == "kick":
            self._cell(day, action.group).removed += 1

    @property
    def engine(self) -> Engine:
        """The engine watched."""
        assert self._engine is not None, "attach the collector to an engine first"
        return self._engine

    def _cell(self, day: str, group: str | None) -> _Cell:
        today = self._by_day.setdefault(day, {})
        cell = today.get(group)
        if cell is None:
            cell = today[group] = _Cell()
        return cell

    def _step(self, pb: CompiledPlaybook, flow: Flow, now: int) -> None:
        # Told of every instruction a flow runs: the common case (a step inside the code, of a
        # flow seen before, with no arm) costs a lookup and a set test.
        if flow.arm is not None and flow.member is not None and self._goals is not None:
            self._goals.assigned(pb.name, flow.member, flow.arm, now)
        # Flow ids only grow, so a flow not seen before is one just begun.
        if flow.id > self._newest_flow:
            self._newest_flow = flow.id
            self._started[pb.name] += 1
        ends = self._ends.get(pb.name)
        if ends is None or ends[0] is not pb:
            ends = self._ends[pb.name] = (pb, _ends(pb))
        if flow.pc in ends[1][flow.entry]:
            self._at_end(pb, flow)

    def _at_end(self, pb: CompiledPlaybook, flow: Flow) -> None:
        """A step past the flow's last one, or at a `stop`."""
        code = pb.code if flow.entry < 0 else pb.schedule[flow.entry].code
        # The hook is told once more where a flow ends: past its last step, or at a `stop` it
        # was told of just before (nothing runs in between).
        if flow.pc >= len(code):
            self._completed[pb.name] += 1
        elif self._at_stop == flow.id:
            self._completed[pb.name] += 1
            self._at_stop = 0
        else:
            self._at_stop = flow.id

    def figures(self) -> Figures:
        """The figures of the run so far: every group on every day from the run's start to now,
        and every playbook of the plan."""
        engine = self.engine
        days = _span(self._first, engine.now, timeutil.zone(self.zone))
        names = {g.id: g.name for g in engine.groups.values()}
        cells = dict(self._settled)
        for day, today in self._by_day.items():
            for group, cell in today.items():
                key = (group or NO_GROUP, day)
                cells[key] = cell.freeze() if key not in cells else cells[key].plus(cell.freeze())
        used = {group for group, _ in cells}
        groups: dict[str, dict[str, GroupDay]] = {}
        for group in [*names, *sorted(used - names.keys())]:
            groups[group] = {day: cells.get((group, day)) or _NOTHING for day in days}
        running: Counter[str] = Counter(
            engine.compiled[f.playbook].source.name for f in engine.flows.values()
        )
        playbooks = [c.name for c in engine.plan.playbooks]
        by_status: Counter[tuple[str, str, str]] = Counter()
        daily: dict[str, dict[str, int]] = {day: {} for day in days}
        for (day, name, kind, status), count in self._actions.items():
            by_status[(name, kind, status)] += count
            daily.setdefault(day, {}).setdefault(name, 0)
            daily[day][name] += count
        acted = {name for name, _, _ in by_status}
        flows: dict[str, FlowFigures] = {}
        for name in [*playbooks, *sorted(acted - set(playbooks))]:
            started, completed, left = self._started[name], self._completed[name], running[name]
            by_kind: dict[str, dict[str, int]] = {}
            for (playbook, kind, status), count in sorted(by_status.items()):
                if playbook == name:
                    by_kind.setdefault(kind, {})[status] = count
            flows[name] = FlowFigures(
                started=started,
                completed=completed,
                exited=started - completed - left,
                running=left,
                actions=by_kind,
                goals=self._goal_figures(name),
            )
        experiments = experiment_counts(self._goals) if self._goals is not None else []
        return Figures(self.zone, days, names, groups, flows, daily, experiments)

    def _goal_figures(self, playbook: str) -> dict[str, dict[str, Any]]:
        """A playbook's goals: conversions, the members converted, their amount, members per arm."""
        if self._goals is None:
            return {}
        return {
            goal: {
                "conversions": count.conversions,
                "converted": len(count.members),
                "amount": number(count.amount),
                "arms": {arm: len(members) for arm, members in sorted(count.arms.items())},
            }
            for (name, goal), count in self._goals.counts.items()
            if name == playbook
        }


def _ends(pb: CompiledPlaybook) -> list[frozenset[int]]:
    """Where a flow of `pb` may end, by entry (the playbook's own code last, at index -1, as its
    entry is -1): past the last instruction, or at a `stop`."""
    return [
        frozenset([len(code), *(pc for pc, instr in enumerate(code) if instr.op == "stop")])
        for code in [*(entry.code for entry in pb.schedule), pb.code]
    ]


def _span(first: int, last: int, tz: ZoneInfo) -> list[str]:
    """Every local day from the one `first` falls on to the one `last` falls on (an end at
    midnight is the day before's end)."""
    start = dt.datetime.fromtimestamp(first, tz).date()
    end = dt.datetime.fromtimestamp(max(first, last - 1), tz).date()
    return [(start + dt.timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]
