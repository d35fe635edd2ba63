"""`on member.birthday - 3 days at 10:00` (once) and `on anniversary of member.joined_at at 10:00`
(every year): a timer per member at the local time their date attribute names."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Final

from sopdsl import lang
from sopdsl.engine.parts import _Compiled, _Parts
from sopdsl.engine.state import MemberState
from sopdsl.engine.timers import DateDue, date_due
from sopdsl.engine.trigger_base import TriggerHandler
from sopdsl.plan import timeutil

DateTrigger = lang.OnDateOffset | lang.OnAnniversary


class DateHandler(TriggerHandler[DateTrigger]):
    """A date trigger: armed for each member in scope; an anniversary re-arms for the next year."""

    def arm_member(
        self,
        e: _Parts,
        c: _Compiled,
        t_index: int,
        trigger: DateTrigger,
        member: MemberState,
        since: int,
        since_in: Mapping[str, int] | None,
    ) -> None:
        if e._member_in_scope(c, member):
            self.arm(e, c, t_index, trigger, member)

    def arm(self, e: _Parts, c: _Compiled, t_index: int, trigger: DateTrigger, member: MemberState) -> None:
        """Set the member's next firing after now, if their attribute names a date."""
        due = self.next_after(e, trigger, member, e.now)
        if due is not None:
            e._push(due, c.index, member.id, date_due(t_index))

    @staticmethod
    def next_after(e: _Parts, trigger: DateTrigger, member: MemberState, after: int) -> int | None:
        """When the trigger next fires for the member after `after` (None: no date, or passed)."""
        value = member.field_value(trigger.attribute)
        if value is None:
            return None
        if isinstance(value, int):
            day = timeutil.local(value, e.zone).date()
        elif isinstance(value, dt.datetime):
            day = value.date()
        elif isinstance(value, dt.date):
            day = value
        else:
            try:
                day = dt.date.fromisoformat(str(value)[:10])
            except ValueError:
                return None
        if isinstance(trigger, lang.OnDateOffset):
            due = timeutil.resolve(timeutil.date_wall(trigger, day), e.zone)
            return due if due > after else None
        year = timeutil.local(after, e.zone).year
        for offset in range(3):
            try:
                candidate = day.replace(year=year + offset)
            except ValueError:  # 29 February in a common year: celebrate on the 28th
                candidate = dt.date(year + offset, 2, 28)
            due = timeutil.resolve(timeutil.date_wall(trigger, candidate), e.zone)
            if due > after:
                return due
        return None

    def due(self, e: _Parts, c: _Compiled, timer: DateDue, member_id: str, due: int) -> None:
        """The member's date came: the flow starts (and an anniversary waits for next year).
        Nothing happens if a `set` has moved the date since this timer was armed (the new date
        has its own timer), nor for the first of two timers armed for one instant."""
        member = e.members.get(member_id)
        if member is None:
            return
        trigger = c.playbook.triggers[timer.trigger]
        assert isinstance(trigger, lang.OnDateOffset | lang.OnAnniversary)  # a DateDue's trigger
        if self.next_after(e, trigger, member, due - 1) != due:
            return  # armed for an earlier value of the attribute
        following = e.heap[0] if e.heap else None
        if following is not None and following[0] == due and following[2] == member_id:
            if following[1] == c.index and following[5] == timer:
                return  # armed twice for this day (A, then B, then A again): it fires once
        e._start_flow(c, member, e._member_group(c, member), trigger.loc, {}, e.now)
        if isinstance(trigger, lang.OnAnniversary):
            self.arm(e, c, timer.trigger, trigger, member)


DATES: Final = DateHandler()
