"""Flows started and completed per playbook, told by the engine's step hook (its public hook: no
engine state is read), for the dry run's collector and the live store's counts alike.

The hook is told of every instruction a flow runs, so the common case (a step inside the code,
of a flow seen before) costs an id comparison, one lookup and a set test.
"""

from __future__ import annotations

from collections.abc import Callable

from sopdsl.engine.state import Flow
from sopdsl.plan import CompiledPlaybook

Assigned = Callable[[str, str, str, int], None]  # playbook, member, arm, time


class FlowCounts:
    """Counts flows as they begin and end; `started` and `completed` by playbook name."""

    __slots__ = ("_at_stop", "_ends", "assigned", "completed", "newest", "started")

    def __init__(self, newest: int = 0, assigned: Assigned | None = None) -> None:
        self.started: dict[str, int] = {}
        self.completed: dict[str, int] = {}
        self.newest = newest  # the highest flow id seen: flow ids only grow, so a higher one is new
        self.assigned = assigned  # told of each step of a flow in an arm (its split's choice)
        self._at_stop = 0  # the flow told of at a `stop` once: it ends when told again
        self._ends: dict[int, tuple[CompiledPlaybook, list[tuple[frozenset[int], int]]]] = {}

    def step(self, pb: CompiledPlaybook, flow: Flow, now: int) -> None:
        """The engine's step hook (`Engine.on_step`)."""
        if flow.id > self.newest:
            self.newest = flow.id
            self.begun(pb, flow)
        if flow.arm is not None and self.assigned is not None and flow.member is not None:
            self.assigned(pb.name, flow.member, flow.arm, now)
        # By the playbook's index in the engine (a plain int, where `pb.name` is a pydantic
        # model's attribute, which the interpreter cannot read by its fast path).
        ends = self._ends.get(flow.playbook)
        if ends is None or ends[0] is not pb:  # a playbook not seen yet, or of another plan version
            ends = self._ends[flow.playbook] = (pb, _ends(pb))
        positions, last = ends[1][flow.entry]
        if flow.pc in positions:
            self._at_end(pb, flow, last)

    def _at_end(self, pb: CompiledPlaybook, flow: Flow, last: int) -> None:
        # The hook is told once more where a flow ends: past its last step, or at a `stop` it
        # was told of just before (nothing runs in between).
        if flow.pc >= last:
            self.done(pb, flow)
        elif self._at_stop == flow.id:
            self.done(pb, flow)
            self._at_stop = 0
        else:
            self._at_stop = flow.id

    def begun(self, pb: CompiledPlaybook, flow: Flow) -> None:
        """A flow of `pb` began (counted by playbook; `sopdsl.live` counts by its start's slot too)."""
        self.started[pb.name] = self.started.get(pb.name, 0) + 1

    def done(self, pb: CompiledPlaybook, flow: Flow) -> None:
        """A flow of `pb` went past its last step or reached a `stop`."""
        self.completed[pb.name] = self.completed.get(pb.name, 0) + 1


def _ends(pb: CompiledPlaybook) -> list[tuple[frozenset[int], int]]:
    """Where a flow of `pb` may end, by entry (the playbook's own code last, at index -1, as its
    entry is -1): past the last instruction, or at a `stop`; and the position past the last."""
    return [
        (frozenset([len(code), *(pc for pc, instr in enumerate(code) if instr.op == "stop")]), len(code))
        for code in [*(entry.code for entry in pb.schedule), pb.code]
    ]
