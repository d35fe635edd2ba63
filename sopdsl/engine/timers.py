"""Typed timers: what a heap entry does when it comes due, one small frozen record per kind.

A heap entry is `(due, playbook, member, group, seq, timer)`: ordered by the plain values in
front (`seq` is unique, so the record is never compared), and dispatched on the record's exact
type in a chain ending in `assert_never` (`Engine._fire`). The records are `@final`, which lets
mypy narrow `type(timer) is X`, so a new kind that nobody fires fails mypy.
A snapshot writes a record as its kind's number and its fields, the layout snapshots had when
timers were positional tuples (`[due, playbook, member, group, seq, kind, *fields]`), so a snapshot
written before still restores.
"""

from __future__ import annotations

import functools
from enum import IntEnum
from typing import Any, ClassVar, final

import msgspec
from msgspec.structs import astuple

from sopdsl.engine.actions import Action


class Timer(IntEnum):
    """A timer kind's number, as a snapshot writes it (never renumber one)."""

    RESUME = 0  # a `wait` is over
    TIMEOUT = 1  # a `wait ... for` or a task ran out of time
    ABSENCE = 2  # a silence deadline (`silent for`, `no order for`)
    DATE = 3  # a date trigger (`on member.birthday`)
    CAL = 4  # a calendar entry
    GROUP_SILENT = 5  # a group's silence
    DELIVER = 6  # an action the policy held back
    TASK_DONE = 7  # simulated staff finishing a task
    SILENCE_IN = 8  # a member's silence in one group (a group-scoped `silent for`)


TIMERS: tuple[Timer, ...] = tuple(Timer)  # by number: a timer read back from a snapshot is a plain int


@final
class Resume(msgspec.Struct, frozen=True, gc=False):
    """A `wait` is over: the flow goes on if it still holds this token."""

    KIND: ClassVar[Timer] = Timer.RESUME
    flow: int
    token: int


@final
class Timeout(msgspec.Struct, frozen=True, gc=False):
    """A `wait ... for` or a task ran out of time: the flow takes its `else` if it still holds the token."""

    KIND: ClassVar[Timer] = Timer.TIMEOUT
    flow: int
    token: int


@final
class Absence(msgspec.Struct, frozen=True, gc=False):
    """A member's silence deadline (`silent for`, `no order for`), re-checked when due."""

    KIND: ClassVar[Timer] = Timer.ABSENCE
    trigger: int


@final
class SilenceIn(msgspec.Struct, frozen=True, gc=False):
    """A member's silence in one group (a group-scoped `silent for`), re-checked when due."""

    KIND: ClassVar[Timer] = Timer.SILENCE_IN
    trigger: int
    group: str


@final
class DateDue(msgspec.Struct, frozen=True, gc=False):
    """A date trigger of a member's (`on member.birthday`)."""

    KIND: ClassVar[Timer] = Timer.DATE
    trigger: int


@final
class CalendarDue(msgspec.Struct, frozen=True, gc=False):
    """A calendar entry in a group, or (the private key) for the contacts of `in private chats`."""

    KIND: ClassVar[Timer] = Timer.CAL
    entry: int
    group: str


@final
class GroupSilent(msgspec.Struct, frozen=True, gc=False):
    """A group's silence deadline, re-checked when due."""

    KIND: ClassVar[Timer] = Timer.GROUP_SILENT
    trigger: int
    group: str


@final
class Deliver(msgspec.Struct, frozen=True):
    """An action the delivery policy held back, and the flow (id, token) it holds."""

    KIND: ClassVar[Timer] = Timer.DELIVER
    action: Action
    flow: int
    token: int


@final
class TaskDone(msgspec.Struct, frozen=True, gc=False):
    """Simulated staff finishing the task with this key."""

    KIND: ClassVar[Timer] = Timer.TASK_DONE
    task: str


TimerRecord = (
    Resume | Timeout | Absence | SilenceIn | DateDue | CalendarDue | GroupSilent | Deliver | TaskDone
)
RECORDS: dict[Timer, type[TimerRecord]] = {
    record.KIND: record
    for record in (Resume, Timeout, Absence, SilenceIn, DateDue, CalendarDue, GroupSilent, Deliver, TaskDone)
}
# One shared record per trigger (and group) for the timers every member has: a member's absence
# deadline differs from another's only in its heap entry, so 100k members share one record, not
# 100k (about 40 bytes a member at 100k x 90).
absence = functools.cache(Absence)
silence_in = functools.cache(SilenceIn)
date_due = functools.cache(DateDue)
_SHARED: dict[Timer, Any] = {Timer.ABSENCE: absence, Timer.SILENCE_IN: silence_in, Timer.DATE: date_due}


@functools.lru_cache(maxsize=4096)
def _written(timer: TimerRecord) -> tuple[str, str]:
    return f"{int(timer.KIND)}:", ":".join(map(str, fields_of(timer)))


def origin_text(timer: TimerRecord) -> tuple[str, str]:
    """A timer's kind number (with its colon) and its fields as a flow's origin writes them
    (`_Flows._origin`). A trigger's timers are few distinct values (a trigger, a group), so their
    text is kept; a flow's own timers, each different, are written each time."""
    if type(timer) in FLOW_TIMERS:
        return f"{int(timer.KIND)}:", ":".join(map(str, fields_of(timer)))
    return _written(timer)


# A flow's own timers, kept across a plan reload (a trigger's are armed again from the new version).
FLOW_TIMERS = (Resume, Timeout, Deliver, TaskDone)


def fields_of(timer: TimerRecord) -> tuple[Any, ...]:
    """A timer's fields in order: what a snapshot writes after its kind, as tuples were written."""
    match timer:
        case Deliver():
            return (timer.action, (timer.flow, timer.token))
        case _:
            return astuple(timer)


def from_fields(kind: Timer, fields: tuple[Any, ...]) -> TimerRecord:
    """A timer of a kind from the fields a snapshot read (the inverse of `fields_of`)."""
    record = RECORDS[kind]
    if record is Deliver:
        action, (flow, token) = fields
        return Deliver(action, flow, token)
    return _SHARED.get(kind, record)(*fields)  # type: ignore[no-any-return]
