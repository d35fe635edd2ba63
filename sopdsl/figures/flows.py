"""Flows started and completed per playbook, told by the engine's flow watch (`Engine.watch`, its
public hook: no engine state is read), for the dry run's collector and the live store's counts
alike. The watch is told three times a flow at most, where a step hook is told at every step."""

from __future__ import annotations

from collections.abc import Callable

from sopdsl.engine.state import Flow
from sopdsl.plan import CompiledPlaybook

Assigned = Callable[[str, str, str, int], None]  # playbook, member, arm, time


class FlowCounts:
    """Counts flows as they begin and end (the engine's `FlowWatch`); `started` and `completed` by
    playbook name."""

    __slots__ = ("assigned", "completed", "started")

    def __init__(self, assigned: Assigned | None = None) -> None:
        self.started: dict[str, int] = {}
        self.completed: dict[str, int] = {}
        self.assigned = assigned  # told when a split puts a member in an arm

    def flow_begun(self, pb: CompiledPlaybook, flow: Flow, now: int) -> None:
        """`FlowWatch`: a new flow of `pb` (counted by playbook; `sopdsl.live` counts by its
        start's slot too)."""
        name = pb.name  # a pydantic model's attribute, read the slow way: once
        try:
            self.started[name] += 1
        except KeyError:
            self.started[name] = 1

    def flow_armed(self, pb: CompiledPlaybook, flow: Flow, now: int) -> None:
        """`FlowWatch`: a split put the flow's member in an arm."""
        if self.assigned is not None and flow.arm is not None and flow.member is not None:
            self.assigned(pb.name, flow.member, flow.arm, now)

    def flow_ended(self, pb: CompiledPlaybook, flow: Flow, now: int) -> None:
        """`FlowWatch`: a flow of `pb` went past its last step or reached a `stop`."""
        name = pb.name
        try:
            self.completed[name] += 1
        except KeyError:
            self.completed[name] = 1
