"""The fixture models: groups, members, events (or a `reload`) and expectations of a YAML fixture,
as pydantic validates them (see `sopdsl.dryrun.fixtures`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, WithJsonSchema, field_validator
from pydantic_core import PydanticCustomError

from sopdsl.dryrun.fixture_times import parse_time
from sopdsl.engine.records import GroupRecord, MemberRecord
from sopdsl.enums import AttachmentType
from sopdsl.kinds import ACTIONS, WIRE_EVENTS
from sopdsl.lang import Model


def _one_of(allowed: tuple[str, ...]) -> Callable[[str], str]:
    """A check that a word is one of the registry's names, refused as a `Literal` field refuses."""

    def check(value: str) -> str:
        if value not in allowed:
            expected = ", ".join(repr(name) for name in allowed)
            raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected})
        return value

    return check


# The action and event kinds a fixture may name: the registry's own (`sopdsl.kinds`), so a kind
# added there is one a fixture can expect, with no list here to forget.
ACTION_KINDS = tuple(ACTIONS)
EVENT_KINDS = tuple(WIRE_EVENTS)
ActionKind = Annotated[
    str, AfterValidator(_one_of(ACTION_KINDS)), WithJsonSchema({"type": "string", "enum": list(ACTION_KINDS)})
]
EventKindName = Annotated[
    str, AfterValidator(_one_of(EVENT_KINDS)), WithJsonSchema({"type": "string", "enum": list(EVENT_KINDS)})
]


# Field docstrings become the fixture schema's descriptions (`fixture_schema.py`): an editor
# shows them on hover and with completion.
_DESCRIBED = ConfigDict(use_attribute_docstrings=True)


class FixtureGroup(Model):
    """A group present at the start: a `GroupRecord` as a fixture spells it."""

    model_config = _DESCRIBED

    id: str
    name: str | None = None
    tags: list[str] = []
    timezone: str | None = None
    operator: str | None = None
    owner: str | None = None

    def record(self) -> GroupRecord:
        """The group as the engine and the runtime take it."""
        return GroupRecord(self.id, self.name, tuple(self.tags), self.timezone, self.operator, self.owner)


class FixtureMembership(Model):
    """A member's group with their history in it: when they joined, when they last posted."""

    model_config = _DESCRIBED

    id: str
    joined: str | None = None
    """When the member joined this group, in the fixture's zone (before the start)."""
    last_message: str | None = None
    """When the member last posted in this group (before the start): their silence counts from it."""


class FixtureMember(Model):
    """A member present at the start: a `MemberRecord` as a fixture spells it (`joined` is a time
    in the fixture's zone, not epoch seconds; `tests/engine/test_records.py` holds the fields equal)."""

    model_config = _DESCRIBED

    id: str
    name: str | None = None
    nickname: str = ""
    tags: list[str] = []
    attributes: dict[str, Any] = {}
    counters: dict[str, float] = {}
    groups: list[str | FixtureMembership] = []
    """The member's groups: ids, or `{id, joined, last_message}` with their history in each."""
    joined: str | None = None
    """When the member joined, in the fixture's zone (`2025-12-01 09:00`)."""
    referrer: str | None = None
    channel: str | None = None
    contact: bool = False
    """Also a contact in private chats (a WeCom friend)."""
    owner: str | None = None
    """The contact's owner (跟进人)."""
    last_order: str | None = None
    """When the member last ordered, before the start: `no order for` counts from it."""

    @property
    def group_ids(self) -> list[str]:
        """The ids of the member's groups, however each is written."""
        return [g if isinstance(g, str) else g.id for g in self.groups]

    def times(self) -> list[tuple[str, tuple[Any, ...]]]:
        """Every time the member entry gives, with its path under the member (for checking)."""
        found: list[tuple[str, tuple[Any, ...]]] = []
        if self.joined is not None:
            found.append((self.joined, ("joined",)))
        for index, group in enumerate(self.groups):
            if not isinstance(group, str):
                found.extend(
                    (value, ("groups", index, name))
                    for name, value in (("joined", group.joined), ("last_message", group.last_message))
                    if value is not None
                )
        if self.last_order is not None:
            found.append((self.last_order, ("last_order",)))
        return found

    def record(self, epoch: Callable[[str], int]) -> MemberRecord:
        """The member as the engine and the runtime take it (`epoch` reads a time in the fixture's zone)."""
        entries = [g for g in self.groups if not isinstance(g, str)]
        return MemberRecord(
            id=self.id,
            name=self.name or self.id,
            nickname=self.nickname,
            tags=tuple(self.tags),
            attributes=dict(self.attributes),
            counters=dict(self.counters),
            groups=tuple(self.group_ids),
            joined_at=epoch(self.joined) if self.joined else None,
            referrer=self.referrer,
            channel=self.channel,
            contact=self.contact,
            owner=self.owner,
            group_joined_at={g.id: epoch(g.joined) for g in entries if g.joined},
            group_last_message_at={g.id: epoch(g.last_message) for g in entries if g.last_message},
            last_order_at=epoch(self.last_order) if self.last_order else None,
        )


