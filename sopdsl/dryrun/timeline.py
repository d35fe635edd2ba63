"""JSONL timelines: large generated timelines, streamed line by line into the engine.

Input: a `.jsonl` file. Line 1 is a header object (`"sopdsl": "timeline"`, zone, start, end,
seed, groups); each later line is a member present at the start (`"id"`) or an event (`"kind"`),
with the same fields as a YAML fixture's members and events. Output: a `Header` and a stream of
`Member` records and `Event`s, read lazily so a million-event file never sits in memory. A bad
line is a diagnostic naming the file, line and field; the reader keeps reading after the first
one so every mistake is reported together (up to a limit), then raises `FixtureError`. The
limits of `sopdsl.dryrun.fixtures` hold here too: times in FIRST_YEAR..LAST_YEAR, a run of at most
MAX_SPAN_YEARS from the start, lines nested at most MAX_DEPTH deep.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Literal

import msgspec

from sopdsl.diagnostics import Diagnostic, Severity
from sopdsl.dryrun.fixtures import MAX_DEPTH, span_problem
from sopdsl.dryrun.history import HISTORY_KINDS
from sopdsl.dryrun.timeline_checks import (
    _MEMBER_FIELDS as _MEMBER_FIELDS,  # re-exported: tests/engine/test_records.py reads it here
)
from sopdsl.dryrun.timeline_checks import _brackets, _epoch, _event_ok, _member_ok, _Problems
from sopdsl.dryrun.timeline_header import _GROUP_FIELDS as _GROUP_FIELDS  # re-exported, as above
from sopdsl.dryrun.timeline_header import FORMAT as FORMAT
from sopdsl.dryrun.timeline_header import Header as Header
from sopdsl.dryrun.timeline_header import decode_any, read_header
from sopdsl.engine.events import Event, missing
from sopdsl.engine.records import GroupRecord, MemberRecord
from sopdsl.errors import FixtureError
from sopdsl.plan import timeutil
from sopdsl.source import Span

_NEEDS_MORE = frozenset(("join", "leave", "tag", "untag", "rename", "custom", "task_done"))
KindName = Literal[
    "join", "leave", "message", "order", "invite", "report", "tag", "untag", "rename", "custom", "task_done"
]


class _Membership(msgspec.Struct, forbid_unknown_fields=True):
    """A member line's group with the member's history in it."""

    id: str
    joined: int | str | None = None
    last_message: int | str | None = None


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


_LINE = msgspec.json.Decoder(_Line)
_EVENT_LINE = msgspec.json.Decoder(_EventLine)


Group = GroupRecord  # a group of the header (the old name kept)
Member = MemberRecord  # a member line, times already in epoch seconds (the old name kept)


class Timeline:
    """An open JSONL timeline: its header is read; `records()` streams the rest once."""

    def __init__(self, stream: IO[bytes], shown: str, default_zone: str, size: int | None = None) -> None:
        self._stream = stream
        self.shown = shown
        self.size = size  # bytes, for a progress bar; None when unknown
        self.read_bytes = 0
        self._problems = _Problems(shown)
        raw = stream.readline()
        self._line = 1
        self.read_bytes += len(raw)
        # The header, and the latest instant the run may reach (epoch seconds).
        self.header, self.horizon = read_header(raw, self._problems, default_zone)
        self._tz = timeutil.zone(self.header.timezone)
        self._times: dict[str, int] = {}

    def close(self) -> None:
        """Close the file under the timeline."""
        self._stream.close()

    def _start_shown(self) -> str:
        return timeutil.local(self.header.start, self._tz).strftime("%Y-%m-%d %H:%M")

    # ---- lines -------------------------------------------------------------------------------

    def records(self) -> Iterator[Member | Event]:
        """Members (all before the first event), then events in time order, as the file lists them.

        Raises `FixtureError` with every problem found (up to a limit) once the file is read; after
        the first problem nothing more is yielded, but the rest of the file is still checked.
        """
        problems = self._problems
        found = problems.found  # the list itself: problems are appended to it
        start = self.header.start
        horizon = self.horizon
        latest = -(2**62)  # events before the start are history (of the kinds that can be)
        seen_event = False
        line = self._line
        decode = _LINE.decode
        decode_event = _EVENT_LINE.decode
        needs_more = _NEEDS_MORE
        for raw in self._stream:
            line += 1
            self.read_bytes += len(raw)
            # Rarely a line has many brackets: then its nesting is measured first (and refused
            # past MAX_DEPTH, reported), so nothing deeper reaches the engine.
            if (
                len(raw) > MAX_DEPTH
                and _brackets(raw) > MAX_DEPTH
                and decode_any(self._problems, raw, line) is None
            ):
                if problems.full():
                    break
                continue
            # Typed decoding checks field names and types in C: an event line with only an
            # event's fields (most lines) needs few checks more, and a common one none. Any
            # other line is decoded as any line; one that fails that too is looked at again,
            # slowly, to say what is wrong with it.
            rec: _EventLine | _Line
            kind: KindName | None
            try:
                rec = decode_event(raw)
                kind = rec.kind
            except (msgspec.ValidationError, msgspec.DecodeError):
                try:
                    rec = decode(raw)
                except (msgspec.ValidationError, msgspec.DecodeError):
                    self._explain(raw, line, seen_event)
                    if problems.full():
                        break
                    continue
                kind = rec.kind
                if kind is None:
                    if seen_event:
                        problems.add(
                            line, "members come before the first event (they are present at the start)"
                        )
                    else:
                        member = self._member(rec, line)
                        if member is not None and not problems.found:
                            yield member
                    if problems.full():
                        break
                    continue
                seen_event = True
                if (
                    rec.id is not None
                    or rec.joined is not None
                    or rec.groups
                    or rec.tags
                    or rec.contact
                    or rec.owner
                ):
                    problems.add(line, "an event line has member fields (id, joined, groups, tags, ...)")
                    if problems.full():
                        break
                    continue
            seen_event = True
            at = rec.time
            member_id = rec.member
            if (
                type(at) is int
                and kind not in needs_more
                and member_id is not None
                and latest <= at <= horizon
            ):
                # What the checks below would pass without a word, passed at once.
                latest = at
                if not found:
                    yield Event(kind, at, member_id, rec.group, rec.data, rec.name)
                continue
            if type(at) is not int:
                at = self._time(at, line)
                if at is None:
                    if problems.full():
                        break
                    continue
            if kind in needs_more or member_id is None:
                problem = missing(kind, member_id, rec.group, rec.name, rec.data)
                if problem is not None:
                    problems.add(line, f"{problem[0]}: {problem[1]}")
                    if problems.full():
                        break
                    continue
            if at < latest or (at < start and kind not in HISTORY_KINDS):
                shown = at if isinstance(rec.time, int) else rec.time
                if at < latest:
                    problems.add(
                        line,
                        f"at: {shown} is before the event above it; list events in time order",
                        code="SOP603",
                    )
                else:
                    problems.add(
                        line,
                        f"at: {shown} is before the start, and a {kind} event cannot be history "
                        f"(events before the start may be: {', '.join(HISTORY_KINDS)})",
                    )
                if problems.full():
                    break
                continue
            if at > horizon:
                shown = at if isinstance(rec.time, int) else rec.time
                problems.add(line, f"at: {span_problem(shown, self._start_shown())}")
                if problems.full():
                    break
                continue
            latest = at
            if not problems.found:
                yield Event(kind, at, member_id, rec.group, rec.data, rec.name)
        self._line = line
        problems.raise_if_any()

    def _explain(self, raw: bytes, line: int, seen_event: bool) -> None:
        """Say what is wrong with a line the typed decoder refused."""
        before = len(self._problems.found)
        obj = decode_any(self._problems, raw, line)
        if obj is None:
            return  # not JSON (reported), or a blank line (allowed)
        if type(obj) is not dict:
            self._problems.add(
                line, "each line is a JSON object: a member (with 'id') or an event (with 'kind')"
            )
        elif "reload" in obj:
            self._problems.add(
                line,
                "reload: a JSONL timeline cannot load another plan version",
                "dry-run a plan change in a YAML fixture (`- {at: ..., reload: FILE.sop}`), see docs/testing.md",
            )
        elif "kind" in obj:
            _event_ok(self._problems, obj, line)
        elif not seen_event:
            _member_ok(self._problems, obj, line)
        if len(self._problems.found) == before:
            try:
                _LINE.decode(raw)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                self._problems.add(line, str(exc).replace("`$.", "`").replace("`$`", "the line"))

    def _time(self, value: Any, line: int) -> int | None:
        if isinstance(value, str):
            known = self._times.get(value)
            if known is not None:
                return known
        try:
            instant = _epoch(value, self._tz)
        except ValueError as exc:
            self._problems.add(line, f"at: {exc}")
            return None
        if isinstance(value, str):
            if len(self._times) > 100_000:
                self._times.clear()
            self._times[value] = instant
        return instant

    def _member(self, rec: _Line, line: int) -> Member | None:
        if not rec.id:
            self._problems.add(line, "id: a member line needs a text 'id' (an event line needs 'kind')")
            return None
        if rec.time is not None or rec.member is not None or rec.data:
            self._problems.add(
                line, "a member line has event fields (at, member, data); an event needs 'kind'"
            )
            return None
        joined = last_order = None
        entries = [g for g in rec.groups if not isinstance(g, str)]
        history: dict[str, dict[str, int]] = {"joined": {}, "last_message": {}}
        try:
            where = "joined"
            joined = _epoch(rec.joined, self._tz) if rec.joined is not None else None
            where = "last_order"
            last_order = _epoch(rec.last_order, self._tz) if rec.last_order is not None else None
            for index, entry in enumerate(entries):
                for name in history:
                    value = getattr(entry, name)
                    if value is not None:
                        where = f"groups.{index}.{name}"
                        history[name][entry.id] = _epoch(value, self._tz)
        except ValueError as exc:
            self._problems.add(line, f"{where}: {exc}")
            return None
        late = [v for v in (last_order, *history["joined"].values(), *history["last_message"].values()) if v]
        if any(v > self.header.start for v in late):
            self._problems.add(
                line, "a member's history (groups' joined and last_message, last_order) is before the start"
            )
            return None
        return MemberRecord(
            id=rec.id,
            name=rec.name or "",
            nickname=rec.nickname,
            tags=tuple(rec.tags),
            attributes=rec.attributes,
            counters=rec.counters,
            groups=tuple(g if isinstance(g, str) else g.id for g in rec.groups),
            joined_at=joined,
            referrer=rec.referrer,
            channel=rec.channel,
            contact=rec.contact,
            owner=rec.owner,
            group_joined_at=history["joined"],
            group_last_message_at=history["last_message"],
            last_order_at=last_order,
        )


def open_timeline(path: Path, shown: str, default_zone: str) -> Timeline:
    """Open a JSONL timeline and read its header; raise `FixtureError` if it cannot be used."""
    try:
        stream = path.open("rb")
        size = path.stat().st_size
    except OSError as exc:
        raise FixtureError(
            [Diagnostic("SOP601", Severity.ERROR, f"cannot read timeline: {exc}", Span.point(shown))]
        ) from None
    try:
        return Timeline(stream, shown, default_zone, size)
    except FixtureError:
        stream.close()
        raise


def is_jsonl(path: Path) -> bool:
    """Whether a timeline path is JSONL (by its suffix) rather than a YAML fixture."""
    return path.suffix in (".jsonl", ".ndjson")
