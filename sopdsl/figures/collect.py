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

_GROWTH = frozenset({"join", "leave", "order"})  # the kinds counted one by one (messages in bulk)
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
        self._actions: Counter[tuple[str, str, str, str]] = Counter()  # (day, playbook, kind, status)
        self._started: Counter[str] = Counter()
        self._completed: Counter[str] = Counter()
        self._newest_flow = 0
        self._at_stop = 0  # the flow told of at a `stop` once: it ends when told again
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
        # The hot loop of a counted run. Messages, most of any timeline, are only noted (who and
        # where, in two lists: nothing allocated) and tallied in bulk when the day ends.
        lo = hi = 0
        label = ""
        groups: list[str | None] = []
        members: list[str | None] = []
        note_group, note_member = groups.append, members.append
        goals = self._goals
        goal_kinds = goals.kinds if goals is not None else set()
        # A goal's event is judged once the engine has taken it in (when the next is asked for):
        # the timers before it have run by then, so the splits and sends before it are known.
        taken: Event | None = None
        try:
            for event in events:
                if taken is not None:
                    goals.event(taken)  # type: ignore[union-attr]
                    taken = None
                try:
                    kind = event.kind  # type: ignore[attr-defined]
                except AttributeError:  # a fixture's reload
                    yield event
                    continue
                time: int = event.time  # type: ignore[attr-defined]
                if not lo <= time < hi:
                    self._tally(label, groups, members)
                    self._settle(label)
                    label = self._event_days.of(time)
                    lo, hi = self._event_days.lo, self._event_days.hi
                if kind == "message":
                    note_group(event.group)  # type: ignore[attr-defined]
                    note_member(event.member)  # type: ignore[attr-defined]
                elif kind in _GROWTH:
                    self._count(label, event)  # type: ignore[arg-type]
                if goal_kinds and kind in goal_kinds:
                    taken = event  # type: ignore[assignment]
                yield event
        finally:
            self._tally(label, groups, members)
            if taken is not None:
                goals.event(taken)  # type: ignore[union-attr]

    def _settle(self, last: str) -> None:
        """Keep only the counts of the days before `last`, the previous event's day: the engine's
        clock has passed them (it is at or after that event), so no action of theirs can come.
        A long run so holds the members' names of about two days, not of all of them."""
        for day in [day for day in self._by_day if day < last]:
            for group, cell in self._by_day.pop(day).items():
                key = (group or NO_GROUP, day)
                done = self._settled.get(key)
                self._settled[key] = cell.freeze() if done is None else done.plus(cell.freeze())

    def _tally(self, day: str, groups: list[str | None], members: list[str | None]) -> None:
        """Add a day's messages to its cells, and forget them."""
        if not groups:
            return
        today = self._by_day.setdefault(day, {})
        for (group, member), count in Counter(zip(groups, members, strict=True)).items():
            cell = today.get(group)
            if cell is None:
                cell = today[group] = _Cell()
            cell.messages += count
            cell.posters.add(member)
        groups.clear()
        members.clear()

    def _count(self, day: str, event: Event) -> None:
        today = self._by_day.setdefault(day, {})
        cell = today.get(event.group)
        if cell is None:
            cell = today[event.group] = _Cell()
        kind = event.kind
        if kind == "join":
            cell.joins += 1
        elif kind == "leave":
            cell.leaves += 1
        else:
            cell.orders += 1
            cell.buyers.add(event.member)
            amount = event.data.get("amount", 0)
            if isinstance(amount, int | float) and not isinstance(amount, bool):
                cell.amount += amount

    def _action(self, action: Action) -> None:
        time = action.time
        days = self._action_days
        day = days.label if days.lo <= time < days.hi else days.of(time)
        self._actions[(day, action.playbook, action.kind, action.status)] += 1
        if action.status != "done":
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
        if flow.arm is not None and flow.member is not None and self._goals is not None:
            self._goals.assigned(pb.name, flow.member, flow.arm, now)
        # Flow ids only grow, so a flow not seen before is one just begun.
        if flow.id > self._newest_flow:
            self._newest_flow = flow.id
            self._started[pb.name] += 1
        code = pb.code if flow.entry < 0 else pb.schedule[flow.entry].code
        # The hook is told once more where a flow ends: past its last step, or at a `stop` it
        # was told of just before (nothing runs in between).
        if flow.pc >= len(code):
            self._completed[pb.name] += 1
        elif code[flow.pc].op == "stop":
            if self._at_stop == flow.id:
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


def _span(first: int, last: int, tz: ZoneInfo) -> list[str]:
    """Every local day from the one `first` falls on to the one `last` falls on (an end at
    midnight is the day before's end)."""
    start = dt.datetime.fromtimestamp(first, tz).date()
    end = dt.datetime.fromtimestamp(max(first, last - 1), tz).date()
    return [(start + dt.timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]
