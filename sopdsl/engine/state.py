"""Per-member, per-group and per-flow state the engine keeps, as compact slotted records."""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sopdsl import lang
from sopdsl.kinds import BUILTIN_COUNTERS, MEMBER_RECORD_FIELDS
from sopdsl.plan import event_key

NONE: frozenset[str] = frozenset()  # the empty tags and groups every member starts with


# An `__init__` written out, as `Action`'s (see there): a member is made per id first met.
@dataclass(slots=True, init=False)
class MemberState:
    """One member: identity, tags, attributes, counters, activity and group membership."""

    id: str
    name: str = ""
    nickname: str = ""
    channel: str | None = None
    referrer: str | None = None
    joined_at: int | None = None
    owner: str | None = None  # the contact's owner (跟进人), as registered; not yet a field to read
    last_message_at: int | None = None
    last_order_at: int | None = None
    last_invite_at: int | None = None
    # Frozen, replaced when they change, by the one set the engine's `SharedSets` holds of that
    # value: most members have the same few tags and groups (216 bytes a set of their own).
    tags: frozenset[str] = NONE
    attributes: dict[str, Any] = field(default_factory=dict)
    counters: dict[str, float] = field(default_factory=dict)
    groups: frozenset[str] = NONE
    # Recent event times per kind, only kept for kinds some condition counts over a window.
    windows: dict[str, deque[int]] = field(default_factory=dict)
    existing: bool = False
    arrived: bool = False  # in a group when the plan started, or has joined one since
    # History a member was registered with (`MemberRecord`), per group; None for most members.
    group_joined_at: dict[str, int] | None = None
    group_last_message_at: dict[str, int] | None = None

    def __init__(
        self,
        id: str,
        name: str = "",
        nickname: str = "",
        channel: str | None = None,
        referrer: str | None = None,
        joined_at: int | None = None,
        owner: str | None = None,
        last_message_at: int | None = None,
        last_order_at: int | None = None,
        last_invite_at: int | None = None,
        tags: frozenset[str] = NONE,
        attributes: dict[str, Any] | None = None,  # None: a new empty dict, as the field's factory
        counters: dict[str, float] | None = None,  # the same
        groups: frozenset[str] = NONE,
        windows: dict[str, deque[int]] | None = None,  # the same
        existing: bool = False,
        arrived: bool = False,
        group_joined_at: dict[str, int] | None = None,
        group_last_message_at: dict[str, int] | None = None,
    ) -> None:
        self.id = id
        self.name = name
        self.nickname = nickname
        self.channel = channel
        self.referrer = referrer
        self.joined_at = joined_at
        self.owner = owner
        self.last_message_at = last_message_at
        self.last_order_at = last_order_at
        self.last_invite_at = last_invite_at
        self.tags = tags
        self.attributes = {} if attributes is None else attributes
        self.counters = {} if counters is None else counters
        self.groups = groups
        self.windows = {} if windows is None else windows
        self.existing = existing
        self.arrived = arrived
        self.group_joined_at = group_joined_at
        self.group_last_message_at = group_last_message_at

    def field_value(self, name: str) -> Any:
        """The value of a built-in field, counter or attribute (None when unset)."""
        if name in _MEMBER_SLOTS:
            return getattr(self, name)
        if name in self.counters:
            return self.counters[name]
        return self.attributes.get(name)

    def as_context(self) -> dict[str, Any]:
        """The member as template data: fields, counters and attributes (plain values)."""
        data: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "nickname": self.nickname,
            "channel": self.channel,
            "referrer": self.referrer,
            "tags": sorted(self.tags),
        }
        for counter in BUILTIN_COUNTERS:
            data[counter] = self.counters.get(counter, 0)
        data.update(self.counters)
        data.update(self.attributes)
        return data


_MEMBER_SLOTS = frozenset(MEMBER_RECORD_FIELDS)  # the record's own fields, from the registry

_MOST_SHARED = 4096  # distinct sets a table keeps; past that it starts again


class SharedSets:
    """One frozenset per distinct set of names that members hold (their tags, their groups).

    At 100k members a run holds a few hundred distinct sets, where a set of each member's own
    took 216 bytes, 15% of the run's memory. A bound, not a cache policy: past `_MOST_SHARED`
    distinct sets (a bot tagging each member its own way), new ones start a new table, and the
    sets already given out stay as they are.
    """

    __slots__ = ("_sets",)

    def __init__(self) -> None:
        self._sets: dict[frozenset[str], frozenset[str]] = {NONE: NONE}

    def share(self, names: frozenset[str]) -> frozenset[str]:
        """The one set equal to `names` (`names` itself, kept, where it is the first)."""
        shared = self._sets.get(names)
        if shared is None:
            if len(self._sets) >= _MOST_SHARED:
                self._sets = {NONE: NONE}
            self._sets[names] = shared = names
        return shared

    def share_members(self, members: Iterable[MemberState]) -> None:
        """Give each member the shared sets equal to its tags and its groups."""
        share = self.share
        for member in members:
            member.tags, member.groups = share(member.tags), share(member.groups)