class FixtureEvent(Model):
    """One event of the timeline, or a new version of the playbooks loaded at `at` (`reload`)."""

    model_config = _DESCRIBED

    at: str
    """When it happens, in the fixture's zone (`2026-03-02 10:00`); events are in time order."""
    kind: EventKindName | None = None
    """The event's kind (none for a `reload`)."""
    reload: str | list[str] | None = None
    """Playbook file(s) to load instead, relative to the fixture: a plan change at `at`."""
    member: str | None = None
    group: str | None = None
    name: str | None = None
    data: dict[str, Any] = {}
    id: str | None = None
    """The event id a bot would send: its actions' idempotency keys derive from it."""

    @property
    def is_reload(self) -> bool:
        """Whether the entry is a `reload` (even an empty one, which is then an error to report)."""
        return "reload" in self.model_fields_set

    @property
    def reload_files(self) -> tuple[str, ...]:
        """The playbook files a `reload` entry loads, as written (none for an ordinary event)."""
        if isinstance(self.reload, str):
            return (self.reload,)
        return tuple(self.reload or ())


PlanChangeName = Literal["moves", "finishes", "ends"]


class Expectation(Model):
    """An expected action or plan change (at a time, within a window, a number of times, or never),
    or member state."""

    model_config = _DESCRIBED

    action: ActionKind | None = None
    """The kind of action expected (leave out, with `plan_change`, for a check of member state)."""
    playbook: str | None = None
    """The playbook that acted, by name."""
    plan_change: PlanChangeName | None = None
    """A plan change expected for a flow at a `reload`."""
    member: str | None = None
    group: str | None = None
    template: str | None = None
    tag: str | None = None
    coupon: str | None = None
    to_group: str | None = None
    arm: str | None = None
    target: Literal["member", "group", "operator", "referrer", "owner"] | None = None
    operator: str | None = None
    assignee: str | None = None
    """Whom a task or an escalation goes to: the contact's owner, the group's operator, the chief owner."""
    call: str | None = None
    args: dict[str, Any] | None = None
    attachments: list[AttachmentType] | None = None
    """A send's attachments by type, in order (`[image, link]`; `[]`: none)."""
    mentions: list[str] | None = None
    """The members a group send @-mentions (`[new1]`; `[]`: nobody)."""
    status: Literal["done", "dropped", "blocked", "failed", "unassigned"] = "done"
    """How the action was logged: done; dropped (over a cap with `else drop`); blocked (a
    protected member, a limit); failed (its template or data failed); unassigned (a task for a
    member without an owner, or a group without an operator)."""
    at: str | None = None
    """Exactly at this time (for a state check: when to look)."""
    within: tuple[str, str] | None = None
    """Between these two times, both included."""
    count: int | None = None
    """Exactly this many matching actions (default: at least one)."""
    never: bool = False
    """No matching action at all."""
    tagged: list[str] | None = None
    not_tagged: list[str] | None = None
    attributes: dict[str, Any] | None = None
    counters: dict[str, float] | None = None
    in_group: str | None = None
    not_in_group: str | None = None
    note: str | None = None


class FixtureStaff(Model):
    """A staff member of the simulated community, by the name tasks are assigned to."""

    model_config = _DESCRIBED

    id: str
    """The name an owner, an operator or the chief owner is given by (`小美`)."""
    completes_tasks_after: str | None = None
    """How long they take to finish a task assigned to them (`30 minutes`, `30 分钟`); leave out:
    never."""


class Fixture(Model):
    """A whole fixture timeline."""

    model_config = _DESCRIBED

    playbook: str | None = None
    """The playbook file to run, relative to the fixture (default: the `.sop` of the same stem)."""
    description: str | None = None
    timezone: str | None = None
    """The zone of the fixture's times (default: the playbook's)."""
    start: str
    """When the dry run starts (`2026-03-01 09:00`)."""
    end: str | None = None
    """When it ends (default: at the last event or state check)."""
    seed: int = 0
    """The seed of the random choices (A/B splits)."""
    staff_completes_tasks_after: str | None = None
    """How long staff take to complete assigned tasks (`2 hours`, `3 小时`, as in a playbook); leave
    out: never."""
    staff: list[FixtureStaff] = []
    """Staff who finish their tasks after their own delay (or never), overriding the one above."""
    groups: list[FixtureGroup] = []
    members: list[FixtureMember] = []
    events: list[FixtureEvent] = []
    expect: list[Expectation] = []

    @field_validator("start", "end")
    @classmethod
    def _time(cls, value: str | None) -> str | None:
        if value is not None:
            parse_time(value)
        return value
