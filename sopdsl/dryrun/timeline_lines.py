"""The shapes a JSONL timeline's lines are decoded into (see `sopdsl.dryrun.timeline`).

Typed decoding checks field names and types in C, a block of lines at a time where it can: an
everyday event line straight into the engine's `Event` (`_Quick`), any event line with its time
as written (`_Event`), any line (`_ShallowLine`, `_Line`), and, for a shard of a sharded run, only
the time and member of a line it routes (`BareKey`).
"""

from __future__ import annotations

from collections.abc import Iterator
from operator import attrgetter
from typing import Annotated, Any, Literal, cast

import msgspec

from sopdsl.engine.events import Event
from sopdsl.limits import MAX_ID, event_data_problem, event_problem

_NEEDS_MORE = frozenset(("join", "leave", "tag", "untag", "rename", "custom", "task_done"))
KindName = Literal[
    "join", "leave", "message", "order", "invite", "report", "tag", "untag", "rename", "custom", "task_done"
]


class _Membership(msgspec.Struct, forbid_unknown_fields=True):
    """A member line's group with the member's history in it."""

    id: str
    joined: int | str | None = None
    last_message: int | str | None = None


# A payload of plain values: nested no deeper than the line itself, so a block of such lines needs
# no measure of its nesting (a line with lists or objects in its data is read on its own).
_Plain = dict[str, str | int | float | bool | None]


class _Line(msgspec.Struct, forbid_unknown_fields=True, rename={"time": "at"}):
    """Any line after the header: an event (with `kind`) or a member (with `id`)."""

    kind: KindName | None = None
    time: int | str | None = None
    member: str | None = None
    group: str | None = None
    name: str | None = None
    data: dict[str, Any] = {}
    id: str | None = None
    nickname: str = ""
    tags: list[str] = []
    attributes: dict[str, Any] = {}
    counters: dict[str, float] = {}
    groups: list[str | _Membership] = []
    joined: int | str | None = None
    referrer: str | None = None
    channel: str | None = None
    contact: bool = False
    owner: str | None = None
    last_order: int | str | None = None


class _EventLine(msgspec.Struct, forbid_unknown_fields=True, rename={"time": "at"}, gc=False):
    """An event line with nothing but an event's fields: most lines. Any other line (a member, a
    mistake) fails to decode as one and is read again as a `_Line`, whose checks say what it is."""

    kind: KindName
    time: int | str
    member: str | None = None
    group: str | None = None
    name: str | None = None
    data: dict[str, Any] = {}


class _ShallowLine(_Line):
    """Any line, with attributes and a payload of plain values (so nested no deeper than the
    line's own groups), which a block can be decoded into with no measure of its nesting."""

    attributes: _Plain = {}
    data: _Plain = {}


_Known = Annotated[str, msgspec.Meta(min_length=1)]
# An everyday line's ids within the live door's limit, checked in C as the line is decoded (a
# line over it is read again by `Timeline.checked`, which says what is wrong with it).
_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID)]
_IdOrNone = Annotated[str, msgspec.Meta(max_length=MAX_ID)] | None


class _Event(Event, forbid_unknown_fields=True, rename={"time": "at"}, gc=False):
    """An event line read as the engine's `Event` itself, its time still as written. `id` is not
    a field of an event line (it names a member): a block whose lines set it is read line by line."""

    kind: KindName
    time: int | str  # type: ignore[assignment]
    data: _Plain = {}


class _Quick(Event, forbid_unknown_fields=True, rename={"time": "at"}, gc=False):
    """An everyday event line, which the engine takes as it is decoded: a kind that needs nothing
    but a member, the member, a time in epoch seconds, a plain payload."""

    kind: Literal["join", "leave", "message", "order", "invite", "report"]
    time: int  # written again: a renaming holds for the fields a class defines itself
    member: _Id
    group: _IdOrNone = None
    data: _Plain = {}
    name: _IdOrNone = None


_LINE = msgspec.json.Decoder(_Line)
_EVENT_LINE = msgspec.json.Decoder(_EventLine)
_EVENT = msgspec.json.Decoder(_Event)
_SHALLOW_LINE = msgspec.json.Decoder(_ShallowLine)
_QUICK = msgspec.json.Decoder(_Quick)
TIME = attrgetter("time")
ID = attrgetter("id")


