"""Arming and firing the triggers' timers: silences, dates, calendars, group silences; scope."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, cast
from zoneinfo import ZoneInfo

from sopdsl import lang
from sopdsl.engine.parts import (
    _ABSENCE,
    _CAL,
    _DATE,
    _GRACE,
    _GROUP_SILENT,
    _PRIVATE,
    _SILENCE_IN,
    _Compiled,
    _Parts,
    in_group,
    membership,
)
from sopdsl.engine.state import GroupState, MemberState
from sopdsl.plan import CompiledPlaybook, timeutil


class _Arming(_Parts):
    """Arming and firing the triggers' timers: silences, dates, calendars, group silences; scope."""

    def _arm_group(self, group: GroupState) -> None:
        for c in self.live:
            if not self._in_scope(c.playbook, group.id):
                continue
            for e_index, entry in enumerate(c.playbook.schedule):
                due = self._next_calendar(entry.when, group.zone, self.now)
                if due is not None:
                    self._push(due, _CAL, c.index, "", e_index, group.id, group=group.id)
            for t_index, trigger in enumerate(c.playbook.triggers):
                if isinstance(trigger, lang.OnGroupSilent):
                    since = group.last_message_at or self.now
                    self._push(
                        timeutil.add(since, trigger.duration, group.zone),
                        _GROUP_SILENT,
                        c.index,
                        "",
                        t_index,
                        group.id,
                        group=group.id,
                    )

    def _next_calendar(self, when: lang.CalRef, tz: ZoneInfo, after: int) -> int | None:
        rule = self.program.calendars[when.calendar].rule if when.calendar else when.inline
        assert rule is not None
        return timeutil.next_fire(rule, when.offsets, when.at, tz, after)

    def _arm_member(self, member: MemberState, since: int, since_in: Mapping[str, int] | None = None) -> None:
        """Arm a member's absences and dates; `since_in`: where their silence in each group counts
        from, when it is not `since` (the history a member present at the start was given)."""
        for c, t_index, trigger in self._triggers.get("absence", ()):
            if in_group(trigger, c.playbook):
                for group_id in sorted(member.groups):
                    if self._silence_applies_in(c.playbook, member, group_id):
                        at = since_in.get(group_id, since) if since_in else since
                        self._arm_silence_in(c, t_index, member, group_id, at)
            elif self._absence_applies(c.playbook, member):
                self._arm_absence(c, t_index, member, since)
        for kind in ("date_offset", "anniversary"):
            for c, t_index, trigger in self._triggers.get(kind, ()):
                if self._member_in_scope(c.playbook, member):
                    self._arm_date(c, t_index, trigger, member)

    def _absence_applies(self, pb: CompiledPlaybook, member: MemberState) -> bool:
        """Whether a member's silence counts for a playbook: in its scope, and new unless `apply to all`."""
        if not (pb.apply_to_existing or not member.existing):
            return False
        scope = pb.scope
        kind = scope.kind
        if kind == "private":
            return True
        # `_in_scope` for each of the member's groups, written out: this runs for many messages.
        groups = self.groups
        for group_id in member.groups:
            group = groups.get(group_id)
            if group is not None and group.dissolved:
                continue
            if kind == "all":
                return True
            if group is None:
                continue
            if kind == "named":
                if group_id in scope.groups:
                    return True
            elif not group.tags.isdisjoint(scope.tags):
                return True
        return False

    def _silence_applies_in(self, pb: CompiledPlaybook, member: MemberState, group_id: str) -> bool:
        """Whether a member's silence in one group counts for a group-scoped `silent for`."""
        return (pb.apply_to_existing or not member.existing) and self._in_scope(pb, group_id)

    def _arm_silence_in(
        self, c: _Compiled, t_index: int, member: MemberState, group_id: str, since: int
    ) -> None:
        """Count a member's silence in one group from `since` (arrival, the plan start, or the
        member's last message there); as `_arm_absence`, a pending timer re-checks when due."""
        table = self.armed[(c.index, t_index)]
        key = membership(member.id, group_id)
        pending = key in table
        table[key] = since
        if not pending:
            trigger = cast(lang.OnAbsence, c.playbook.triggers[t_index])
            group = self.groups.get(group_id)
            due = timeutil.add(since, trigger.duration, group.zone if group is not None else self.zone)
            self._push(due, _SILENCE_IN, c.index, member.id, t_index, group_id, group=group_id)

    def _arm_absence(self, c: _Compiled, t_index: int, member: MemberState, since: int) -> None:
        """Start counting a member's absence from `since` (arrival in scope, or the plan start).

        One timer per armed deadline: when one is already pending, only its start moves; the
        timer re-checks the deadline when it comes due (lazy invalidation).
        """
        table = self.armed[(c.index, t_index)]
        pending = member.id in table
        table[member.id] = since
        if not pending:
            trigger = cast(lang.OnAbsence, c.playbook.triggers[t_index])
            base = max(since, self._last(member, trigger.event) or since)
            self._push(timeutil.add(base, trigger.duration, self.zone), _ABSENCE, c.index, member.id, t_index)

    def _last(self, member: MemberState, kind: lang.EventKind) -> int | None:
        if kind is lang.EventKind.MESSAGE:
            return member.last_message_at
        if kind is lang.EventKind.ORDER:
            return member.last_order_at
        if kind is lang.EventKind.INVITE:
            return member.last_invite_at
        return None

    def _arm_date(self, c: _Compiled, t_index: int, trigger: Any, member: MemberState) -> None:
        due = self._date_fire(trigger, member, self.now)
        if due is not None:
            self._push(due, _DATE, c.index, member.id, t_index)

    def _date_fire(self, trigger: Any, member: MemberState, after: int) -> int | None:
        value = member.field_value(trigger.attribute)
        if value is None:
            return None
        if isinstance(value, int):
            day = timeutil.local(value, self.zone).date()
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
            wall = timeutil.shift_local(
                dt.datetime.combine(day, trigger.at),
                -trigger.offset.amount if trigger.before else trigger.offset.amount,
                trigger.offset.unit,
            )
            due = timeutil.resolve(wall, self.zone)
            return due if due > after else None
        year = timeutil.local(after, self.zone).year
        for offset in range(3):
            try:
                candidate = day.replace(year=year + offset)
            except ValueError:  # 29 February in a common year: celebrate on the 28th
                candidate = dt.date(year + offset, 2, 28)
            due = timeutil.resolve(dt.datetime.combine(candidate, trigger.at), self.zone)
            if due > after:
                return due
        return None

    def _in_scope(self, pb: CompiledPlaybook, group_id: str | None) -> bool:
        scope = pb.scope
        if scope.kind == "private":
            return group_id is None
        group = self.groups.get(group_id) if group_id is not None else None
        if group is not None and group.dissolved:
            return False  # a dissolved group is out of every playbook's scope
        if scope.kind == "all":
            return True
        if group is None:
            return False
        if scope.kind == "named":
            return group_id in scope.groups
        return not group.tags.isdisjoint(scope.tags)

    def _member_in_scope(self, pb: CompiledPlaybook, member: MemberState) -> bool:
        if pb.scope.kind in ("all", "private"):
            return True
        return any(self._in_scope(pb, g) for g in member.groups)

    def _member_group(self, pb: CompiledPlaybook, member: MemberState) -> str | None:
        for group_id in sorted(member.groups):
            if self._in_scope(pb, group_id):
                return group_id
        return None

    def _active(self, pb: CompiledPlaybook, now: int, tz: ZoneInfo) -> bool:
        if pb.active_from is None and pb.active_until is None:
            return True
        wall = timeutil.local(now, tz)
        if pb.active_from is not None and wall < pb.active_from:
            return False
        return not (pb.active_until is not None and wall >= pb.active_until)

    def _absence_due(self, c: _Compiled, t_index: int, member_id: str, due: int) -> None:
        table = self.armed[(c.index, t_index)]
        since = table.get(member_id)
        if since is None:
            return
        member = self.members.get(member_id)
        trigger = cast(lang.OnAbsence, c.playbook.triggers[t_index])
        if member is None or not self._absence_applies(c.playbook, member):
            del table[member_id]  # out of scope now; re-armed when the member comes back
            return
        last = self._last(member, trigger.event)
        deadline = timeutil.add(max(since, last or since), trigger.duration, self.zone)
        if deadline > due:
            self._push(deadline, _ABSENCE, c.index, member_id, t_index)
            return
        del table[member_id]
        self._start_flow(c, member, self._member_group(c.playbook, member), trigger.loc, {}, due)

    def _silence_in_due(self, c: _Compiled, t_index: int, member_id: str, group_id: str, due: int) -> None:
        """A member's silence in one group came due: the flow runs in that group."""
        table = self.armed[(c.index, t_index)]
        key = membership(member_id, group_id)
        since = table.get(key)
        if since is None:
            return
        member = self.members.get(member_id)
        if (
            member is None
            or group_id not in member.groups
            or not self._silence_applies_in(c.playbook, member, group_id)
        ):
            del table[key]  # left the group, or it left the scope; armed again on a new join
            return
        trigger = cast(lang.OnAbsence, c.playbook.triggers[t_index])
        group = self.groups.get(group_id)
        deadline = timeutil.add(since, trigger.duration, group.zone if group is not None else self.zone)
        if deadline > due:
            self._push(deadline, _SILENCE_IN, c.index, member_id, t_index, group_id, group=group_id)
            return
        del table[key]
        self._start_flow(c, member, group_id, trigger.loc, {}, due)

    def _date_due(self, c: _Compiled, t_index: int, member_id: str) -> None:
        member = self.members.get(member_id)
        if member is None:
            return
        trigger = c.playbook.triggers[t_index]
        self._start_flow(c, member, self._member_group(c.playbook, member), trigger.loc, {}, self.now)
        if isinstance(trigger, lang.OnAnniversary):
            self._arm_date(c, t_index, trigger, member)

    def _calendar_due(self, c: _Compiled, e_index: int, group_id: str, due: int) -> None:
        """A calendar entry came due in a group, or (`_PRIVATE`) for the contacts of an `in private
        chats` playbook, in the file's zone."""
        group = None
        if group_id != _PRIVATE:
            group = self.groups.get(group_id)
            if group is None or group.dissolved or not self._in_scope(c.playbook, group_id):
                return
        tz = group.zone if group is not None else self.zone
        entry = c.playbook.schedule[e_index]
        following = self._next_calendar(entry.when, tz, max(due, self.now))
        if following is not None:
            self._push(following, _CAL, c.index, "", e_index, group_id, group=group.id if group else "")
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
        for member_id in audience:
            member = self.members.get(member_id) if member_id is not None else None
            if c.guard is not None and not self._holds(
                c.guard, c, "when", member, group, {}, due, tz, entry.loc
            ):
                continue
            if test is not None and not self._holds(test, c, "when", member, group, {}, due, tz, entry.loc):
                continue
            self._begin(c, e_index, member, group, f"{entry.loc}", {}, due)

    def _group_silent_due(self, c: _Compiled, t_index: int, group_id: str, due: int) -> None:
        group = self.groups.get(group_id)
        if group is None or group.dissolved:
            return
        trigger = c.playbook.triggers[t_index]
        assert isinstance(trigger, lang.OnGroupSilent)
        deadline = timeutil.add(group.last_message_at or self.start_time, trigger.duration, group.zone)
        if deadline > due:
            self._push(deadline, _GROUP_SILENT, c.index, "", t_index, group_id, group=group_id)
            return
        key = ("silent", c.index, t_index, group_id, group.last_message_at)
        if key not in self.fired:
            self.fired.add(key)
            self._start_group_flow(c, group, trigger.loc, due)
        # Re-armed by the next message in the group.
        self._push(due + 86400, _GROUP_SILENT, c.index, "", t_index, group_id, group=group_id)
