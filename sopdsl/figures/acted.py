"""The figures' sink for an engine's actions (`ActionCounts`), apart from the `Collector`.

The engine holds its sinks and its flow watch, and a collector holds its engine (it is asked for
figures after the run, whoever else keeps the engine): a sink that held the collector, or anything
holding the engine, would close a reference cycle, and the engine's whole state would then wait
for the cyclic garbage collector to traverse it (at 10k members x 90 days, 44 M instructions in
the collection at exit, about 1% of the run) instead of being freed when the last reference goes.
So this sink reaches the engine through a weak reference, and the goals it tells of sends hold
the engine by a proxy (`Collector.attach`).
"""

from __future__ import annotations

import weakref
from collections import Counter
from collections.abc import Iterable

from sopdsl.engine.actions import Action
from sopdsl.engine.engine import Engine
from sopdsl.engine.tally import Days
from sopdsl.figures.goals import Goals
from sopdsl.figures.model import NO_GROUP

_DIRECT = frozenset({"member", "referrer"})  # targets whose action names the member it reaches
NO_ACTS = (0, 0, 0)  # deliveries, reached, removed (of a group's day without any)


class _Acted:
    """One group's counts of done actions on one day, while that day's actions come (a plain
    slotted class: a dataclass compiles its methods' source at import)."""

    __slots__ = ("deliveries", "reached", "removed")

    def __init__(self) -> None:
        self.deliveries = 0
        self.reached: set[str] = set()
        self.removed = 0


class ActionCounts:
    """Counts each action as it comes: by day, playbook, kind and status, and what a done send or
    kick adds to its group's day (an action is not kept: holding a day's worth costs more than
    counting each). Actions come in time order (the engine's clock), so a day's counts are
    settled when the next day's first action comes."""

    __slots__ = ("_acted", "_acts", "_days", "_end", "_engine", "counted", "done", "goaled", "goals")

    def __init__(self, engine: Engine, days: Days, goals: Goals | None) -> None:
        self._engine = weakref.ref(engine)
        self._days = days  # the current action day's bounds and label
        self._end = 0  # where the current action day ends
        self._acts: dict[str, dict[str, dict[str, int]]] = {}  # playbook → kind → status → count
        self._acted: dict[str | None, _Acted] = {}  # group → done sends and kicks
        self.counted: Counter[tuple[str, str, str, str]] = Counter()  # (day, playbook, kind, status)
        self.done: dict[tuple[str, str], tuple[int, int, int]] = {}  # (group, day) → acted counts
        self.goals = goals
        # Told of sends only with goals or arms (arms come only through `assigned`).
        self.goaled = goals is not None and bool(goals.with_goals or goals.arms)

    def count(self, action: Action) -> None:
        """The engine's sink: count `action`."""
        time = action.time
        if time >= self._end:
            self._next_day(time)
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
                    if self.goaled:
                        self._touched(action, (member,))
            elif group is not None and (engine := self._engine()) is not None:
                # A post to the group reaches everyone in it at the time.
                if (found := engine.groups.get(group)) is not None:
                    if cell.reached:
                        cell.reached.update(found.members)
                    else:  # the day's first reach in the group (the common case): a copy, no lookups
                        cell.reached = found.members.copy()
                    if self.goaled:
                        self._touched(action, found.members)
        elif kind == "kick":
            self._cell(action.group).removed += 1

    def _touched(self, action: Action, reached: Iterable[str]) -> None:
        # Goals and arms as they are now (a split's arms are added as members are put in them).
        goals = self.goals
        if goals is not None and (action.playbook in goals.with_goals or action.playbook in goals.arms):
            arm = action.detail.get("arm")
            for member in reached:
                goals.touched(action.playbook, member, action.time, arm)

    def _cell(self, group: str | None) -> _Acted:
        cell = self._acted.get(group)
        if cell is None:
            cell = self._acted[group] = _Acted()
        return cell

    def _next_day(self, time: int) -> None:
        """Settle the current action day's counts and start the day of `time`."""
        days = self._days
        if self._acts:
            _settle(days.label, self._acts, self._acted, self.counted, self.done)
        self._acts, self._acted = {}, {}
        days.of(time)
        # Never earlier than the last action's (the engine's clock): only the day's end is compared.
        assert time >= days.lo, "actions come in time order"
        self._end = days.hi

    def assigned(self, playbook: str, member: str, arm: str, time: int) -> None:
        """A split put `member` in `arm` (the flow watch's `assigned`)."""
        # Before the arm's sends: they are then told to the goals, which count them as touches.
        if self.goals is not None:
            self.goals.assigned(playbook, member, arm, time)
            self.goaled = True

    def settled(
        self,
    ) -> tuple[Counter[tuple[str, str, str, str]], dict[tuple[str, str], tuple[int, int, int]]]:
        """The counts so far, the current day's included (settled in copies: it goes on)."""
        counted, done = self.counted.copy(), dict(self.done)
        _settle(self._days.label, self._acts, self._acted, counted, done)
        return counted, done


def _settle(
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
        before = done.get(key, NO_ACTS)  # met again only if the clock went back (it does not)
        done[key] = (
            before[0] + cell.deliveries,
            before[1] + len(cell.reached),
            before[2] + cell.removed,
        )
