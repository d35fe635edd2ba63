"""Figures of a dry run, observed from outside the engine: the events it takes in, the action
log, and where flows begin, split and end (the engine's flow watch, `Engine.watch`).

Nothing the engine decides reads what is counted here: a `Collector` is attached to an engine (an
event tally, a sink and a flow watch), so the dry run's loop feeds the engine as it does without
figures. Counting must cost the run little (issue 15: at most 10%). Events are counted by the
engine's tally (`sopdsl.engine.tally`) as the engine takes each in, where its fields have just
been read. Actions are counted as they come, in plain Python (`ActionCounts`): keeping them
costs more than counting each, and a post to a group reaches its members at the time. Day
boundaries are local midnights in the run's zone; a day's counts are settled when the next day's
first event (or action) comes (docs/performance.md, "What counting figures costs").
"""

from __future__ import annotations

import datetime as dt
import weakref
from collections import Counter
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from sopdsl import lang
from sopdsl.engine.engine import Engine
from sopdsl.engine.events import Event
from sopdsl.engine.tally import Days, EventTally
from sopdsl.figures.acted import NO_ACTS, ActionCounts
from sopdsl.figures.flows import FlowCounts
from sopdsl.figures.goals import Goals, experiment_counts
from sopdsl.figures.model import NO_GROUP, Figures, FlowFigures, GroupDay
from sopdsl.gcpause import paused_gc
from sopdsl.plan import timeutil

_NOTHING = GroupDay()


class Collector:
    """Counts a dry run's figures: attach it to the engine before the run and let the dry run's
    loop tell it of goal events (`judge`), then call `figures` once the run has ended."""

    def __init__(self, zone: str, attribution: lang.Attribution = lang.Attribution.LAST_TOUCH) -> None:
        self.zone = zone
        self.attribution = attribution
        self._goals: Goals | None = None
        self._action_days = Days(timeutil.zone(zone))
        self._tally: EventTally | None = None  # the engine's (see `attach`)
        self._actions: ActionCounts | None = None  # the engine's sink (see `attach`)
        self._flows = FlowCounts()
        self._engine: Engine | None = None
        self.judge: Callable[[Event], None] | None = None  # see `attach`
        self.goal_kinds: frozenset[str] = frozenset()

    def attach(self, engine: Engine) -> None:
        """Watch `engine` from now on (a tally of the events it takes in, a sink for its actions,
        a watch on its flows)."""
        self._engine = engine
        tz = timeutil.zone(self.zone)
        # The events from the run's start on (history before it is passed over), as the engine
        # takes them in.
        engine.tally = self._tally = EventTally(engine.now, tz, NO_GROUP)
        # The goals hold the engine by a proxy, the sink by a weak reference: the engine holds both
        # (its sink, its flow watch), this collector holds it (`sopdsl.figures.acted` says why).
        proxy = weakref.proxy(engine)
        goals = self._goals = Goals(proxy, self.attribution, tz)
        actions = self._actions = ActionCounts(engine, self._action_days, goals)
        # Connected whatever the first plan has: a split loaded by a later reload counts its arms
        # too, as the live figures do.
        self._flows.assigned = actions.assigned
        if goals.kinds:
            # A goal's event is judged once the engine has taken it in: the timers before it have
            # run by then, so the splits and sends before it are known.
            self.judge, self.goal_kinds = goals.event, frozenset(goals.kinds)
        engine.sinks.append(actions.count)
        engine.watch = self._flows

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
        assert self._tally is not None and self._actions is not None, "attached"
        days = _span(self._tally.first, engine.now, timeutil.zone(self.zone))
        names = {g.id: g.name for g in engine.groups.values()}
        events = {**self._tally.settled, **self._tally.day_counts()}
        counted, done = self._actions.settled()
        # Each group's day once (100k x 90: 22,500 of them), kept by group: the span's days are
        # then looked up by their label, not by a (group, day) key made and hashed for each.
        cells: dict[str, dict[str, GroupDay]] = {}
        for key, (posters, messages, joins, leaves, orders, buyers, amount) in events.items():
            deliveries, reached, removed = done.get(key, NO_ACTS)
            group, day = key
            cells.setdefault(group, {})[day] = GroupDay(
                deliveries, reached, posters, messages, joins, leaves, removed, orders, buyers, amount
            )
        for (group, day), (deliveries, reached, removed) in done.items():
            mine = cells.setdefault(group, {})
            if day not in mine:
                mine[day] = GroupDay(deliveries, reached, 0, 0, 0, 0, removed, 0, 0, 0)
        groups: dict[str, dict[str, GroupDay]] = {}
        for group in [*names, *sorted(cells.keys() - names.keys())]:
            mine = cells.get(group, {})
            groups[group] = {day: mine.get(day, _NOTHING) for day in days}
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
