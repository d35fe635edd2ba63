"""Goal conversions and experiment arms, observed from outside the engine.

A playbook's goal (`goal "下单" = member orders within 7 days`) converts when the member does the
event within that long of being *touched* by the playbook: a send done to them, or to a group they
are in. When several playbooks with a matching goal touched the member in time, the conversion
counts for one of them, by the attribution rule (`lang.Attribution`, the project file's
`[figures] attribution`): the last to touch them, or the first. It counts for the arm of the split
the touch came from.

An experiment is judged apart from attribution, by assignment (intention to treat): a member is in
an arm from the moment the split put them there, whether or not anything reached them (the control
arm's members never are), and converts when they do a goal's event within its time of that moment.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from sopdsl import lang
from sopdsl.engine.conditions import Test, compile_cond
from sopdsl.engine.engine import Engine
from sopdsl.engine.events import Event
from sopdsl.figures.model import number
from sopdsl.plan import CompiledPlaybook, Plan, event_key, timeutil

_TAGGED = {"tag": "tagged", "untag": "untagged"}


def key_of(event: Event) -> str:
    """An event's index key, as `plan.event_key` gives a pattern's (the engine's own spelling)."""
    if event.kind in _TAGGED:
        return f"{_TAGGED[event.kind]}:{event.name}"
    if event.kind == "custom":
        return f"custom:{event.name}"
    return event.kind


def wire_kind(pattern: lang.EventPattern) -> str:
    """The wire kind (`Event.kind`) of the events a pattern matches."""
    key = event_key(pattern)
    kind = key.split(":", 1)[0]
    return {"tagged": "tag", "untagged": "untag"}.get(kind, kind)


# Plain slotted classes, not dataclasses: generating a dataclass's methods compiles source at
# import, which cost a 10k-member report run more than counting its goals does.


class _Goal:
    """One goal of a playbook as the run judges it (never changed once made)."""

    __slots__ = ("goal", "playbook", "seconds", "test")

    def __init__(self, playbook: str, goal: lang.Goal, test: Test | None, seconds: int) -> None:
        self.playbook = playbook
        self.goal = goal
        self.test = test
        self.seconds = seconds  # `within` in minutes or hours, exact; else -1: by the calendar


class GoalCount:
    """One goal's conversions so far: events, distinct members, their amounts; per arm too."""

    __slots__ = ("amount", "arms", "conversions", "members")

    def __init__(self) -> None:
        self.conversions = 0
        self.members: set[str] = set()
        self.amount: float = 0
        self.arms: dict[str, set[str]] = {}


class ArmCount:
    """One arm of an experiment: when each member was put in it, who was reached, who converted
    (per goal)."""

    __slots__ = ("assigned", "control", "converted", "reached")

    def __init__(self, control: bool = False) -> None:
        self.control = control
        self.assigned: dict[str, int] = {}
        self.reached: set[str] = set()
        self.converted: dict[str, set[str]] = {}


class Goals:
    """The goal and experiment counts of a run (see the module's docstring)."""

    def __init__(
        self, engine: Engine | None, rule: lang.Attribution, tz: ZoneInfo, plan: Plan | None = None
    ) -> None:
        """Goals of `engine`'s plan, judged against its members; or, without an engine, of
        `plan`, counting conversions already judged (`convert`: the live report's)."""
        self.engine = engine
        self.rule = rule
        self.tz = tz
        self.since = 0  # conversions and assignments before this instant are not counted
        members = engine.members if engine is not None else {}
        plan = engine.plan if engine is not None else plan
        assert plan is not None, "goals need an engine or a plan"
        self.plan = plan
        self.by_key: dict[str, list[_Goal]] = {}
        self.kinds: set[str] = set()
        self.longest = 0
        self.counts: dict[tuple[str, str], GoalCount] = {}
        self.with_goals: set[str] = set()
        for pb in plan.playbooks:
            for goal in pb.goals:
                test = compile_cond(goal.cond, members.get) if goal.cond is not None else None
                exact = goal.within.unit in (lang.Unit.MINUTE, lang.Unit.HOUR)
                seconds = goal.within.amount * _SECONDS[goal.within.unit] if exact else -1
                self.by_key.setdefault(event_key(goal.pattern), []).append(
                    _Goal(pb.name, goal, test, seconds)
                )
                self.kinds.add(wire_kind(goal.pattern))
                self.counts[(pb.name, goal.name)] = GoalCount()
                self.with_goals.add(pb.name)
                self.longest = max(self.longest, _reach(goal))
        # member → playbook → the times it touched them (within the longest goal's time), with the arm
        self.touches: dict[str, dict[str, list[tuple[int, str | None]]]] = {}
        self.arms: dict[str, dict[str, ArmCount]] = {}  # playbook → arm → counts
        self.arm_of: dict[tuple[str, str], str] = {}  # (playbook, member) → arm, for good
        self.split_arms: dict[str, list[tuple[str, float, bool]]] = {}
        for pb in plan.playbooks:
            self._learn_split(pb)

    def _learn_split(self, pb: CompiledPlaybook) -> None:
        """Know the arms of `pb`'s split, if it has one: their shares, and which is the control."""
        arms = [arm for code in _codes(pb) for instr in code for arm in instr.arms]
        if arms:
            self.split_arms[pb.name] = [(a.name, a.percent, a.control) for a in arms]
            known = self.arms.setdefault(pb.name, {})
            for a in arms:
                known.setdefault(a.name, ArmCount(control=a.control))

    # ---- what the engine decides ----

    def touched(self, playbook: str, member: str, time: int, arm: str | None) -> None:
        """A send of `playbook` reached `member` at `time` (from `arm` of its split, if any)."""
        if arm is not None and (count := self.arms.get(playbook, {}).get(arm)) is not None:
            count.reached.add(member)
        if playbook not in self.with_goals:
            return
        mine = self.touches.setdefault(member, {}).setdefault(playbook, [])
        if mine and time - mine[0][0] > self.longest:
            mine[:] = [t for t in mine if time - t[0] <= self.longest]
        mine.append((time, arm))

    def assigned(self, playbook: str, member: str, arm: str, time: int) -> None:
        """The split of `playbook` put `member` in `arm` (the first time counts: arms are for good)."""
        if (playbook, member) in self.arm_of:
            return
        self.arm_of[(playbook, member)] = arm
        if not self.split_arms.get(playbook) and self.engine is not None:
            # A split the run's first plan did not have: a version loaded since brought it.
            for pb in self.engine.plan.playbooks:
                if pb.name == playbook:
                    self._learn_split(pb)
        count = self.arms.setdefault(playbook, {}).setdefault(arm, ArmCount())
        self.split_arms.setdefault(playbook, [])
        if time >= self.since:
            count.assigned[member] = time

    def figures(self, playbook: str) -> dict[str, dict[str, Any]]:
        """A playbook's goals: conversions, the members converted, their amount, members per arm."""
        return {
            goal: {
                "conversions": count.conversions,
                "converted": len(count.members),
                "amount": number(count.amount),
                "arms": {arm: len(members) for arm, members in sorted(count.arms.items())},
            }
            for (name, goal), count in self.counts.items()
            if name == playbook
        }

    # ---- what members do ----

    def event(self, event: Event) -> None:
        """Count the conversions an event makes, once the engine has taken it in (its condition
        sees the member as the event left them)."""
        met = self.met(event)
        if met and event.member is not None:
            self.convert(met, event.member, event.time, event.data.get("amount", 0))

    def met(self, event: Event) -> list[_Goal]:
        """The goals an event meets, judged against the engine's state now (after the event)."""
        goals = self.by_key.get(key_of(event))
        member = event.member
        if not goals or member is None or self.engine is None:
            return []
        state = self.engine.members.get(member)
        group = self.engine.groups.get(event.group) if event.group else None
        time = event.time
        return [g for g in goals if g.test is None or _holds(g.test, state, group, event.data, time, self.tz)]

    def goal(self, playbook: str, name: str) -> _Goal | None:
        """A goal of the plan by its playbook and name."""
        for goals in self.by_key.values():
            for g in goals:
                if g.playbook == playbook and g.goal.name == name:
                    return g
        return None

    def convert(self, met: list[_Goal], member: str, time: int, amount: Any, times: int = 1) -> None:
        """Count an event of `member` at `time` that met the goals `met` (`times` such events,
        with `amount` their orders' sum): for the experiments, and for the playbook it is
        attributed to."""
        if time < self.since:
            return
        self._experiments(met, member, time)
        self._attribute(met, member, time, amount, times)

    def _experiments(self, met: list[_Goal], member: str, time: int) -> None:
        for g in met:
            arm = self.arm_of.get((g.playbook, member))
            if arm is None:
                continue
            count = self.arms[g.playbook][arm]
            since = count.assigned.get(member)
            if since is not None and self._in_time(g, since, time):
                count.converted.setdefault(g.goal.name, set()).add(member)

    def _attribute(self, met: list[_Goal], member: str, time: int, amount: Any, times: int) -> None:
        touches = self.touches.get(member)
        if not touches:
            return
        best: tuple[int, str, str | None] | None = None  # (touch time, playbook, arm)
        for g in met:
            for at, arm in touches.get(g.playbook, ()):
                if not self._in_time(g, at, time):
                    continue
                better = (
                    best is None
                    or (self.rule is lang.Attribution.LAST_TOUCH and at >= best[0])
                    or (self.rule is lang.Attribution.FIRST_TOUCH and at < best[0])
                )
                if better:
                    best = (at, g.playbook, arm)
        if best is None:
            return
        _, playbook, arm = best
        for g in met:
            if g.playbook != playbook:
                continue
            count = self.counts[(playbook, g.goal.name)]
            count.conversions += times
            count.members.add(member)
            if isinstance(amount, int | float) and not isinstance(amount, bool):
                count.amount += amount
            if arm is not None:
                count.arms.setdefault(arm, set()).add(member)

    def _in_time(self, g: _Goal, since: int, time: int) -> bool:
        # Strictly after: what the event itself set off (a split, a send) is no cause of it.
        if time <= since:
            return False
        if g.seconds >= 0:
            return time - since <= g.seconds
        return time <= timeutil.add(since, g.goal.within, self.tz)  # days and longer keep the wall time


_SECONDS = {
    lang.Unit.MINUTE: 60,
    lang.Unit.HOUR: 3600,
    lang.Unit.DAY: 86400,
    lang.Unit.WEEK: 7 * 86400,
    lang.Unit.MONTH: 31 * 86400,
    lang.Unit.YEAR: 366 * 86400,
}


def _reach(goal: lang.Goal) -> int:
    # Touches older than the longest goal's time are forgotten (a day a clock change lengthens is
    # covered by the hour added to each).
    return goal.within.amount * (_SECONDS[goal.within.unit] + 3600)


def longest_reach(plan: Plan) -> int:
    """How long (seconds) a touch can still convert, over the plan's goals: older touches are
    forgotten, here and by the live store's purge (0: no goals)."""
    return max((_reach(goal) for pb in plan.playbooks for goal in pb.goals), default=0)


def _codes(pb: Any) -> list[Any]:
    return [pb.code, *(entry.code for entry in pb.schedule)]


def _holds(test: Test, *args: Any) -> bool:
    """A goal's condition; one the member's data cannot answer (a wrong type) does not hold."""
    try:
        return test(*args)
    except (TypeError, ValueError, ArithmeticError):
        return False


def experiment_counts(goals: Goals) -> list[dict[str, Any]]:
    """Each split playbook's arms, per goal of it (or once, with no conversions, if it has none):
    members assigned, reached and converted (JSON-ready; `report.py` adds the statistics)."""
    shown: list[dict[str, Any]] = []
    for pb in goals.plan.playbooks:
        arms = goals.arms.get(pb.name)
        if arms is None:
            continue
        percent: dict[str, float] = {}
        for name, share, _ in goals.split_arms.get(pb.name, ()):
            percent.setdefault(name, share)
        shown.extend(
            {
                "playbook": pb.name,
                "goal": goal.name if goal is not None else None,
                "within": f"{goal.within.amount} {goal.within.unit.value}s" if goal is not None else None,
                "arms": [
                    {
                        "arm": name,
                        "control": count.control,
                        "percent": number(percent.get(name, 0)),
                        "members": len(count.assigned),
                        "reached": len(count.reached & count.assigned.keys()),
                        "converted": len(count.converted.get(goal.name, ())) if goal is not None else 0,
                    }
                    for name, count in arms.items()
                ],
            }
            for goal in (pb.goals or (None,))
        )
    return shown
