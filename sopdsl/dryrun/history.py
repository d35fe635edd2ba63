"""Events before a dry run's start, read as history: they set what the members were like at the
start (groups and when they joined them, last messages, last order, tags, counters) and start
no playbook.

Input: the members a fixture or timeline lists, and its events before the start, in time order.
Output: one `MemberRecord` per member, the listed ones with what the history adds, which the
engine takes as members present at the start (see `sopdsl.engine.history`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from sopdsl.engine.events import Event
from sopdsl.engine.records import MemberRecord
from sopdsl.engine.state import MemberState

# The kinds of event that can be history: each sets state the engine keeps. A custom event or a
# task done before the start would only have started playbooks, which history never does.
HISTORY_KINDS = ("join", "leave", "message", "order", "invite", "report", "tag", "untag", "rename")

# The counters an event of a kind adds one to (as the engine counts them when it sees the event).
_COUNTED = {"message": "messages", "order": "orders", "invite": "invites", "report": "violations"}


@dataclass
class _Past:
    """What a member's history events said, folded as they come."""

    name: str = ""
    nickname: str = ""
    channel: str | None = None
    referrer: str | None = None
    contact: bool = False
    joined: dict[str, int] = field(default_factory=dict)  # group -> when they (last) joined it
    posted: dict[str, int] = field(default_factory=dict)  # group -> their last message there
    left: set[str] = field(default_factory=set)
    tags: set[str] = field(default_factory=set)
    untagged: set[str] = field(default_factory=set)
    counters: dict[str, float] = field(default_factory=dict)
    last_order: int | None = None


class History:
    """The events before the start, folded per member."""

    def __init__(self) -> None:
        self._members: dict[str, _Past] = {}

    def __bool__(self) -> bool:
        return bool(self._members)

    def members(self) -> list[str]:
        """The members the history speaks of, in the order first met."""
        return list(self._members)

    def groups(self) -> set[str]:
        """The groups the members' records name from their history: where they (still) are, or posted."""
        return {g for past in self._members.values() for g in (*past.joined, *past.posted)}

    def add(self, event: Event) -> None:
        """Fold one event (of `HISTORY_KINDS`, before the start, in time order) into its member."""
        if event.member is None:
            return
        past = self._members.setdefault(event.member, _Past())
        kind, group, data = event.kind, event.group, event.data
        counter = _COUNTED.get(kind)
        if counter is not None:
            past.counters[counter] = past.counters.get(counter, 0.0) + 1
        if kind == "join":
            past.name = str(data.get("name") or past.name)
            past.nickname = str(data.get("nickname") or past.nickname)
            past.channel = str(data["channel"]) if data.get("channel") else past.channel
            if data.get("inviter") and not past.referrer:
                past.referrer = str(data["inviter"])
            if group is None:
                past.contact = True
            else:
                past.joined[group] = event.time
                past.left.discard(group)
        elif kind == "leave":
            if group is None:
                past.contact = False
            else:
                past.left.add(group)
                past.joined.pop(group, None)
                past.posted.pop(group, None)
        elif kind == "message" and group is not None:
            past.posted[group] = event.time
            past.left.discard(group)  # posting there, they are in it
        elif kind == "order":
            past.last_order = event.time
            amount = data.get("amount")
            if isinstance(amount, int | float) and not isinstance(amount, bool):
                past.counters["spent"] = past.counters.get("spent", 0.0) + float(amount)
        elif kind in ("tag", "untag") and event.name:
            (past.tags if kind == "tag" else past.untagged).add(event.name)
            (past.untagged if kind == "tag" else past.tags).discard(event.name)
        elif kind == "rename":
            past.nickname = str(data.get("nickname", past.nickname))

    def records(self, listed: Iterable[MemberRecord]) -> list[MemberRecord]:
        """The listed members with their history added, then the members only history names.

        What a member entry gives is how the member was at the start, so it wins: its groups are
        kept (history adds the times it knows of them), and a counter it gives is not added to.
        """
        out: list[MemberRecord] = []
        seen: set[str] = set()
        for record in listed:
            seen.add(record.id)
            past = self._members.get(record.id)
            out.append(record if past is None else _merged(record, past))
        out.extend(
            _merged(MemberRecord(id=mid), past) for mid, past in self._members.items() if mid not in seen
        )
        return out


def _merged(record: MemberRecord, past: _Past) -> MemberRecord:
    groups = list(record.groups)
    groups.extend(g for g in (*past.joined, *past.posted) if g not in groups and g not in past.left)
    counters = {**past.counters, **record.counters}
    tags = (set(record.tags) | past.tags) - (past.untagged - set(record.tags))
    return replace(
        record,
        name=record.name or past.name,
        nickname=record.nickname or past.nickname,
        channel=record.channel or past.channel,
        referrer=record.referrer or past.referrer,
        contact=record.contact or past.contact,
        tags=tuple(sorted(tags)),
        counters=counters,
        groups=tuple(groups),
        group_joined_at={**past.joined, **record.group_joined_at},
        group_last_message_at={**past.posted, **record.group_last_message_at},
        last_order_at=record.last_order_at if record.last_order_at is not None else past.last_order,
    )


def as_listed(member: MemberState) -> MemberRecord:
    """A member registered from a timeline's line, as the record the line gave (what merging its
    history reads: the line's groups, tags, counters and names win)."""
    return MemberRecord(
        id=member.id,
        name=member.name if member.name != member.id else "",
        nickname=member.nickname,
        tags=tuple(member.tags),
        counters=dict(member.counters),
        groups=tuple(member.groups),
        referrer=member.referrer,
        channel=member.channel,
    )
