"""Members and groups held to the door's limits, whichever way they come in.

Input: a `MemberRecord` or a `GroupRecord`, from the admin API and its imports (`member_records`)
or from a bot through `Runtime.add_member`, `add_group` and `register`. Output: nothing, or
`RecordError` naming the field at fault, with the message the HTTP door gives. Without this the
Python API took what the service refuses: on SQLite an id over `MAX_ID`, never reachable over
HTTP again; on PostgreSQL the same id refused late, as a raw store error.
"""

from __future__ import annotations

import json
from typing import Any

from sopdsl.engine.record_checks import group_problems, member_problems
from sopdsl.engine.records import GroupRecord, MemberRecord
from sopdsl.limits import MAX_TEXT as MAX_TEXT  # where the admin's tests name it
from sopdsl.limits import id_problem, label_problem
from sopdsl.live.intake import EventError


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
    for field, problem in member_problems(record):
        raise RecordError(problem, field)


def check_group(record: GroupRecord) -> None:
    """Raise `RecordError` for a group field over its limit or holding what no field may."""
    for field, problem in group_problems(record):
        raise RecordError(problem, field)


def check(record: GroupRecord | MemberRecord, index: int | None = None) -> None:
    """Raise `RecordError` for a record the admin API refuses, worded as its answer is (`member
    'm1': tags.0 is ...`); `index`: its place among those registered together."""
    problems = member_problems(record) if isinstance(record, MemberRecord) else group_problems(record)
    for field, problem in problems:
        raise RecordError(f"{_named(record)}: {problem}", field, index)


def _named(record: GroupRecord | MemberRecord) -> str:
    """`member 'm1'` (as the admin API answers), its id cut and escaped if it is at fault."""
    kind = "member" if isinstance(record, MemberRecord) else "group"
    shown = record.id if isinstance(record.id, str) else repr(record.id)
    shown = json.dumps(shown[:64] + ("…" if len(shown) > 64 else ""), ensure_ascii=False)[1:-1]
    return f"{kind} '{shown}'"


def ident(value: Any, field: str = "id", what: str | None = None) -> str:
    """`value` if it is an id (text, not empty, within `MAX_ID`, no control character), else
    `RecordError` naming `field` (as `what` in its message)."""
    problem = id_problem(value, what or ("the id" if field == "id" else field))
    if problem is not None:
        raise RecordError(problem, field)
    return str(value)


def label(value: Any, field: str, what: str | None = None) -> None:
    """Raise `RecordError` for a label (a tag, a channel, an attribute's or counter's name) that is
    not text, over `MAX_ID` or holding a control character, as an event's tag name is refused."""
    problem = label_problem(value, what or field)
    if problem is not None:
        raise RecordError(problem, field)
