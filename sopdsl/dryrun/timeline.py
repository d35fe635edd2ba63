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

import io
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple, cast

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
from sopdsl.dryrun.timeline_lines import (
    _EVENT,
    _EVENT_LINE,
    _LINE,
    _NEEDS_MORE,
    _SHALLOW_LINE,
    ID,
    TIME,
    _Event,
    _EventLine,
    _Line,
    _ShallowLine,
    cut_at_roster_end,
    everyday_events,
    may_hold_controls,
    one_a_line,
)
from sopdsl.engine.events import Event, missing
from sopdsl.engine.record_checks import member_problems
from sopdsl.engine.records import GroupRecord, MemberRecord
from sopdsl.errors import FixtureError
from sopdsl.limits import MAX_ID, event_problem
from sopdsl.plan import timeutil
from sopdsl.source import Span

BLOCK = 1 << 20  # bytes read and decoded at once (`shard_spans` cuts blocks as `chunks` does)


class Chunk(NamedTuple):
    """A block of whole lines of a timeline: the number of its first line, how many, its bytes."""

    line: int
    lines: int
    data: bytes


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
        self._start = self.header.start
        self._latest = -(2**62)  # events before the start are history (of the kinds that can be)
        self._seen_event = False
        self._controls = True  # whether the block being checked may hold a control character
        # Member ids whose lines another process checks (a shard of a sharded run): of those
        # lines only the id and groups are kept, unchecked.
        self.others: Callable[[str], bool] | None = None

    def close(self) -> None:
        """Close the file under the timeline."""
        self._stream.close()

    def fileno(self) -> int:
        """The file descriptor of the file under the timeline (for `shard_spans`)."""
        return self._stream.fileno()

    def _start_shown(self) -> str:
        return timeutil.local(self.header.start, self._tz).strftime("%Y-%m-%d %H:%M")

    # ---- lines -------------------------------------------------------------------------------

    def records(self) -> Iterator[Member | Event]:
        """Members (all before the first event), then events in time order, as the file lists them.

        Raises `FixtureError` with every problem found (up to a limit) once the file is read; after
        the first problem nothing more is yielded, but the rest of the file is still checked.
        """
        return itertools.chain.from_iterable(self.blocks())

    def blocks(self) -> Iterator[list[Member | Event]]:
        """The records of `records()`, a block of lines (about a megabyte) at a time, none empty."""
        problems = self._problems
        for chunk in self.chunks():
            records = self.quick(chunk)
            if records is None:
                records = self.checked(chunk)  # only what comes before a problem
            elif problems.found:
                records = []
            if records:
                yield records
            if problems.full():
                break
        problems.raise_if_any()

    def chunks(self) -> Iterator[Chunk]:
        """The rest of the file as blocks of whole lines, the block where the member lines end cut
        there (`roster_end`)."""
        for block in cut_at_roster_end(self._whole_lines()):
            yield self.counted(block)

    def _whole_lines(self) -> Iterator[bytes]:
        read = self._stream.read
        parts: list[bytes] = []
        while chunk := read(BLOCK):
            cut = chunk.rfind(b"\n") + 1
            if not cut:  # a line longer than a block: read on to its end
                parts.append(chunk)
                continue
            block = chunk[:cut]
            if parts:
                block = b"".join((*parts, block))
            parts = [chunk[cut:]] if cut < len(chunk) else []
            yield block
        if parts:
            yield b"".join(parts)

    def counted(self, block: bytes) -> Chunk:
        """The next block of whole lines as a `Chunk`, its lines counted as read."""
        lines = block.count(b"\n") + (not block.endswith(b"\n"))
        chunk = Chunk(self._line + 1, lines, block)
        self._line += lines
        self.read_bytes += len(block)
        return chunk

    def passed(self, lines: int, size: int) -> None:
        """Count a block of `lines` lines and `size` bytes as read, though not read here."""
        self._line += lines
        self.read_bytes += size

    def quick(self, chunk: Chunk) -> list[Member | Event] | None:
        """The events of a block of everyday event lines, checked in C (a block of such lines in
        time order, with no member line, text time or kind needing more than a member), or None
        for a block `checked` must read."""
        events = everyday_events(chunk.data, chunk.lines)
        if events is None:
            return None
        times = list(map(TIME, events))
        if not self.follows(times):
            return None
        self.took(times[-1])
        return cast("list[Member | Event]", events)

    def follows(self, times: list[int]) -> bool:
        """Whether a block's event times (epoch seconds, in file order) follow the blocks before."""
        return self._latest <= times[0] and self.in_order(times)

    def in_order(self, times: list[int]) -> bool:
        """Whether a block's event times are in order, from the start to the run's horizon."""
        return self._start <= times[0] and times[-1] <= self.horizon and times == sorted(times)

    def continues(self, first: int) -> bool:
        """Whether a block whose first event is at `first` follows the blocks read so far."""
        return self._latest <= first

    def took(self, latest: int) -> None:
        """Count the events of a block as read, the latest at `latest` (a block `follows` passed)."""
        self._latest = latest
        self._seen_event = True

    def raise_problems(self) -> None:
        """Raise `FixtureError` with the problems found so far, if any."""
        self._problems.raise_if_any()

    def checked(self, chunk: Chunk) -> list[Member | Event]:
        """The records of a block of lines, every one checked; those before the first problem
        found (in the block or before it)."""
        out: list[Member | Event] = []
        found = self._problems.found
        block, line = chunk.data, chunk.line
        self._controls = may_hold_controls(block)
        try:
            records: list[_Event] | None = _EVENT.decode_lines(block)
        except (msgspec.ValidationError, msgspec.DecodeError):
            records = None
        if (
            records is not None
            and one_a_line(block, len(records), chunk.lines)
            and list(map(ID, records)).count(None) == len(records)
        ):
            for record in records:
                self._event(record, line, out)
                line += 1
                if found and self._problems.full():
                    break
            return out
        try:  # members (and events): their lines read alike
            lines: list[_ShallowLine] | None = _SHALLOW_LINE.decode_lines(block)
        except (msgspec.ValidationError, msgspec.DecodeError):
            lines = None
        if lines is not None and one_a_line(block, len(lines), chunk.lines):
            for index, rec in enumerate(lines):
                if rec.kind is not None and index and not self._seen_event:
                    # The first event after the members: the rest of the block may be everyday events.
                    rest = Chunk(line, chunk.lines - index, block.split(b"\n", index)[-1])
                    events = self.quick(rest)
                    if events is not None:
                        if not found:
                            out.extend(events)
                        return out
                self._record(rec, line, out)
                line += 1
                if found and self._problems.full():
                    break
            return out
        for raw in io.BytesIO(block):  # lines as a file gives them, each with its newline
            self._line_of(raw, line, out)
            line += 1
            if found and self._problems.full():
                break
        return out

    def _line_of(self, raw: bytes, line: int, out: list[Member | Event]) -> None:
        """Read one line: any record, or any mistake it makes."""
        problems = self._problems
        if not raw.strip():
            return  # a blank line is allowed
        # Rarely a line has many brackets: then its nesting is measured first (and refused past
        # MAX_DEPTH, reported), so nothing deeper reaches the engine.
        if len(raw) > MAX_DEPTH and _brackets(raw) > MAX_DEPTH and decode_any(problems, raw, line) is None:
            return
        # Typed decoding checks field names and types in C; a line that fails it (a member, a
        # mistake) is decoded as any line, and one that fails that too is looked at again,
        # slowly, to say what is wrong with it.
        try:
            self._event(_EVENT_LINE.decode(raw), line, out)
            return
        except (msgspec.ValidationError, msgspec.DecodeError):
            pass
        try:
            rec = _LINE.decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError):
            self._explain(raw, line, self._seen_event)
            return
        self._record(rec, line, out)

    def _record(self, rec: _Line, line: int, out: list[Member | Event]) -> None:
        """Check a line decoded as any line: a member, or an event with no member field."""
        problems = self._problems
        if rec.kind is None:
            if self._seen_event:
                problems.add(line, "members come before the first event (they are present at the start)")
            else:
                others = self.others
                member: Member | None
                if others is not None and rec.id and others(rec.id):
                    member = MemberRecord(
                        rec.id, groups=tuple(g if isinstance(g, str) else g.id for g in rec.groups)
                    )
                else:
                    member = self._member(rec, line)
                if member is not None and not problems.found:
                    out.append(member)
            return
        self._seen_event = True
        if rec.id is not None or rec.joined is not None or rec.groups or rec.tags or rec.contact or rec.owner:
            problems.add(line, "an event line has member fields (id, joined, groups, tags, ...)")
            return
        self._event(rec, line, out)

    def _event(self, rec: _Event | _EventLine | _Line, line: int, out: list[Member | Event]) -> None:
        """Check one decoded event line; add its event to `out` if it is fine and nothing was found before."""
        problems = self._problems
        self._seen_event = True
        kind = rec.kind
        assert kind is not None
        at = rec.time
        member_id = rec.member
        if (
            self._controls
            or rec.data
            or len(member_id or "") > MAX_ID
            or len(rec.group or "") > MAX_ID
            or len(rec.name or "") > MAX_ID
        ):
            # Held to the live door's limits (`sopdsl.limits`), as an everyday block is.
            refused = event_problem(kind, member_id, rec.group, rec.name, rec.data)
            if refused is not None:
                problems.add(line, f"{refused[0]}: {refused[1]}")
                return
        if (
            type(at) is int
            and kind not in _NEEDS_MORE
            and member_id  # an empty id is no member (said below)
            and self._latest <= at <= self.horizon
        ):
            # What the checks below would pass without a word, passed at once.
            self._latest = at
            if not problems.found:
                out.append(
                    rec
                    if isinstance(rec, Event)
                    else Event(kind, at, member_id, rec.group, rec.data, rec.name)
                )
            return
        if type(at) is not int:
            at = self._time(at, line)
            if at is None:
                return
        if kind in _NEEDS_MORE or not member_id:
            problem = missing(kind, member_id, rec.group, rec.name, rec.data)
            if problem is not None:
                problems.add(line, f"{problem[0]}: {problem[1]}")
                return
        if at < self._latest or (at < self._start and kind not in HISTORY_KINDS):
            shown = at if isinstance(rec.time, int) else rec.time
            if at < self._latest:
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
            return
        if at > self.horizon:
            shown = at if isinstance(rec.time, int) else rec.time
            problems.add(line, f"at: {span_problem(shown, self._start_shown())}")
            return
        self._latest = at
        if not problems.found:
            if isinstance(rec, Event):
                rec.time = at
                out.append(rec)
            else:
                out.append(Event(kind, at, member_id, rec.group, rec.data, rec.name))

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
        last_order = None
        history: dict[str, dict[str, int]] | None = None  # None: no history (most members)
        # Most members have no history but when they joined: their groups are plain texts.
        entries = [g for g in rec.groups if not isinstance(g, str)]
        try:
            where = "joined"
            joined = _epoch(rec.joined, self._tz) if rec.joined is not None else None
            if rec.last_order is not None or entries:
                history = {"joined": {}, "last_message": {}}
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
        late = (last_order, *history["joined"].values(), *history["last_message"].values()) if history else ()
        if any(v and v > self.header.start for v in late):
            self._problems.add(
                line, "a member's history (groups' joined and last_message, last_order) is before the start"
            )
            return None
        member = MemberRecord(
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
            group_joined_at=None if history is None else history["joined"],  # None: a fresh {}
            group_last_message_at=None if history is None else history["last_message"],
            last_order_at=last_order,
        )
        # Held to the live service's limits, as the admin API holds a member (`sopdsl.limits`).
        refused = list(member_problems(member, history=False))
        for field, problem in refused:
            self._problems.add(line, f"{field}: {problem}")
        return None if refused else member


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
