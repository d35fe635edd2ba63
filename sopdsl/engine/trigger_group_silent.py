"""`on group silent for 3 days`: a deadline per group, re-checked against the group's last message
when due, then looked at again a day later (a silence fires once until someone posts)."""

from __future__ import annotations

from typing import Final

from sopdsl import lang
from sopdsl.engine.parts import _Compiled, _Parts
from sopdsl.engine.state import GroupState
from sopdsl.engine.timers import GroupSilent
from sopdsl.engine.trigger_base import TriggerHandler
from sopdsl.plan import timeutil


class GroupSilentHandler(TriggerHandler[lang.OnGroupSilent]):
    """A group's silence: armed per group in scope, re-checked when due."""

    def arm_group(
        self, e: _Parts, c: _Compiled, t_index: int, trigger: lang.OnGroupSilent, group: GroupState
    ) -> None:
        since = group.last_message_at or e.now
        due = timeutil.add(since, trigger.duration, group.zone)
        e._push(due, c.index, "", GroupSilent(t_index, group.id), group.id)

    def due(self, e: _Parts, c: _Compiled, timer: GroupSilent, due: int) -> None:
        """The group's deadline came: re-armed if someone posted since, else the flow starts."""
        group = e.groups.get(timer.group)
        if group is None or group.dissolved:
            return
        trigger = c.playbook.triggers[timer.trigger]
        assert isinstance(trigger, lang.OnGroupSilent)
        deadline = timeutil.add(group.last_message_at or e.start_time, trigger.duration, group.zone)
        if deadline > due:
            e._push(deadline, c.index, "", timer, group.id)
            return
        key = ("silent", c.index, timer.trigger, group.id, group.last_message_at)
        if key not in e.fired:
            e.fired.add(key)
            e._start_group_flow(c, group, trigger.loc, due)
        # Re-armed by the next message in the group.
        e._push(due + 86400, c.index, "", timer, group.id)


GROUP_SILENT: Final = GroupSilentHandler()
