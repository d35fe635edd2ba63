"""What a bot registers about a member or a group, as one record every registering path shares.

The engine, the live runtime (and its journal), the simulator, fixtures and timelines all
spell a member through `MemberRecord`, so a field added here (the contact's owner, say) reaches
every one of them, and `tests/engine/test_records.py` fails where a list of fields drifts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


# `init=False` and an `__init__` of our own: mypyc compiles it, setting each field in C (it turns
# `object.__setattr__` on its own field into a store), where the `__init__` `dataclasses`
# generates runs in the interpreter and a frozen one calls `object.__setattr__` for each field,
# about 2 µs a record, paid for every member line of a timeline. Its parameters are the fields',
# in their order, with their defaults (a fresh dict where the field has `default_factory=dict`).
@dataclass(frozen=True, slots=True, init=False)
class MemberRecord:
    """One member as registered: identity, labels, numbers, groups and where they came from.

    An empty text or None means "not given": registering a member the engine knows keeps what
    it had for those.
    """

    id: str
    name: str = ""
    nickname: str = ""
    tags: tuple[str, ...] = ()
    attributes: Mapping[str, Any] = field(default_factory=dict)
    counters: Mapping[str, float] = field(default_factory=dict)
    groups: tuple[str, ...] = ()
    joined_at: int | None = None
    referrer: str | None = None
    channel: str | None = None
    contact: bool = False  # also a contact in private chats (a WeCom friend)
    owner: str | None = None  # the staff member who follows the contact up (跟进人); carried only
    # History from before the plan took effect, for the first run over an existing community:
    # when the member joined each group and last posted in it, and their last order. A member
    # given any of it has their silence counted from it, not from the start.
    group_joined_at: Mapping[str, int] = field(default_factory=dict)
    group_last_message_at: Mapping[str, int] = field(default_factory=dict)
    last_order_at: int | None = None

    def __init__(
        self,
        id: str,
        name: str = "",
        nickname: str = "",
        tags: tuple[str, ...] = (),
        attributes: Mapping[str, Any] | None = None,
        counters: Mapping[str, float] | None = None,
        groups: tuple[str, ...] = (),
        joined_at: int | None = None,
        referrer: str | None = None,
        channel: str | None = None,
        contact: bool = False,
        owner: str | None = None,
        group_joined_at: Mapping[str, int] | None = None,
        group_last_message_at: Mapping[str, int] | None = None,
        last_order_at: int | None = None,
    ) -> None:
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "nickname", nickname)
        object.__setattr__(self, "tags", tags)
        object.__setattr__(self, "attributes", {} if attributes is None else attributes)
        object.__setattr__(self, "counters", {} if counters is None else counters)
        object.__setattr__(self, "groups", groups)
        object.__setattr__(self, "joined_at", joined_at)
        object.__setattr__(self, "referrer", referrer)
        object.__setattr__(self, "channel", channel)
        object.__setattr__(self, "contact", contact)
        object.__setattr__(self, "owner", owner)
        object.__setattr__(self, "group_joined_at", {} if group_joined_at is None else group_joined_at)
        object.__setattr__(
            self, "group_last_message_at", {} if group_last_message_at is None else group_last_message_at
        )
        object.__setattr__(self, "last_order_at", last_order_at)

    @property
    def has_history(self) -> bool:
        """Whether the record tells any of the member's past: a join, a last message, a last order."""
        return bool(self.group_joined_at or self.group_last_message_at) or self.last_order_at is not None

    def journal_body(self) -> dict[str, Any]:
        """The record as a journal entry's fields (`member` is the id: `id` is the entry's own)."""
        body: dict[str, Any] = {JOURNAL_KEYS.get(name, name): getattr(self, name) for name in MEMBER_FIELDS}
        body["tags"] = sorted(set(self.tags))
        body["attributes"] = dict(self.attributes)
        body["counters"] = dict(self.counters)
        body["groups"] = list(self.groups)
        body["group_joined_at"] = dict(self.group_joined_at)
        body["group_last_message_at"] = dict(self.group_last_message_at)
        return body

    @classmethod
    def from_journal(cls, body: Mapping[str, Any]) -> MemberRecord:
        """The record a journal entry holds; an entry written before a field existed gets its default."""
        return cls(
            id=body["member"],
            name=body.get("name") or "",
            nickname=body.get("nickname") or "",
            tags=tuple(body.get("tags") or ()),
            attributes=dict(body.get("attributes") or {}),
            counters=dict(body.get("counters") or {}),
            groups=tuple(body.get("groups") or ()),
            joined_at=body.get("joined_at"),
            referrer=body.get("referrer"),
            channel=body.get("channel"),
            contact=bool(body.get("contact", False)),
            owner=body.get("owner"),
            group_joined_at=dict(body.get("group_joined_at") or {}),
            group_last_message_at=dict(body.get("group_last_message_at") or {}),
            last_order_at=body.get("last_order_at"),
        )


