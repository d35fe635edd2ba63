"""`on member.points reaches 100` and `on group size reaches 200`: a count crossing a value, the
first time only; nothing to arm."""

from __future__ import annotations

from typing import Final

from sopdsl import lang
from sopdsl.engine.parts import _Compiled, _Parts
from sopdsl.engine.state import GroupState, MemberState
from sopdsl.engine.trigger_base import TriggerHandler


class ThresholdHandler(TriggerHandler[lang.OnThreshold]):
    """A member counter reaching a value: fired by the counter's change, once per member."""

    def counted(self, e: _Parts, member: MemberState, counter: str, before: float, after: float) -> None:
        """A member's counter went from `before` to `after`: start what it reaches."""
        for c, t_index, trigger in e._triggers.get("threshold", ()):
            key = ("threshold", c.index, t_index, member.id)
            if trigger.counter == counter and before < trigger.threshold <= after and key not in e.fired:
                # "reaches" fires the first time only, even if the counter falls and climbs again.
                e.fired.add(key)
                e._start_flow(c, member, e._member_group(c, member), trigger.loc, {}, e.now)


class GroupSizeHandler(TriggerHandler[lang.OnGroupSize]):
    """A group's size reaching a value: fired by a join, once per group, for its owner."""

    def at_start(
        self, e: _Parts, c: _Compiled, t_index: int, trigger: lang.OnGroupSize, group: GroupState
    ) -> None:
        if len(group.members) >= trigger.threshold:
            # Reached before the plan took effect: "reaches" never fires for it.
            e.fired.add(("size", c.index, t_index, group.id))

    def joined(self, e: _Parts, group: GroupState, before: int, now: int) -> None:
        """A member joined a group that had `before` members: start what its size reaches."""
        for c, t_index, trigger in e._triggers.get("group_size", ()):
            key = ("size", c.index, t_index, group.id)
            if (
                before < trigger.threshold <= len(group.members)
                and key not in e.fired
                and e._in_scope(c, group.id)
            ):
                e.fired.add(key)
                owner = e.members.get(group.owner or "")
                if owner is not None:
                    e._start_flow(c, owner, group.id, trigger.loc, {}, now, check_scope=False)
                else:
                    # No owner known: the playbook still runs for the group (tasks for its operator).
                    e._start_group_flow(c, group, trigger.loc, now)


THRESHOLD: Final = ThresholdHandler()
GROUP_SIZE: Final = GroupSizeHandler()
