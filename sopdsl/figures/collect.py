"""Figures of a dry run, observed from outside the engine: the events fed, the action log, and
where flows begin, split and end (the engine's flow watch, `Engine.watch`).

Nothing here adds state to the engine: a `Collector` is attached to an engine (a sink and a flow
watch) and the dry run's loop (`sopdsl.dryrun.simulate.replay`) notes each event. Counting must
cost the run little (issue 15: at most 10%). A message costs the loop a comparison of its time
with the day's end, a dict subscript and a list append (`posts`: group → who posted, in order);
the day's messages are counted when the next day begins, by `len` and `len(set(...))` per group,
where a `Counter` and a set of (group, member) tuples cost several times more. Other events are
kept for the day (`others`) and counted then. Actions are counted as they come, in plain Python:
keeping them costs more than counting each, and a post to a group reaches its members at the
time. C-level passes over events or actions (`attrgetter`) read a msgspec event's or a slotted
action's fields slower than the interpreter's specialized attribute loads. Day boundaries are
local midnights in the run's zone; events and actions each come in time order, so each keeps
its own day and compares a time with that day's end; an action day's counts are settled when
the next day's first action comes (docs/performance.md, "What counting figures costs").
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any
from zoneinfo import ZoneInfo

from sopdsl import lang
from sopdsl.engine.actions import Action
from sopdsl.engine.engine import Engine
from sopdsl.engine.events import Event
from sopdsl.figures.flows import FlowCounts
from sopdsl.figures.goals import Goals, experiment_counts
from sopdsl.figures.model import NO_GROUP, Figures, FlowFigures, GroupDay, group_day
from sopdsl.gcpause import paused_gc
from sopdsl.plan import timeutil

_DIRECT = frozenset({"member", "referrer"})  # targets whose action names the member it reaches
_NOTHING = GroupDay()
_NO_ACTS = (0, 0, 0)  # deliveries, reached, removed
_NO_EVENTS = (0, 0, 0, 0, 0, 0, 0)  # posters, messages, joins, leaves, orders, buyers, amount
_NUMBER = (int, float)  # a constant: `int | float` in `isinstance` builds a union at each order


class _Acted:
    """One group's counts of done actions on one day, while that day's actions come (a plain
    slotted class: a dataclass compiles its methods' source at import)."""

    __slots__ = ("deliveries", "reached", "removed")

    def __init__(self) -> None:
        self.deliveries = 0
        self.reached: set[str] = set()
        self.removed = 0


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
    note the day's events (`posts`, `others`, `next_day`, `judge`), then call `figures` once the
    run has ended."""

    def __init__(self, zone: str, attribution: lang.Attribution = lang.Attribution.LAST_TOUCH) -> None:
        self.zone = zone
        self.attribution = attribution
        self._goals: Goals | None = None
        tz = timeutil.zone(zone)
        self._event_days = _Days(tz)
        self._action_days = _Days(tz)
        # The current event day's messages, group → who posted each (in order), and its other
        # events: counted when the next day begins (`next_day`), kept as the loop notes them.
        self.posts: dict[str | None, list[str | None]] = {}
        self.others: list[Event] = []
        # Settled: (group, day) → (posters, messages, joins, leaves, orders, buyers, amount).
        self._events: dict[tuple[str, str], tuple[int, int, int, int, int, int, float]] = {}
        # The current action day's counts (its day is `_action_days.label`), then settled ones.
        self._action_end = 0  # where the current action day ends
        self._acts: dict[str, dict[str, dict[str, int]]] = {}  # playbook → kind → status → count
        self._acted: dict[str | None, _Acted] = {}  # group → done sends and kicks
        self._counted: Counter[tuple[str, str, str, str]] = Counter()  # (day, playbook, kind, status)
        self._done: dict[tuple[str, str], tuple[int, int, int]] = {}  # (group, day) → acted counts
        self._flows = FlowCounts()
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

    def next_day(self, time: int) -> int:
        """Count the events noted of the current day, which `time` (an event's, never earlier than
        the last) does not fall on, and start that event's day; return its end, which the loop
        compares the next events' times with."""
        days = self._event_days
        if self.posts or self.others:
            self._events.update(self._tally(days.label))
            self.posts.clear()
            self.others.clear()
        days.of(time)
        return days.hi

    def _tally(self, day: str) -> dict[tuple[str, str], tuple[int, int, int, int, int, int, float]]:
        """The counts of the events noted of `day` (the current event day), by group (nothing is
        forgotten: `figures` asks before the day has ended)."""
        cells: dict[str | None, list[Any]] = {}
        for group, posters in self.posts.items():
            # A group's messages of the day and its distinct posters, counted in C.
            cells[group] = [len(set(posters)), len(posters), 0, 0, 0, set(), 0]
        for event in self.others:
            kind = event.kind
            if kind not in _COUNTED:
                continue
            cell = cells.get(event.group)
            if cell is None:
                cell = cells[event.group] = [0, 0, 0, 0, 0, set(), 0]
            if kind == "join":
                cell[2] += 1
            elif kind == "leave":
                cell[3] += 1
            else:
                cell[4] += 1
                cell[5].add(event.member)
                amount = event.data.get("amount", 0)
                if isinstance(amount, _NUMBER) and not isinstance(amount, bool):
                    cell[6] += amount
        return {
            (group or NO_GROUP, day): (p, m, j, left, o, len(buyers), amount)
            for group, (p, m, j, left, o, buyers, amount) in cells.items()
        }

    def _action(self, action: Action) -> None:
        # Counted by playbook, kind and status now (an action is not kept: holding a day's worth
        # costs more than counting each); what a done send or kick adds to its group's day too.
        # Actions come in time order (the engine's clock), so a day's are settled at the next's.
        time = action.time
        if time >= self._action_end:
            self._next_action_day(time)
        status = action.status
        kind = action.kind
        # Nested: three subscripts by strings (their hashes kept) cost less than making a tuple
        # key and hashing it twice.
        try:
            self._acts[action.playbook][kind][status] += 1
        except KeyError:
            statuses = self._acts.setdefault(action.playbook, {}).setdefault(kind, {})
            statuses[status] = statuses.get(status, 0) + 1
        if status != "done":
            return
        if kind == "send":
            target = action.target
            if target == "operator":
                return
            group = action.group
            cell = self._acted.get(group) or self._cell(group)
            cell.deliveries += 1
            if target in _DIRECT:
                if (member := action.member) is not None:
                    cell.reached.add(member)
                    if self._goaled:
                        self._touched(action, (member,))
            elif group is not None and (found := self.engine.groups.get(group)) is not None:
                # A post to the group reaches everyone in it at the time.
                cell.reached.update(found.members)
                if self._goaled:
                    self._touched(action, found.members)
        elif kind == "kick":
            self._cell(action.group).removed += 1

    def _touched(self, action: Action, reached: Iterable[str]) -> None:
        # Goals and arms as they are now (a split's arms are added as members are put in them).
        goals = self._goals
        if goals is not None and (action.playbook in goals.with_goals or action.playbook in goals.arms):
            arm = action.detail.get("arm")
            for member in reached:
                goals.touched(action.playbook, member, action.time, arm)

    def _cell(self, group: str | None) -> _Acted:
        cell = self._acted.get(group)
        if cell is None:
            cell = self._acted[group] = _Acted()
        return cell

    def _next_action_day(self, time: int) -> None:
        """Settle the current action day's counts and start the day of `time`."""
        days = self._action_days
        if self._acts:
            _settle_acts(days.label, self._acts, self._acted, self._counted, self._done)
        self._acts, self._acted = {}, {}
        days.of(time)
        # Never earlier than the last action's (the engine's clock): only the day's end is compared.
        assert time >= days.lo, "actions come in time order"
        self._action_end = days.hi

    def _assigned(self, playbook: str, member: str, arm: str, time: int) -> None:
        # Before the arm's sends: they are then told to the goals, which count them as touches.
        if self._goals is not None:
            self._goals.assigned(playbook, member, arm, time)
            self._goaled = True

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
        days = _span(self._first, engine.now, timeutil.zone(self.zone))
        names = {g.id: g.name for g in engine.groups.values()}
        events = {**self._events, **self._tally(self._event_days.label)}
        done = dict(self._done)
        counted = self._counted.copy()
        _settle_acts(self._action_days.label, self._acts, self._acted, counted, done)
        cells: dict[tuple[str, str], GroupDay] = {}
        for key in events.keys() | done.keys():  # each group's day once (100k x 90: 22,500 of them)
            posters, messages, joins, leaves, orders, buyers, amount = events.get(key, _NO_EVENTS)
            deliveries, reached, removed = done.get(key, _NO_ACTS)
            cells[key] = group_day(
                deliveries, reached, posters, messages, joins, leaves, removed, orders, buyers, amount
            )
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


_COUNTED = frozenset({"join", "leave", "order"})  # other events the figures count


def _settle_acts(
    day: str,
    acts: dict[str, dict[str, dict[str, int]]],
    acted: dict[str | None, _Acted],
    counted: Counter[tuple[str, str, str, str]],
    done: dict[tuple[str, str], tuple[int, int, int]],
) -> None:
    """Add a day's action counts to `counted` (by day, playbook, kind, status) and its groups'
    done sends and kicks to `done` (by group and day)."""
    for playbook, kinds in acts.items():
        for kind, statuses in kinds.items():
            for status, count in statuses.items():
                counted[(day, playbook, kind, status)] += count
    for group, cell in acted.items():
        key = (group or NO_GROUP, day)
        before = done.get(key, _NO_ACTS)  # met again only if the clock went back (it does not)
        done[key] = (
            before[0] + cell.deliveries,
            before[1] + len(cell.reached),
            before[2] + cell.removed,
        )
