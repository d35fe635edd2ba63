"""Events the engine consumes, and their validation at the edge (live API and fixtures)."""

from __future__ import annotations

from typing import Any

import msgspec

from sopdsl.errors import EngineError
from sopdsl.kinds import WIRE_EVENTS

KINDS = tuple(WIRE_EVENTS)  # the event names fixtures, timelines and the live API take


class Event(msgspec.Struct, gc=False):
    """Something that happened: a kind, when (epoch seconds), to whom, where, and a payload.

    A struct (made in C, one per line of a long timeline), not traced by the garbage collector:
    an event holds plain values and its payload, never a cycle back to itself.
    """

    kind: str
    time: int
    member: str | None = None
    group: str | None = None
    data: dict[str, Any] = {}  # a fresh dict per event, as msgspec copies a mutable default
    name: str | None = None  # custom event name, or the tag of tag/untag events
    # What the event is, for idempotency keys: the bot's event id, or where the runtime journaled
    # it ("shard:seq"). None: the engine numbers it in the order fed (a dry run).
    id: str | None = None


class BadEventError(EngineError, ValueError):
    """An event is malformed: the message says which field and why."""


def missing(
    kind: str, member: str | None, group: str | None, name: str | None, data: Any = None
) -> tuple[str, str] | None:
    """The field an event of this kind lacks, with the reason, or None if it has what it needs
    (`data`, when given, is checked for the payload a kind cannot do without)."""
    if kind not in KINDS:
        return "kind", f"unknown event kind {kind!r}; expected one of {', '.join(KINDS)}"
    spec = WIRE_EVENTS[kind]
    if spec.needs_member and not member:
        return "member", f"a {kind} event needs a member"
    if spec.needs_name and not name:
        return "name", f"a {kind} event needs a name (the tag, or the custom event's name)"
    if spec.needs_text is not None and isinstance(data, dict):
        # Empty text is a real value (a member who cleared their nickname); a missing one is a mistake.
        field, meaning = spec.needs_text
        if field not in data:
            return f"data.{field}", f"a {kind} event needs data.{field}: {meaning}"
        if not isinstance(data[field], str):
            return f"data.{field}", f"a {kind} event's {field} is text, got {data[field]!r}"
    return None


def validate(event: Event) -> None:
    """Raise `BadEventError` if an event lacks what its kind needs."""
    problem = missing(event.kind, event.member, event.group, event.name, event.data)
    if problem is not None:
        raise BadEventError(problem[1])
    if not isinstance(event.data, dict):
        raise BadEventError("event data must be an object")