def one_a_line(block: bytes, values: int, lines: int) -> bool:
    """Whether a block of `lines` lines that decoded as `values` JSON objects holds one on each.

    A block's decoder reads JSON values apart by any whitespace: an object written over two
    lines, or two on one line, decode as well as one a line, and a blank line is skipped. Where
    every line but the last ends with `}` and the next begins with `{`, no line break is inside
    an object (JSON has no `}` then `{` inside one, and no line break inside a text), so each
    object is on a line of its own, and as many objects as lines is one on each.
    """
    if values != lines:
        return False
    inner = block.count(b"}\n{")
    if inner != lines - 1:
        inner += block.count(b"}\r\n{")
    return inner == lines - 1


class BareKey(msgspec.Struct, rename={"time": "at"}, gc=False):
    """What a shard of a sharded run decodes of the lines of the blocks it routes: when and whose.
    The other fields are skipped unchecked (the line's own shard checks them), a group's text
    unmade."""

    time: int
    member: _Known


BARE_KEYS = msgspec.json.Decoder(BareKey)


class _GroupKey(msgspec.Struct, gc=False):
    """A member line's group with history in it, of which a shard routing the line keeps the id."""

    id: str


class MemberKey(msgspec.Struct, gc=False):
    """What a shard of a sharded run decodes of the member lines of the blocks it routes: whose,
    and the groups they name. A line with a kind is an event: refused. The other fields are
    skipped unchecked (the line's own shard checks them)."""

    id: _Known
    groups: list[str | _GroupKey] = []
    kind: None = None


MEMBER_KEYS = msgspec.json.Decoder(MemberKey)
MEMBER = attrgetter("member")
GROUP = attrgetter("group")
DATA = attrgetter("data")


def may_hold_controls(block: bytes) -> bool:
    """Whether a block of JSON lines may hold a control character in a text: JSON writes C0 ones
    escaped, so only an escape (`\\`), DEL or a C1 one (UTF-8 `\\xc2\\x80`-`\\x9f`) can be one. A
    scan of the bytes in C, so the lines that hold none (most) are not searched text by text."""
    return b"\\" in block or b"\x7f" in block or b"\xc2" in block


def roster_end(block: bytes) -> int:
    """Where the member lines heading a block end, in a timeline whose events have not begun
    before it: the start of the first line holding `"kind"` (an event's field), or -1 if none
    does (members only)."""
    at = block.find(b'"kind"')
    return at if at < 0 else block.rfind(b"\n", 0, at) + 1


def cut_at_roster_end(blocks: Iterator[bytes]) -> Iterator[bytes]:
    """Blocks of whole lines, the one where the member lines end cut in two there: its members go
    by their route, its events the quick way, where that block would be read in full. Only where
    to cut (`shard_spans` cuts alike), never what a line means, so a `"kind"` in a member's
    attributes costs a block read in full, nothing more."""
    for block in blocks:
        end = roster_end(block)
        if end < 0:
            yield block  # members only: they go on
            continue
        if end:
            yield block[:end]
            block = block[end:]
        yield block
        yield from blocks
        return


def everyday_events(block: bytes, lines: int, whole: bool = False) -> list[Event] | None:
    """A block of lines decoded straight into the engine's events where every line is an everyday
    event line (`timeline_lines._Quick`), one a line, with no member field; else None. Their times
    are not checked (see `Timeline.follows`). `whole`: each line is known to hold one JSON value
    (a shard's lines of a block whose reader checked them all), so only the count is checked."""
    try:
        events = _QUICK.decode_lines(block)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    if not events or not (len(events) == lines if whole else one_a_line(block, len(events), lines)):
        return None
    if list(map(ID, events)).count(None) != len(events):  # `id` is a member line's field
        return None
    # Held to the live door's limits: its ids' lengths were checked as they were decoded; a
    # payload's names here, and control characters only in a block that may hold one.
    for event in filter(DATA, events):  # in C: most events have no payload
        data = event.data
        if (event.kind == "join" or "name" in data or "nickname" in data) and event_data_problem(
            event.kind, data
        ) is not None:
            return None
    if may_hold_controls(block) and any(
        event_problem(e.kind, e.member, e.group, e.name, None) for e in events
    ):
        return None
    return cast("list[Event]", events)
