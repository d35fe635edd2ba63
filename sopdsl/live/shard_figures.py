"""A shard's engine watched for the live per-playbook figures (see `sopdsl.live.store_figures`).

The watcher sits on the engine's public hooks (a sink, the flow watch) as the dry run's collector
does, and counts only while the shard applies entries the store has not applied yet (`begin` to
`end`): replaying the journal after a restart counts nothing again. What it counts goes into the
transaction that stores those entries' actions (`Batch.figures`), so each applied entry is
counted once, whatever kills the process. The sums are the dry run's per-playbook figures; goal
conversions and experiment arms are kept as facts and worked out by `sopdsl.figures.goals` when a
report is asked for (`sopdsl.figures.stored`).
"""

from __future__ import annotations

from typing import Any

from sopdsl import lang
from sopdsl.engine.actions import Action
from sopdsl.engine.engine import Engine
from sopdsl.engine.events import Event
from sopdsl.engine.state import Flow
from sopdsl.figures.goals import Goals
from sopdsl.live.store_figures import SLOT, PlaybookTally, met_key
from sopdsl.plan import CompiledPlaybook, timeutil

_DIRECT = frozenset({"member", "referrer"})  # targets whose action names the member it reaches


class _Flows:
    """The engine's flow watch (`FlowWatch`): flows begun and done, counted into the tally by the
    slot each flow began in (so a range of days counts the flows begun in it: completed, exited,
    or running still). Not a `FlowCounts`, which is compiled: an interpreted class cannot
    subclass a compiled one."""

    def __init__(self, watcher: ShardFigures) -> None:
        self.watcher = watcher

    def flow_begun(self, pb: CompiledPlaybook, flow: Flow, now: int) -> None:
        self.watcher.add(pb.name, flow.started, "flows:started")

    def flow_armed(self, pb: CompiledPlaybook, flow: Flow, now: int) -> None:
        if flow.arm is not None and flow.member is not None:
            self.watcher.assigned(pb.name, flow.member, flow.arm, now)

    def flow_ended(self, pb: CompiledPlaybook, flow: Flow, now: int) -> None:
        self.watcher.add(pb.name, flow.started, "flows:completed")


class ShardFigures:
    """Counts what a shard's engine decides while it applies new entries."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.tally: PlaybookTally | None = None  # set while counting (`begin` to `end`)
        self.flows = _Flows(self)
        self._goals: Goals | None = None
        engine.sinks.append(self.action)
        engine.watch = self.flows

    def begin(self) -> None:
        """Count from now on (the entries about to be applied are new)."""
        self.tally = PlaybookTally()

    def end(self) -> PlaybookTally | None:
        """Stop counting; what was counted since `begin`."""
        tally, self.tally = self.tally, None
        return tally

    def add(self, playbook: str, time: int, figure: str) -> None:
        """One more of a per-playbook figure, in the slot of `time`."""
        if self.tally is not None:
            self.tally.sums[(playbook, time // SLOT, figure)] += 1

    def assigned(self, playbook: str, member: str, arm: str, time: int) -> None:
        """A split put `member` in `arm` (told at each step of the flow: the first is kept)."""
        if self.tally is not None:
            self.tally.arms.setdefault((playbook, member), (arm, time))

    @property
    def goals(self) -> Goals:
        """The goals of the plan the engine runs now (judged against its members)."""
        engine = self.engine
        if self._goals is None or self._goals.plan is not engine.plan:
            zone = timeutil.zone(engine.plan.declarations.timezone)
            self._goals = Goals(engine, lang.Attribution.LAST_TOUCH, zone)
        return self._goals

    def action(self, action: Action) -> None:
        """The engine's sink: an action decided."""
        tally = self.tally
        if tally is None:
            return
        tally.sums[(action.playbook, action.time // SLOT, f"actions:{action.kind}:{action.status}")] += 1
        if action.status != "done" or action.kind != "send" or action.target == "operator":
            return
        goals = self.goals
        if action.playbook not in goals.with_goals and action.playbook not in goals.arms:
            return
        reached: Any = ()
        if action.target in _DIRECT:
            if action.member is not None:
                reached = (action.member,)
        elif action.group is not None and (group := self.engine.groups.get(action.group)) is not None:
            reached = sorted(group.members)  # a post to the group reaches everyone in it now
        arm = action.detail.get("arm")
        for member in reached:
            tally.touches.add((action.playbook, member, action.time, arm if isinstance(arm, str) else ""))

    def event(self, body: dict[str, Any]) -> None:
        """An event entry the engine has just taken in: the goals it meets, if any."""
        tally = self.tally
        if tally is None or body.get("op") != "event" or not body.get("member"):
            return
        goals = self.goals
        if body.get("kind") not in goals.kinds:
            return
        event = Event(
            body["kind"],
            int(body["time"]),
            member=body.get("member"),
            group=body.get("group") or None,
            data=dict(body.get("data") or {}),
            name=body.get("name"),
        )
        met = goals.met(event)
        if met:
            key = met_key((g.playbook, g.goal.name) for g in met)
            tally.hit(str(event.member), event.time, key, event.data.get("amount", 0))
