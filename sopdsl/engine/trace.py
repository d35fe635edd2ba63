"""Decisions the engine can report while it runs, for `sopdsl why`: each time a trigger fires for
a member, or a calendar entry `for each member` comes due for one, whether the playbook started
and, if not, what stopped it.

The engine calls a tracer only when one is set, so an untraced run pays one `is None` test per
trigger firing, and one per calendar entry's firing in a group (not per member). The tracer runs at the instant of the decision and may read the engine's state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sopdsl.engine.state import Flow, GroupState, MemberState
from sopdsl.plan import CompiledPlaybook

# What stopped a playbook for a member, or that it started.
STARTED = "started"
OUT_OF_SCOPE = "out of scope"
INACTIVE = "outside its active window"
RAN_ONCE = "already ran once for this member"
COOLING_DOWN = "in its cooldown"
GUARD_FALSE = "its `when` condition was false"
GUARD_FAILED = "its `when` condition failed on this member's data (a failed `when` record says why)"
SAME_INSTANT = "already started at this instant by another of its triggers"


@dataclass(frozen=True, slots=True)
class Decision:
    """A trigger of `playbook` fired for `member` at `time`; `verdict` says what happened."""

    time: int
    playbook: CompiledPlaybook
    member: MemberState
    group: GroupState | None
    trigger: str
    event: dict[str, Any]
    zone: ZoneInfo
    verdict: str
    since: int | None = None  # when the member last entered, for RAN_ONCE and COOLING_DOWN
    referrer: MemberState | None = None  # the member who invited this one, for `referrer.F` tests
    stock: Callable[[str], int | None] | None = None  # coupons left now, for `coupon X in stock` tests


Tracer = Callable[[Decision], None]

# Told, before a flow runs each instruction and where it ends, which playbook (the plan's compiled
# playbook of the version it runs), which flow (its `entry` and `pc` say where it is) and the
# engine's time: for the dry run's coverage, and for `why` to tell what a wait did and when.
# Called only when set, like a tracer.
StepHook = Callable[[CompiledPlaybook, Flow, int], None]


class FlowWatch(Protocol):
    """Told when a flow begins, when a split puts its member in an arm, and when it ends past its
    last step or at a `stop` (not when a kick, a leave or a failed test ends it): the figures'
    flow counts, for three calls a flow where a step hook costs one a step."""

    def flow_begun(self, pb: CompiledPlaybook, flow: Flow, now: int) -> None:
        """A new flow of `pb`, before its first step."""

    def flow_armed(self, pb: CompiledPlaybook, flow: Flow, now: int) -> None:
        """A split put the flow's member in `flow.arm`."""

    def flow_ended(self, pb: CompiledPlaybook, flow: Flow, now: int) -> None:
        """The flow went past its last step or reached a `stop`."""
