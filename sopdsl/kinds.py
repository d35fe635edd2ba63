"""The one registry of the language's kinds: events, triggers, actions, and the built-in fields and counters.

Every list that names them is derived from here: the engine's and the live API's event names, the
fixture and timeline readers, the formatter's trigger phrases, the executors' action kinds, what
the action describers show, the template context. `tests/test_kinds.py` walks the registry and
fails for a kind some place does not handle. Pure data: imports nothing from sopdsl but the
shared enums, so every stage can read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sopdsl.enums import EventKind, ValueType


@dataclass(frozen=True, slots=True)
class EventSpec:
    """An event kind: its name on the wire (fixtures, timelines, the live API), the payload fields a
    playbook may read as `event.NAME`, how a playbook says `on ...` for it, and what it needs."""

    kind: EventKind
    wire: str
    fields: dict[str, ValueType]
    phrase: str | None  # `on member joins`; None where the trigger is spelled otherwise
    needs_member: bool = True
    needs_name: bool = False  # the tag, or the custom event's declared name
    # A text field of the payload the kind cannot do without, and what it holds (its error says so).
    needs_text: tuple[str, str] | None = None


EVENTS: dict[EventKind, EventSpec] = {
    spec.kind: spec
    for spec in (
        EventSpec(
            EventKind.JOIN, "join", {"channel": ValueType.TEXT, "inviter": ValueType.TEXT}, "member joins"
        ),
        EventSpec(EventKind.LEAVE, "leave", {}, "member leaves"),
        EventSpec(
            EventKind.MESSAGE,
            "message",
            {"text": ValueType.TEXT, "has_image": ValueType.BOOL},
            "member posts",
        ),
        EventSpec(
            EventKind.ORDER,
            "order",
            {"amount": ValueType.NUMBER, "order_id": ValueType.TEXT},
            "member orders",
        ),
        EventSpec(EventKind.INVITE, "invite", {"invitee": ValueType.TEXT}, "member invites"),
        EventSpec(EventKind.REPORT, "report", {"reason": ValueType.TEXT}, "member is reported"),
        EventSpec(EventKind.TAGGED, "tag", {"tag": ValueType.TEXT}, None, needs_name=True),
        EventSpec(EventKind.UNTAGGED, "untag", {"tag": ValueType.TEXT}, None, needs_name=True),
        EventSpec(
            EventKind.RENAME,
            "rename",
            {"nickname": ValueType.TEXT},
            "member renames",
            needs_text=("nickname", "the member's new group nickname"),
        ),
        EventSpec(EventKind.CUSTOM, "custom", {}, None, needs_name=True),
        # Raised by the engine when staff finish an assigned task; a playbook cannot write it.
        EventSpec(EventKind.TASK_DONE, "task_done", {"task": ValueType.TEXT}, None, needs_member=False),
    )
}
WIRE_EVENTS: dict[str, EventSpec] = {spec.wire: spec for spec in EVENTS.values()}


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """An action kind the engine decides and an executor carries out; `subject` names the detail
    field that says what it acts with (the template, the coupon...), for the one-line descriptions."""

    name: str
    subject: str | None


ACTIONS: dict[str, ActionSpec] = {
    spec.name: spec
    for spec in (
        ActionSpec("send", "template"),
        ActionSpec("tag", "tags"),
        ActionSpec("untag", "tags"),
        ActionSpec("kick", None),
        ActionSpec("grant", "coupon"),
        ActionSpec("invite", "to_group"),
        ActionSpec("task", None),
        # A task still undone at its deadline, to the policy's chief owner (`escalate tasks to`).
        ActionSpec("escalate", "assignee"),
        ActionSpec("call", "action"),
        ActionSpec("dissolve", None),
        ActionSpec("draw", None),
    )
}


@dataclass(frozen=True, slots=True)
class TriggerSpec:
    """A trigger kind: its name (the `kind` of its `sopdsl.lang` trigger), whom the flows it starts
    are for, and whether the engine arms a timer for it (else events alone fire it)."""

    name: str
    subject: str  # "member", or "group" (a group-level flow, or the group's owner)
    timed: bool


# In the order the engine arms them for a member (and so the order of same-instant timers).
TRIGGERS: dict[str, TriggerSpec] = {
    spec.name: spec
    for spec in (
        TriggerSpec("event", "member", timed=False),
        TriggerSpec("absence", "member", timed=True),
        TriggerSpec("date_offset", "member", timed=True),
        TriggerSpec("anniversary", "member", timed=True),
        TriggerSpec("threshold", "member", timed=False),
        TriggerSpec("group_size", "group", timed=False),
        TriggerSpec("group_silent", "group", timed=True),
    )
}

# Records of a decision that failed on a member's data (a `when` or an `if` condition, a `set`
# whose arithmetic divides by zero): logged and stored like actions, never executed.
RECORDS: dict[str, ActionSpec] = {
    "when": ActionSpec("when", None),
    "if": ActionSpec("if", None),
    "set": ActionSpec("set", "field"),
}


def subject_of(kind: str, detail: dict[str, Any]) -> str:
    """What an action acts with, in a word, for one-line descriptions ('' when nothing)."""
    spec = ACTIONS.get(kind) or RECORDS.get(kind)
    if spec is None or spec.subject is None:
        return ""
    value = detail.get(spec.subject)
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return "" if value is None else str(value)


# Counters the engine keeps itself, from the events it sees (None: only changed by steps).
BUILTIN_COUNTERS: dict[str, EventKind | None] = {
    "messages": EventKind.MESSAGE,
    "orders": EventKind.ORDER,
    "invites": EventKind.INVITE,
    "violations": EventKind.REPORT,
    "spent": None,  # sum of order amounts
    "points": None,  # only changed by `add N to member.points`
}

# The member's own fields (the record's), as templates and conditions read them.
MEMBER_RECORD_FIELDS: dict[str, ValueType] = {
    "id": ValueType.TEXT,
    "name": ValueType.TEXT,
    "nickname": ValueType.TEXT,
    "channel": ValueType.TEXT,
    "referrer": ValueType.TEXT,
    "joined_at": ValueType.DATETIME,
    "last_message_at": ValueType.DATETIME,
    "last_order_at": ValueType.DATETIME,
}
MEMBER_FIELDS: dict[str, ValueType] = {
    **MEMBER_RECORD_FIELDS,
    **dict.fromkeys(BUILTIN_COUNTERS, ValueType.NUMBER),
}
# The fields a template sees as text (`{{ member.name }}`); the times are read by conditions.
MEMBER_TEXT_FIELDS = tuple(name for name, kind in MEMBER_RECORD_FIELDS.items() if kind is ValueType.TEXT)

GROUP_FIELDS: dict[str, ValueType] = {
    "id": ValueType.TEXT,
    "name": ValueType.TEXT,
    "size": ValueType.NUMBER,
    "owner": ValueType.TEXT,
    "operator": ValueType.TEXT,
}
