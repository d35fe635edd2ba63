"""Members and groups held to the door's limits, whichever way they come in.

Input: a `MemberRecord` or a `GroupRecord`, from the admin API and its imports (`member_records`)
or from a bot through `Runtime.add_member`, `add_group` and `register`. Output: nothing, or
`RecordError` naming the field at fault, with the message the HTTP door gives. Without this the
Python API took what the service refuses: on SQLite an id over `MAX_ID`, never reachable over
HTTP again; on PostgreSQL the same id refused late, as a raw store error.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sopdsl.engine.records import GroupRecord, MemberRecord
from sopdsl.live.intake import (
    MAX_ID,
    EventError,
    control_in,
    name_problem,
    surrogate,
    too_long,
    with_control,
)

# Characters of an attribute's text value. A send renders it (`{{ member.city }}`), and every
# journal entry, snapshot and admin answer of the member carries it. WeCom sends a customer at
# most 4,000 bytes of text (SOP208), which 4,096 characters exceed whatever the script, so no
# value a message can carry whole is refused, while a 60 KB cell (an import line's limit) is.
MAX_TEXT = 4096


class RecordError(EventError):
    """A member or group that cannot be registered: the message names the field (`field`); in a
    `Runtime.register` call, `index` is the record's place and the message starts with it."""

    def __init__(self, message: str, field: str | None = None, index: int | None = None) -> None:
        super().__init__(message, field)
        self.index = index
        if index is not None:  # an `EventError` would say "event"
            self.args = (f"record {index}: {message}",)


def check_member(record: MemberRecord) -> None:
    """Raise `RecordError` for a member field over its limit or holding what no field may."""
    ident(record.id)
    _names(record, ("name", "nickname"), ("owner",))
    # A member's groups, referrer and the groups of its history are ids the engine acts on (a
    # send to the group, a reward to the referrer), so they are held to an event's rules for ids.
    for index, group in enumerate(record.groups):
        ident(group, f"groups.{index}")
    if record.referrer is not None:
        ident(record.referrer, "referrer")
    for history in ("group_joined_at", "group_last_message_at"):
        for group in getattr(record, history):
            ident(group, history, f"a group of {history}")
    _labels(record.tags, record.channel)
    # Names a playbook reads them by (`member.city`, `member.points`), as an event's tag is.
    for kind in ("attributes", "counters"):
        for key in getattr(record, kind):
            label(key, kind, f"the name of one of {kind}")
    for key, value in record.attributes.items():
        if isinstance(value, str) and len(value) > MAX_TEXT:
            raise RecordError(
                f"attributes.{key} is {len(value)} characters long; a text attribute is at most {MAX_TEXT}",
                f"attributes.{key}",
            )


def check_group(record: GroupRecord) -> None:
    """Raise `RecordError` for a group field over its limit or holding what no field may."""
    ident(record.id)
    _names(record, ("name",), ("operator", "owner"))
    _labels(record.tags, None)


def check(record: GroupRecord | MemberRecord, index: int | None = None) -> None:
    """Raise `RecordError` for a record the admin API refuses, worded as its answer is (`member
    'm1': tags.0 is ...`); `index`: its place among those registered together."""
    try:
        if isinstance(record, MemberRecord):
            check_member(record)
        else:
            check_group(record)
    except RecordError as exc:
        raise RecordError(f"{_named(record)}: {exc.reason}", exc.field, index) from None


def _named(record: GroupRecord | MemberRecord) -> str:
    """`member 'm1'` (as the admin API answers), its id cut and escaped if it is at fault."""
    kind = "member" if isinstance(record, MemberRecord) else "group"
    shown = record.id if isinstance(record.id, str) else repr(record.id)
    shown = json.dumps(shown[:64] + ("…" if len(shown) > 64 else ""), ensure_ascii=False)[1:-1]
    return f"{kind} '{shown}'"


def ident(value: Any, field: str = "id", what: str | None = None) -> str:
    """`value` if it is an id (text, not empty, within `MAX_ID`, no control character), else
    `RecordError` naming `field` (as `what` in its message)."""
    what = what or ("the id" if field == "id" else field)
    if not isinstance(value, str):
        raise RecordError(f"{what} should be text, got {type(value).__name__}", field)
    if not value.strip():
        raise RecordError(f"{what} is empty", field)
    if surrogate(value) is not None:
        raise RecordError(f"{what} holds a lone surrogate (half of a character)", field)
    if "\x00" in value:  # as an event's member or group (intake): PostgreSQL keeps no NUL in text
        raise RecordError(f"{what} holds a NUL character (\\u0000)", field)
    control = control_in(value)
    if control is not None:  # as an event's (intake): it would forge lines of the log
        raise RecordError(with_control(what, control), field)
    if len(value) > MAX_ID:  # as an event's (intake): PostgreSQL indexes no longer id
        raise RecordError(too_long(what, len(value)), field)
    return value


def label(value: Any, field: str, what: str | None = None) -> None:
    """Raise `RecordError` for a label (a tag, a channel, an attribute's or counter's name) that is
    not text, over `MAX_ID` or holding a control character, as an event's tag name is refused."""
    what = what or field
    if not isinstance(value, str):
        raise RecordError(f"{what} should be text, got {type(value).__name__}", field)
    if len(value) > MAX_ID:
        raise RecordError(too_long(what, len(value)), field)
    control = control_in(value)
    if control is not None:
        shown = json.dumps(control)[1:-1]
        raise RecordError(
            f"{what} holds a control character ({shown}); tags, channels and the names of "
            "attributes and counters hold none, as ids",
            field,
        )


def _labels(tags: Iterable[Any], channel: Any) -> None:
    for index, tag in enumerate(tags):
        label(tag, f"tags.{index}")
    if channel is not None:
        label(channel, "channel")


def _names(record: Any, names: tuple[str, ...], staff: tuple[str, ...]) -> None:
    """Raise `RecordError` for a name field (`staff`: the name of staff) too long or holding a
    control character, as an event's `data.name` is refused (`intake.name_problem`)."""
    for field in (*names, *staff):
        value = getattr(record, field)
        if value is None:
            continue
        if not isinstance(value, str):
            raise RecordError(f"{field} should be text, got {type(value).__name__}", field)
        problem = name_problem(field, value, staff=field in staff)
        if problem is not None:
            raise RecordError(problem, field)
