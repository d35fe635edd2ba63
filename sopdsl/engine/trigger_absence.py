"""`on member silent for 28 days`, `on no order for 365 days`: a deadline per member (or per
member and group, for a group-scoped `silent for`), armed once and re-checked when it comes due.

A message, an order or an invite never touches the heap: it moves the member's last time, and the
pending timer re-checks the deadline when due (lazy invalidation); only a deadline that already
fired is armed again. `armed[(playbook, trigger)]` holds, per member (or `membership`), when the
count started.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from sopdsl import lang
from sopdsl.engine.parts import _Compiled, _Parts, in_group, membership
from sopdsl.engine.state import GroupState, MemberState
from sopdsl.engine.timers import Absence, SilenceIn, absence, silence_in
from sopdsl.engine.trigger_base import TriggerHandler
from sopdsl.plan import timeutil


class AbsenceHandler(TriggerHandler[lang.OnAbsence]):
    """A silence deadline: armed on arrival, moved by the awaited event, re-checked when due."""

    def arm_member(
        self,
        e: _Parts,
        c: _Compiled,
        t_index: int,
        trigger: lang.OnAbsence,
        member: MemberState,
        since: int,
        since_in: Mapping[str, int] | None,
    ) -> None:
        if c.per_group[t_index]:
            for group_id in sorted(member.groups):
                if self.applies_in(e, c, member, group_id):
                    at = since_in.get(group_id, since) if since_in else since
                    self.arm_in(e, c, t_index, member, group_id, at)
        elif self.applies(e, c, member):
            self.arm(e, c, t_index, member, since)

    @staticmethod
    def applies(e: _Parts, c: _Compiled, member: MemberState) -> bool:
        """Whether a member's silence counts for a playbook: in its scope, and new unless `apply to all`."""
        if not (c.apply_to_existing or not member.existing):
            return False
        kind = c.scope_kind
        if kind == "private":
            return True
        # `_in_scope` for each of the member's groups, written out: this runs for many messages.
        groups = e.groups
        for group_id in member.groups:
            group = groups.get(group_id)
            if group is not None and group.dissolved:
                continue
            if kind == "all":
                return True
            if group is None:
                continue
            if kind == "named":
                if group_id in c.scope_groups:
                    return True
            elif not group.tags.isdisjoint(c.scope_tags):
                return True
        return False

    @staticmethod
    def applies_in(e: _Parts, c: _Compiled, member: MemberState, group_id: str) -> bool:
        """Whether a member's silence in one group counts for a group-scoped `silent for`."""
        return (c.apply_to_existing or not member.existing) and e._in_scope(c, group_id)

    @staticmethod
    def last(member: MemberState, kind: lang.EventKind) -> int | None:
        """When the member last did what the trigger waits for (None: never, as far as known)."""
        if kind is lang.EventKind.MESSAGE:
            return member.last_message_at
        if kind is lang.EventKind.ORDER:
            return member.last_order_at
        if kind is lang.EventKind.INVITE:
            return member.last_invite_at
        return None

    def arm(self, e: _Parts, c: _Compiled, t_index: int, member: MemberState, since: int) -> None:
        """Start counting a member's absence from `since` (arrival in scope, or the plan start).

        One timer per armed deadline: when one is already pending, only its start moves.
        """
        table = e.armed[(c.index, t_index)]
        pending = member.id in table
        table[member.id] = since
        if not pending:
            trigger = c.absence_of[t_index]
            base = max(since, self.last(member, trigger.event) or since)
            due = timeutil.add(base, trigger.duration, e.zone)
            e._push(due, c.index, member.id, absence(t_index))

    def arm_in(
        self, e: _Parts, c: _Compiled, t_index: int, member: MemberState, group_id: str, since: int
    ) -> None:
        """Count a member's silence in one group from `since` (arrival, the plan start, or the
        member's last message there); as `arm`, a pending timer re-checks when due."""
        table = e.armed[(c.index, t_index)]
        key = f"{member.id}\x00{group_id}"  # `membership`, written out: it runs per join
        pending = key in table
        table[key] = since
        if not pending:
            trigger = c.absence_of[t_index]
            group = e.groups.get(group_id)
            due = timeutil.add(since, trigger.duration, group.zone if group is not None else e.zone)
            e._push(due, c.index, member.id, silence_in(t_index, group_id), group_id)

    # ---- events ------------------------------------------------------------------------------

    def posted(self, e: _Parts, member: MemberState, now: int) -> None:
        """A member's message: a member-level silence that already fired counts again from now (a
        pending timer re-checks the deadline when due)."""
        member_id = member.id
        for c, t_index, table in e._message_absence:
            if member_id not in table and self.applies(e, c, member):
                self.arm(e, c, t_index, member, now)

    def posted_in(self, e: _Parts, member: MemberState, group: GroupState, now: int) -> None:
        """A member's message in a group: a group-scoped silence there moves its start (the pending
        timer re-checks), or, if it already fired or never counted, counts again from now."""
        key = membership(member.id, group.id)
        for c, t_index, table in e._silence_in_group:
            if key in table:
                table[key] = now
            elif self.applies_in(e, c, member, group.id):
                self.arm_in(e, c, t_index, member, group.id, now)

    def rearm(self, e: _Parts, member: MemberState, triggers: Iterable[tuple[_Compiled, int, Any]]) -> None:
        """An order or an invite: a deadline that already fired counts again from now."""
        for c, t_index, _trigger in triggers:
            if member.id not in e.armed[(c.index, t_index)] and self.applies(e, c, member):
                self.arm(e, c, t_index, member, e.now)

    def entering(self, e: _Parts, member: MemberState) -> list[tuple[_Compiled, int]]:
        """Before a member who was here joins a group: the member-level silences whose scope they
        are not in yet (`joined` arms those the join brings them into)."""
        return [
            (c, t_index)
            for c, t_index, trigger in e._triggers.get("absence", ())
            if not in_group(trigger, c.playbook) and not self.applies(e, c, member)
        ]

    def joined(
        self,
        e: _Parts,
        member: MemberState,
        group: GroupState,
        entering: list[tuple[_Compiled, int]],
        now: int,
    ) -> None:
        """After a member who was here joined a new group: their silence starts counting now where
        the join brought them into scope, and in the group itself for group-scoped silences."""
        for c, t_index in entering:
            if self.applies(e, c, member):
                self.arm(e, c, t_index, member, now)
        for c, t_index, _table in e._silence_in_group:
            if self.applies_in(e, c, member, group.id):
                self.arm_in(e, c, t_index, member, group.id, now)

    # ---- timers ------------------------------------------------------------------------------

    def due(self, e: _Parts, c: _Compiled, timer: Absence, member_id: str, due: int) -> None:
        """A member's deadline came due: re-armed if they did it since, else the flow starts."""
        table = e.armed[(c.index, timer.trigger)]
        since = table.get(member_id)
        if since is None:
            return
        member = e.members.get(member_id)
        trigger = c.absence_of[timer.trigger]
        if member is None or not self.applies(e, c, member):
            del table[member_id]  # out of scope now; re-armed when the member comes back
            return
        last = self.last(member, trigger.event)
        deadline = timeutil.add(max(since, last or since), trigger.duration, e.zone)
        if deadline > due:
            e._push(deadline, c.index, member_id, timer)
            return
        del table[member_id]
        e._start_flow(c, member, e._member_group(c, member), trigger.loc, {}, due)

    def due_in(self, e: _Parts, c: _Compiled, timer: SilenceIn, member_id: str, due: int) -> None:
        """A member's silence in one group came due: the flow runs in that group."""
        group_id = timer.group
        table = e.armed[(c.index, timer.trigger)]
        key = f"{member_id}\x00{group_id}"  # `membership`, written out: a call per firing saved
        since = table.get(key)
        if since is None:
            return
        member = e.members.get(member_id)
        if member is None or group_id not in member.groups or not self.applies_in(e, c, member, group_id):
            del table[key]  # left the group, or it left the scope; armed again on a new join
            return
        trigger = c.absence_of[timer.trigger]
        group = e.groups.get(group_id)
        deadline = timeutil.add(since, trigger.duration, group.zone if group is not None else e.zone)
        if deadline > due:
            e._push(deadline, c.index, member_id, timer, group_id)
            return
        del table[key]
        # In scope: `applies_in` asked `_in_scope` of this group above, and nothing ran since.
        e._start_flow(c, member, group_id, trigger.loc, {}, due, check_scope=False)


ABSENCE: Final = AbsenceHandler()