@dataclass(slots=True)
class GroupState:
    """One group: tags, zone, staff and members."""

    id: str
    name: str
    zone: ZoneInfo
    tags: set[str] = field(default_factory=set)
    operator: str | None = None
    owner: str | None = None
    members: set[str] = field(default_factory=set)
    last_message_at: int | None = None
    dissolved: bool = False

    def field_value(self, name: str) -> Any:
        """The value of a built-in group field."""
        if name == "size":
            return len(self.members)
        return getattr(self, name, None)

    def as_context(self) -> dict[str, Any]:
        """The group as template data."""
        return {
            "id": self.id,
            "name": self.name,
            "size": len(self.members),
            "owner": self.owner,
            "operator": self.operator,
            "tags": sorted(self.tags),
        }


@dataclass(frozen=True, slots=True)
class WaitEvent:
    """A `wait … for` an event: `key` is the event's key ("message", "tagged:vip", "custom:paid")."""

    key: str
    # For a correlated wait, the awaited event's fields and the values they must have: the flow's
    # own event's, taken when the wait began.
    same: tuple[tuple[str, str | float | bool | None], ...] = ()

    def accepts(self, key: str, data: dict[str, Any]) -> bool:
        """Whether an event of the member's, with this key and payload, ends the wait."""
        return self.key == key and all(data.get(field) == value for field, value in self.same)


def event_wait(wait: lang.EventWait, flow_event: dict[str, Any]) -> WaitEvent:
    """What a flow at a `wait … for` waits for, given the event the flow holds as the wait begins."""
    if wait.same:
        return WaitEvent(event_key(wait.pattern), tuple((e, flow_event.get(f)) for e, f in wait.same))
    return _shared_wait(event_key(wait.pattern))


@functools.cache
def _shared_wait(key: str) -> WaitEvent:
    # One shared (frozen) `WaitEvent` per event key: a plain `wait … for` allocates nothing.
    return WaitEvent(key)


@dataclass(frozen=True, slots=True)
class WaitTask:
    """An `assign` step: the flow waits for the operator to finish the task with this key."""

    key: str


@dataclass(frozen=True, slots=True)
class WaitDelivery:
    """An action the delivery policy held back: the flow goes on once it has gone out (or not)."""


# What a flow waits for (a flow that waits for nothing has `waiting = None`). A reader either asks
# one question with isinstance or dispatches with a `match` ending in `assert_never`; the snapshot
# codec writes each as its class name and fields. A new one goes in WAIT_TYPES too.
Wait = WaitEvent | WaitTask | WaitDelivery
WAIT_TYPES: tuple[type[Wait], ...] = (WaitEvent, WaitTask, WaitDelivery)


# An `__init__` written out, as `Action`'s (see there): a flow is made per trigger that fires.
@dataclass(slots=True, init=False)
class Flow:
    """One member's (or group's) run through a playbook: a program counter and its context."""

    id: int
    playbook: int
    entry: int  # -1: the playbook's `do` steps; otherwise the index of a calendar entry
    member: str | None
    group: str | None
    pc: int
    trigger: str
    started: int
    event: dict[str, Any] = field(default_factory=dict)
    coupon: dict[str, Any] | None = None
    waiting: Wait | None = None  # what the flow waits for, if anything
    token: int = 0  # bumps on every wait, so a stale timeout is ignored
    arm: str | None = None
    origin: str = ""  # what started it (an event's id, a timer, a tag action): keys derive from it
    acts: int = 0  # actions it has decided so far: the last part of each one's key

    def __init__(
        self,
        id: int,
        playbook: int,
        entry: int,
        member: str | None,
        group: str | None,
        pc: int,
        trigger: str,
        started: int,
        event: dict[str, Any] | None = None,  # None: a new empty dict, as the field's factory
        coupon: dict[str, Any] | None = None,
        waiting: Wait | None = None,
        token: int = 0,
        arm: str | None = None,
        origin: str = "",
        acts: int = 0,
    ) -> None:
        self.id = id
        self.playbook = playbook
        self.entry = entry
        self.member = member
        self.group = group
        self.pc = pc
        self.trigger = trigger
        self.started = started
        self.event = {} if event is None else event
        self.coupon = coupon
        self.waiting = waiting
        self.token = token
        self.arm = arm
        self.origin = origin
        self.acts = acts
