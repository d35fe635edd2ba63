"""What a trigger kind's handler does: arm itself for a member or a group, and note what held at
the start. Each kind is a module of its own (`trigger_*.py`), registered in `triggers.py`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Generic, TypeVar

from sopdsl.engine.parts import _Compiled, _Parts
from sopdsl.engine.state import GroupState, MemberState

T = TypeVar("T")


class TriggerHandler(Generic[T]):
    """One kind of trigger. What it does with events and when its timers come due is its own
    (the engine's intake and `_fire` call it by name); here is what the engine asks of every kind."""

    def arm_member(
        self,
        e: _Parts,
        c: _Compiled,
        t_index: int,
        trigger: T,
        member: MemberState,
        since: int,
        since_in: Mapping[str, int] | None,
    ) -> None:
        """Arm the trigger for a member who arrived (or was there at the start) as of `since`;
        `since_in`: where their silence in each group counts from, when not `since`."""

    def arm_group(self, e: _Parts, c: _Compiled, t_index: int, trigger: T, group: GroupState) -> None:
        """Arm the trigger for a group in the playbook's scope (at the start, or met since)."""

    def at_start(self, e: _Parts, c: _Compiled, t_index: int, trigger: T, group: GroupState) -> None:
        """Note what already holds for a group when the plan takes effect (it never fires for that)."""
