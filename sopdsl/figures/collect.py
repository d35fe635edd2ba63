"""Figures of a dry run, observed from outside the engine: the events fed, the action log, and
where flows begin, split and end (the engine's flow watch, `Engine.watch`).

Nothing here adds state to the engine: a `Collector` is attached to an engine (a sink and a flow
watch) and the dry run's loop (`sopdsl.dryrun.simulate.replay`) hands it each event. Counting must
cost the run little (issue 15: at most 10%). Messages, the common event, cost the loop two list
appends (group and member, no new object) and are counted in bulk when the next day begins
(`Counter`, set union). Other events and actions are counted as they come, in plain Python: an
event or action kept until the day ends costs more (a day's objects held, then freed) than
counting it, and C-level passes over them (`attrgetter`) read a msgspec event's or a slotted
action's fields slower than the interpreter's specialized attribute loads. Day boundaries are
local midnights in the run's zone; the current day's bounds are cached, so an event or action
costs a comparison, not a date conversion.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

from sopdsl import lang
from sopdsl.engine.actions import Action
from sopdsl.engine.engine import Engine
from sopdsl.engine.events import Event
from sopdsl.figures.flows import FlowCounts
from sopdsl.figures.goals import Goals, experiment_counts
from sopdsl.figures.model import NO_GROUP, Figures, FlowFigures, GroupDay
from sopdsl.gcpause import paused_gc
from sopdsl.plan import timeutil

_DIRECT = frozenset({"member", "referrer"})  # targets whose action names the member it reaches
_NOTHING = GroupDay()
_FIRST = itemgetter(0)


@dataclass(slots=True)
class _Cell:
    """One group's counts on one day, while the run goes (messages and posters are kept by day,
    for all groups at once: see `_Day`)."""

    deliveries: int = 0
    reached: set[str] = field(default_factory=set)
    joins: int = 0
    leaves: int = 0
    removed: int = 0
    orders: int = 0
    buyers: set[str | None] = field(default_factory=set)
    amount: float = 0


@dataclass(slots=True)
class _Day:
    """One local day's counts while the run goes."""

    cells: dict[str | None, _Cell] = field(default_factory=dict)  # group (None: none named) → counts
    messages: Counter[str | None] = field(default_factory=Counter)  # group → messages
    posters: set[tuple[str | None, str | None]] = field(default_factory=set)  # (group, member)
    acts: dict[tuple[str, str, str], int] = field(default_factory=dict)  # (playbook, kind, status)

    def cell(self, group: str | None) -> _Cell:
        cell = self.cells.get(group)
        if cell is None:
            cell = self.cells[group] = _Cell()
        return cell

    def freeze(self) -> dict[str | None, GroupDay]:
        posters = Counter(map(_FIRST, self.posters))
        frozen = {}
        for group in {*self.cells, *self.messages, *posters}:
            cell = self.cells.get(group) or _Cell()
            frozen[group] = GroupDay(
                deliveries=cell.deliveries,
                reached=len(cell.reached),
                posters=posters[group],
                messages=self.messages[group],
                joins=cell.joins,
                leaves=cell.leaves,
                removed=cell.removed,
                orders=cell.orders,
                buyers=len(cell.buyers),
                amount=cell.amount,
            )
        return frozen


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
    """Counts a dry run's figures: attach it to the engine before the run, let the dry run's loop
    hand it the events (`groups`, `members`, `other`, `next_day`, `judge`), then call `figures`
    once the run has ended."""

    def __init__(self, zone: str, attribution: lang.Attribution = lang.Attribution.LAST_TOUCH) -> None:
        self.zone = zone
        self.attribution = attribution
        self._goals: Goals | None = None
        tz = timeutil.zone(zone)
        self._event_days = _Days(tz)
        self._action_days = _Days(tz)
        # Where and by whom each message of the current day (`_Days.label`) was posted, not yet
        # counted; the other events are counted as they come (`other`).
        self.groups: list[str | None] = []
        self.members: list[str | None] = []
        self._by_day: dict[str, _Day] = {}  # day → counts, for the days not settled yet
        self._today = self._acting = _Day()  # the counts of the events' and the actions' days
        self._counted: Counter[tuple[str, str, str, str]] = Counter()  # (day, playbook, kind, status)
        self._flows = FlowCounts()
        self._settled: dict[tuple[str, str], GroupDay] = {}  # (group, day) → counts of a past day
        self._engine: Engine | None = None
        self._goaled = False  # see `attach`
        self._first = 0
        self.judge: Callable[[Event], None] | None = None  # see `attach`
        self.goal_kinds: frozenset[str] = frozenset()

    def attach(self, engine: Engine) -> None:
        """Watch `engine` from now on (a sink for its actions, a watch on its flows)."""
        self._engine = engine
        self._first = engine.now
        goals = self._goals = Goals(engine, self.attribution, timeutil.zone(self.zone))
        # Connected whatever the first plan has: a split loaded by a later reload counts its arms
        # too, as the live figures do.
        self._flows.assigned = self._assigned
        # Told of sends only with goals or arms (arms come only through `_assigned`).
        self._goaled = bool(goals.with_goals or goals.arms)
        if goals.kinds:
            # A goal's event is judged once the engine has taken it in: the timers before it have
            # run by then, so the splits and sends before it are known.
            self.judge, self.goal_kinds = goals.event, frozenset(goals.kinds)
        engine.sinks.append(self._action)
        engine.watch = self._flows

    def next_day(self, time: int) -> tuple[int, int]:
        """Count the messages kept of the current day, which `time` (an event's) does not fall on,
        and start a new day: its bounds [lo, hi), which the loop compares the next events' times
        with."""
        days = self._event_days
        last = days.label
        self._tally(last)
        self._settle(last)
        self._today = self._day(days.of(time))
        return days.lo, days.hi

    def _tally(self, day: str) -> None:
        """Add the messages kept of the current day to `day`'s counts, and forget them."""
        groups, members = self.groups, self.members
        if groups:
            counts = self._day(day)
            counts.messages.update(groups)
            counts.posters.update(zip(groups, members, strict=True))
            groups.clear()
            members.clear()

    def other(self, event: Event) -> None:
        """Count an event other than a message, of the current day (see `next_day`)."""
        kind = event.kind
        if kind == "join":
            self._today.cell(event.group).joins += 1
        elif kind == "leave":
            self._today.cell(event.group).leaves += 1
        elif kind == "order":
            cell = self._today.cell(event.group)
            cell.orders += 1
            cell.buyers.add(event.member)
            amount = event.data.get("amount", 0)
            if isinstance(amount, int | float) and not isinstance(amount, bool):
                cell.amount += amount

    def _settle(self, last: str) -> None:
        """Keep only the counts of the days before `last`, the previous event's day: the engine's
        clock has passed them (it is at or after that event), so no action of theirs can come.
        A long run so holds the members' names of about two days, not of all of them."""
        for day in [day for day in self._by_day if day < last]:
            self._freeze(day, self._by_day.pop(day), self._settled, self._counted)
        self._action_days.lo, self._action_days.hi = 1, 0  # its day may be gone: look it up again

    @staticmethod
    def _freeze(
        day: str,
        counts: _Day,
        cells: dict[tuple[str, str], GroupDay],
        counted: Counter[tuple[str, str, str, str]],
    ) -> None:
        """Add `day`'s counts to `cells` by group, and to `counted` its actions by playbook, kind
        and status."""
        for (playbook, kind, status), count in counts.acts.items():
            counted[(day, playbook, kind, status)] += count
        for group, cell in counts.freeze().items():
            key = (group or NO_GROUP, day)
            done = cells.get(key)
            cells[key] = cell if done is None else done.plus(cell)

    def _action(self, action: Action) -> None:
        # Counted by playbook, kind and status now (an action is not kept: holding a day's worth
        # costs more than counting each); what a done send or kick adds to its group's day too.
        time = action.time
        days = self._action_days
        if days.lo <= time < days.hi:
            counts = self._acting
        else:
            counts = self._acting = self._day(days.of(time))
        status = action.status
        kind = action.kind
        key = (action.playbook, kind, status)
        acts = counts.acts
        acts[key] = acts.get(key, 0) + 1
        if status != "done":
            return
        if kind == "send":
            target = action.target
            if target == "operator":
                return
            cell = counts.cells.get(action.group) or counts.cell(action.group)
            cell.deliveries += 1
            reached: Iterable[str] = ()
            if target in _DIRECT:
                if action.member is not None:
                    cell.reached.add(action.member)
                    reached = (action.member,)
            elif action.group is not None and (group := self.engine.groups.get(action.group)) is not None:
                # A post to the group reaches everyone in it at the time.
                reached = group.members
                cell.reached.update(reached)
            # Goals and arms as they are now (a split's arms are added as members are put in them).
            if (
                self._goaled
                and (goals := self._goals) is not None
                and (action.playbook in goals.with_goals or action.playbook in goals.arms)
            ):
                arm = action.detail.get("arm")
                for member in reached:
                    goals.touched(action.playbook, member, time, arm)
        elif kind == "kick":
            counts.cell(action.group).removed += 1

    def _assigned(self, playbook: str, member: str, arm: str, time: int) -> None:
        # Before the arm's sends: they are then told to the goals, which count them as touches.
        if self._goals is not None:
            self._goals.assigned(playbook, member, arm, time)
            self._goaled = True

    def _day(self, day: str) -> _Day:
        counts = self._by_day.get(day)
        if counts is None:
            counts = self._by_day[day] = _Day()
        return counts

    @property
    def engine(self) -> Engine:
        """The engine watched."""
        assert self._engine is not None, "attach the collector to an engine first"
        return self._engine

    @paused_gc  # it builds thousands of small records and makes no cycles (see `paused_gc`)
    def figures(self) -> Figures:
        """The figures of the run so far: every group on every day from the run's start to now,
        and every playbook of the plan."""
        engine = self.engine
        self._tally(self._event_days.label)
        days = _span(self._first, engine.now, timeutil.zone(self.zone))
        names = {g.id: g.name for g in engine.groups.values()}
        cells = dict(self._settled)
        counted = self._counted.copy()
        for day, counts in self._by_day.items():
            self._freeze(day, counts, cells, counted)
        used = {group for group, _ in cells}
        groups: dict[str, dict[str, GroupDay]] = {}
        for group in [*names, *sorted(used - names.keys())]:
            groups[group] = {day: cells.get((group, day)) or _NOTHING for day in days}
        running: Counter[str] = Counter()
        for index, count in Counter(f.playbook for f in engine.flows.values()).items():
            running[engine.compiled[index].source.name] += count
        daily: dict[str, dict[str, int]] = {day: {} for day in days}
        by_status: Counter[tuple[str, str, str]] = Counter()
        for (day, name, kind, status), count in counted.items():
            daily.setdefault(day, {}).setdefault(name, 0)
            daily[day][name] += count
            by_status[(name, kind, status)] += count
        flows = playbook_figures(
            [c.name for c in engine.plan.playbooks],
            self._flows.started,
            self._flows.completed,
            running,
            by_status,
            self._goal_figures,
        )
        experiments = experiment_counts(self._goals) if self._goals is not None else []
        return Figures(self.zone, days, names, groups, flows, daily, experiments)

    def _goal_figures(self, playbook: str) -> dict[str, dict[str, Any]]:
        return self._goals.figures(playbook) if self._goals is not None else {}


