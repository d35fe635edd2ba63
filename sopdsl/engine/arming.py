"""Arming: a member's and a group's triggers through their handlers (`triggers.py`), the
calendar entries, and which groups and members a playbook's scope takes in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from zoneinfo import ZoneInfo

from sopdsl import lang
from sopdsl.engine import trace
from sopdsl.engine.parts import _GRACE, _PRIVATE, _Compiled
from sopdsl.engine.rendering import _Rendering
from sopdsl.engine.state import GroupState, MemberState
from sopdsl.engine.timers import CalendarDue
from sopdsl.engine.trigger_dates import DATES
from sopdsl.engine.triggers import HANDLERS, handler_for
from sopdsl.plan import CompiledPlaybook, timeutil

# The trigger kinds that read a date attribute: those the dates' handler handles.
_DATE_KINDS: Final = tuple(kind for kind, handler in HANDLERS.items() if handler is DATES)

# A calendar entry's next firing, by (entry, rule, zone, after) as object ids, with the objects
# kept beside it so an id is never taken for another's: a calendar fires in every group of a
# playbook's scope at one instant, and each asks the same (120,000 instructions to work out).
_NEXT: Final[dict[tuple[int, int, ZoneInfo, int], tuple[Any, Any, int | None]]] = {}
_NEXT_KEPT: Final = 256  # answers kept at most: the last few instants' are the ones asked again


class _Arming(_Rendering):
    """Arming through the trigger handlers, the calendar entries, and scope."""

    __slots__ = ()  # the engine's state is in `_Parts`'s slots

    def _arm_group(self, group: GroupState) -> None:
        """Arm a group's calendar entries and group-level triggers, playbook by playbook."""
        for c in self.live:
            if not self._in_scope(c, group.id):
                continue
            for e_index, entry in enumerate(c.playbook.schedule):
                due = self._next_calendar(entry.when, group.zone, self.now)
                if due is not None:
                    self._push(due, c.index, "", CalendarDue(e_index, group.id), group.id)
            for t_index, trigger in enumerate(c.playbook.triggers):
                handler_for(trigger).arm_group(self, c, t_index, trigger, group)

    def _next_calendar(self, when: lang.CalRef, tz: ZoneInfo, after: int) -> int | None:
        rule = self.program.calendars[when.calendar].rule if when.calendar else when.inline
        assert rule is not None
        key = (id(when), id(rule), tz, after)
        known = _NEXT.get(key)
        if known is not None and known[0] is when and known[1] is rule:
            return known[2]
        due = timeutil.next_fire(rule, when.offsets, when.at, tz, after)
        if len(_NEXT) >= _NEXT_KEPT:
            _NEXT.clear()
        _NEXT[key] = (when, rule, due)
        return due

    def _arm_member(self, member: MemberState, since: int, since_in: Mapping[str, int] | None = None) -> None:
        """Arm a member's absences and dates; `since_in`: where their silence in each group counts
        from, when it is not `since` (the history a member present at the start was given).
        Trigger kinds in the registry's order, each kind's triggers in playbook order."""
        for handler, c, t_index, trigger in self._member_armers:
            handler.arm_member(self, c, t_index, trigger, member, since, since_in)

    def _rearm_dates(self, member: MemberState, attribute: str) -> None:
        """A step changed a member's attribute: arm the date triggers reading it for its new day
        (a timer armed for the old day is stale, and does nothing when due: `DateHandler.due`)."""
        for kind in _DATE_KINDS:
            for c, t_index, trigger in self._triggers.get(kind, ()):
                if trigger.attribute == attribute:
                    DATES.arm_member(self, c, t_index, trigger, member, self.now, None)

    def _in_scope(self, c: _Compiled, group_id: str | None) -> bool:
        kind = c.scope_kind
        if kind == "private":
            return group_id is None
        group = self.groups.get(group_id) if group_id is not None else None
        if group is not None and group.dissolved:
            return False  # a dissolved group is out of every playbook's scope
        if kind == "all":
            return True
        if group is None:
            return False
        if kind == "named":
            return group_id in c.scope_groups
        return not group.tags.isdisjoint(c.scope_tags)

    def _member_in_scope(self, c: _Compiled, member: MemberState) -> bool:
        if c.scope_kind in ("all", "private"):
            return True
        return any(self._in_scope(c, g) for g in member.groups)

    def _member_group(self, c: _Compiled, member: MemberState) -> str | None:
        for group_id in sorted(member.groups):
            if self._in_scope(c, group_id):
                return group_id
        return None

    def _active(self, pb: CompiledPlaybook, now: int, tz: ZoneInfo) -> bool:
        if pb.active_from is None and pb.active_until is None:
            return True
        return pb.active_at(timeutil.local(now, tz))

    def _calendar_due(self, c: _Compiled, timer: CalendarDue, due: int) -> None:
        """A calendar entry came due in a group, or (`_PRIVATE`) for the contacts of an `in private
        chats` playbook, in the file's zone."""
        e_index, group_id = timer.entry, timer.group
        group = None
        if group_id != _PRIVATE:
            group = self.groups.get(group_id)
            if group is None or group.dissolved or not self._in_scope(c, group_id):
                return
        tz = group.zone if group is not None else self.zone
        entry = c.playbook.schedule[e_index]
        following = self._next_calendar(entry.when, tz, max(due, self.now))
        if following is not None:
            self._push(following, c.index, "", timer, group.id if group else "")
        if self.now - due > _GRACE and c.playbook.missed is lang.Missed.SKIP:
            return
        if following is not None and following <= self.now:
            return  # a later missed firing of the same entry will run instead (run latest once)
        if not self._active(c.playbook, due, tz):
            return
        test = c.entry_conds[e_index]
        audience: list[str | None] = [None]
        if entry.for_each_member:
            audience = [*sorted(group.members if group is not None else self.contacts)]
        tracer = self.tracer
        if tracer is not None and entry.for_each_member:
            self._calendar_traced(c, e_index, audience, group, due, tz, tracer)
            return
        for member_id in audience:
            member = self.members.get(member_id) if member_id is not None else None
            if c.guard is not None and not self._holds(
                c.guard, c, "when", member, group, {}, due, tz, entry.loc
            ):
                continue
            if test is not None and not self._holds(test, c, "when", member, group, {}, due, tz, entry.loc):
                continue
            self._begin(c, e_index, member, group, f"{entry.loc}", {}, due)

    def _calendar_traced(
        self,
        c: _Compiled,
        e_index: int,
        audience: list[str | None],
        group: GroupState | None,
        due: int,
        tz: ZoneInfo,
        tracer: trace.Tracer,
    ) -> None:
        """`_calendar_due`'s loop over the members of an entry `for each member`, telling `tracer`
        (`sopdsl why`) whether each started and, if not, which test stopped it. Kept apart so an
        untraced run pays nothing per member; `tests/dryrun/test_why.py` holds both to one log."""
        entry = c.playbook.schedule[e_index]
        test = c.entry_conds[e_index]
        for member_id in audience:
            member = self.members.get(member_id) if member_id is not None else None
            holds: bool | None = True
            if c.guard is not None:
                holds = self._holds(c.guard, c, "when", member, group, {}, due, tz, entry.loc)
            if holds and test is not None:
                holds = self._holds(test, c, "when", member, group, {}, due, tz, entry.loc)
            if member is not None:
                verdict = (
                    trace.STARTED if holds else trace.GUARD_FALSE if holds is False else trace.GUARD_FAILED
                )
                referrer = self.members.get(member.referrer) if member.referrer else None
                decision = trace.Decision(
                    due,
                    c.playbook,
                    member,
                    group,
                    entry.loc,
                    {},
                    tz,
                    verdict,
                    None,
                    referrer,
                    self.delivery.left,
                )
                tracer(decision)
            if holds:
                self._begin(c, e_index, member, group, f"{entry.loc}", {}, due)
