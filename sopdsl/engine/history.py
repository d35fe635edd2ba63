"""History at the start: what a member registered before the plan took effect says of their past
(when they joined each group and last posted there, their last order), folded into the times the
engine keeps, and where their silence counts from.

Input: a `MemberRecord` with history and the engine's member and group state. Output: that
state updated. Nothing here starts a playbook: history sets state only.
"""

from __future__ import annotations

from collections.abc import Mapping

from sopdsl.engine.records import MemberRecord
from sopdsl.engine.state import GroupState, MemberState


def fold_history(member: MemberState, record: MemberRecord, groups: Mapping[str, GroupState]) -> None:
    """Fold a member's history into their last message (and each group's), last order and join
    time; the per-group times are kept for `counted_since`."""
    member.group_joined_at = {**(member.group_joined_at or {}), **record.group_joined_at}
    member.group_last_message_at = {**(member.group_last_message_at or {}), **record.group_last_message_at}
    for group_id, posted in record.group_last_message_at.items():
        group = groups[group_id]
        group.last_message_at = max(group.last_message_at or posted, posted)
        member.last_message_at = max(member.last_message_at or posted, posted)
    if record.last_order_at is not None:
        member.last_order_at = max(member.last_order_at or record.last_order_at, record.last_order_at)
    if member.joined_at is None and record.group_joined_at:
        member.joined_at = min(record.group_joined_at.values())


def counted_since(member: MemberState, start: int) -> int:
    """Where the absences (`silent for`, `no order for`) of a member present at the start count
    from: the start, or, for one registered with history, when they joined their first group
    (or last posted, if that is all it says), as a member who joins counts from joining; their
    last message or order, if later, counts anyway (see `_arm_absence`). So a member silent
    since long before the start is due on day one. A contact in no group (private chats) has no
    group history: their last order, if registered, is where they are known from, so a customer
    who last ordered 400 days before the start is due for `no order for 365 days` on day one."""
    known = [*(member.group_joined_at or {}).values(), *(member.group_last_message_at or {}).values()]
    if not member.groups and member.last_order_at is not None:
        known.append(member.last_order_at)
    return min(start, *known) if known else start


def silent_since_in(member: MemberState, start: int) -> dict[str, int] | None:
    """Where a member's silence in each of their groups counts from, for a group-scoped `silent
    for` (None: from the start): their last message there, else when they joined it; a group
    their history says nothing of counts from the start."""
    if not member.group_joined_at and not member.group_last_message_at:
        return None
    joined, posted = member.group_joined_at or {}, member.group_last_message_at or {}
    return {g: min(start, max(posted.get(g, 0), joined.get(g, 0)) or start) for g in member.groups}