def playbook_figures(
    playbooks: list[str],
    started: dict[str, int],
    completed: dict[str, int],
    running: dict[str, int],
    actions: dict[tuple[str, str, str], int],
    goals: Callable[[str], dict[str, dict[str, Any]]],
) -> dict[str, FlowFigures]:
    """Each playbook's figures: the plan's playbooks first, then any other that acted, by name
    (`actions`: counts by playbook, kind and status; `goals`: a playbook's goal figures)."""
    by_status = actions
    acted = {name for name, _, _ in by_status}
    flows: dict[str, FlowFigures] = {}
    for name in [*playbooks, *sorted(acted - set(playbooks))]:
        begun, done, left = started.get(name, 0), completed.get(name, 0), running.get(name, 0)
        by_kind: dict[str, dict[str, int]] = {}
        for (playbook, kind, status), count in sorted(by_status.items()):
            if playbook == name:
                by_kind.setdefault(kind, {})[status] = count
        flows[name] = FlowFigures(
            started=begun,
            completed=done,
            exited=begun - done - left,
            running=left,
            actions=by_kind,
            goals=goals(name),
        )
    return flows


def _span(first: int, last: int, tz: ZoneInfo) -> list[str]:
    """Every local day from the one `first` falls on to the one `last` falls on (an end at
    midnight is the day before's end)."""
    start = dt.datetime.fromtimestamp(first, tz).date()
    end = dt.datetime.fromtimestamp(max(first, last - 1), tz).date()
    return [(start + dt.timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]