# The single list of a member's registered fields; every other list is derived from it.
MEMBER_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(MemberRecord))
# Where a journal entry names a field differently (its own `id` is the entry's).
JOURNAL_KEYS: dict[str, str] = {"id": "member"}
# Where fixtures and timelines name a field differently: they give a time, not epoch seconds.
FILE_KEYS: dict[str, str] = {"joined_at": "joined", "last_order_at": "last_order"}
# The fields fixtures and timelines give inside each of a member's `groups` entries
# (`{id: g1, joined: ..., last_message: ...}`), by the name they have there.
GROUP_ENTRY_KEYS: dict[str, str] = {"group_joined_at": "joined", "group_last_message_at": "last_message"}
MEMBER_FILE_FIELDS: tuple[str, ...] = tuple(
    FILE_KEYS.get(name, name) for name in MEMBER_FIELDS if name not in GROUP_ENTRY_KEYS
)


def member_record(member: str | MemberRecord, given: Mapping[str, Any]) -> MemberRecord:
    """`member` itself, or the record of that id from a keyword form's arguments (`locals()` of
    `Engine.add_member` or `Runtime.add_member`, whose keywords are the record's fields by name,
    so a field added here needs only its keyword there); iterables become tuples, mappings dicts."""
    if isinstance(member, MemberRecord):
        return member
    fields = {name: given[name] for name in MEMBER_FIELDS[1:]}
    fields["tags"], fields["groups"] = tuple(fields["tags"]), tuple(fields["groups"])
    for name in ("attributes", "counters", "group_joined_at", "group_last_message_at"):
        fields[name] = dict(fields[name] or {})
    return MemberRecord(id=member, **fields)


@dataclass(frozen=True, slots=True, init=False)  # an `__init__` mypyc compiles, as MemberRecord's
class GroupRecord:
    """One group as registered; what is not given comes from its declaration, then the program."""

    id: str
    name: str | None = None
    tags: tuple[str, ...] = ()
    timezone: str | None = None
    operator: str | None = None
    owner: str | None = None

    def __init__(
        self,
        id: str,
        name: str | None = None,
        tags: tuple[str, ...] = (),
        timezone: str | None = None,
        operator: str | None = None,
        owner: str | None = None,
    ) -> None:
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "tags", tags)
        object.__setattr__(self, "timezone", timezone)
        object.__setattr__(self, "operator", operator)
        object.__setattr__(self, "owner", owner)

    def journal_body(self) -> dict[str, Any]:
        """The record as a journal entry's fields (`group` is the id: `id` is the entry's own)."""
        body: dict[str, Any] = {
            "group" if name == "id" else name: getattr(self, name) for name in GROUP_FIELDS
        }
        body["tags"] = sorted(set(self.tags))
        return body

    @classmethod
    def from_journal(cls, body: Mapping[str, Any]) -> GroupRecord:
        """The record a journal entry holds; entries written before the keyword was `timezone`
        everywhere say `zone`."""
        return cls(
            id=body["group"],
            name=body.get("name") or None,
            tags=tuple(body.get("tags") or ()),
            timezone=body.get("timezone", body.get("zone")),
            operator=body.get("operator"),
            owner=body.get("owner"),
        )


GROUP_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(GroupRecord))


def group_record(group: str | GroupRecord, given: Mapping[str, Any]) -> GroupRecord:
    """`group` itself, or the record of that id from a keyword form's arguments (as `member_record`)."""
    if isinstance(group, GroupRecord):
        return group
    fields = {name: given[name] for name in GROUP_FIELDS[1:]}
    fields["tags"] = tuple(fields["tags"])
    return GroupRecord(id=group, **fields)
