"""A careful engine for bench/reference.sop: the five rules by hand, written to be fast.

The baseline the engine has to beat (issue 11). Where bench/simple.py ticks hour by hour and
scans every member, this one does what a good engineer writes for these five rules and nothing
else:

- it reads the JSONL timeline itself, a megabyte at a time, each line decoded by msgspec straight
  into a small struct (no generic dicts, no second validation);
- it merges the event stream with one heap of timers keyed on plain integers
  (`due << 26 | kind << 24 | index`), at most one live entry per member and kind;
- a message touches no heap: it stores the member's last-message time. A silence deadline only
  ever moves later, so its heap entry stays where it was armed and is re-armed when it pops early
  (the same for the year without an order);
- calendar days are plain seconds when the zone keeps one UTC offset over the whole run (Asia/
  Shanghai does), and zone arithmetic otherwise;
- texts are the templates cut once around `{{ member.name }}`, so a send is a string join.

Same-instant order is the engine's (bench/simple.py's docstring): an instant's events first, then
what falls due at it by playbook order, member id, group id. Its log, as rows, must equal the
engine's; as written by `log_writer`, it is the engine's JSONL log line for line with the
idempotency keys made its own way (the engine's key scheme is internal to it), at the same cost.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import heapq
import itertools
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

import msgspec
from jinja2 import Environment, StrictUndefined

Row = tuple[Any, ...]  # (time, kind, playbook, member, group, what, text, status), as bench/simple.py
Sink = Callable[[Row], None]

DAY = 86400
SILENCE_DAYS, WARNING_DAYS, NO_ORDER_DAYS = 28, 3, 365
PROTECTED = frozenset({"core", "staff"})
PRUNE_SCOPE = frozenset({"normal", "edu"})
# (weekday, hour, minute, template) of the Tuesday-class reminders (every tuesday at 20:00 - 1 day,
# - 2 hours, + 1 day at 10:00).
CLASS = [(0, 20, 0, "class_preview"), (1, 18, 0, "class_countdown"), (2, 10, 0, "class_replay")]
WORTH = 50.0  # coupon new50's worth, which the engine's grant records

# Heap entry kinds, and the parts of an integer heap key.
SILENCE, TIMEOUT, CADENCE, NO_ORDER = range(4)
SHIFT, KIND_SHIFT, INDEX_MASK = 26, 24, (1 << 24) - 1
_NAME = re.compile(r"\{\{\s*member\.name\s*\}\}")


class _Data(msgspec.Struct, gc=False):
    name: str | None = None


class _Group(msgspec.Struct, gc=False):
    id: str
    tags: list[str] = []


class _Header(msgspec.Struct):
    start: int
    end: int | None = None
    groups: list[_Group] = []


class _Line(msgspec.Struct, gc=False):
    """An event line, or (without `at`) a member record: every field either may have."""

    at: int = -1
    kind: str = ""
    member: str = ""
    group: str = ""
    data: _Data | None = None
    id: str = ""
    name: str | None = None
    groups: tuple[str, ...] = ()  # tuples: an empty default allocates nothing
    tags: tuple[str, ...] = ()


class _Member:
    """What the five rules need to know of a member, and nothing more."""

    __slots__ = (
        "arrived",
        "groups",
        "id",
        "index",
        "last_message",
        "last_order",
        "name",
        "no_order_armed",
        "no_order_since",
        "protected",
        "reactivated",
        "scoped",
        "silence_armed",
        "silence_since",
        "wait_group",
        "wait_until",
        "welcomed",
    )

    def __init__(self, member_id: str, index: int, name: str) -> None:
        self.id = member_id
        self.index = index
        self.name = name
        self.groups: tuple[str, ...] = ()
        self.scoped = 0  # how many of its groups prune_silent covers
        self.protected = False  # tagged core or staff; no rule adds or removes those tags
        self.last_message = 0
        self.last_order = 0
        self.silence_since: int | None = None  # prune_silent's count runs from here (None: off)
        self.silence_armed = False  # a SILENCE entry is in the heap
        self.no_order_since: int | None = None
        self.no_order_armed = False
        self.wait_until: int | None = None  # a warned member's last chance to post
        self.wait_group = ""
        self.welcomed = self.reactivated = self.arrived = False


class _Template:
    """A template cut around `{{ member.name }}`: rendering is a join, checked against Jinja once."""

    def __init__(self, source: str) -> None:
        if "{" in _NAME.sub("", source):
            raise ValueError(f"careful: a template uses more than member.name: {source!r}")
        jinja = Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
        probe = "\x00name\x00"
        self.parts = jinja.from_string(source).render({"member": {"name": probe}}).split(probe)
        self.fixed = self.parts[0].strip() if len(self.parts) == 1 else None

    def text(self, name: str) -> str:
        """The text sent to a member of this name, as the engine renders and strips it."""
        return self.fixed if self.fixed is not None else name.join(self.parts).strip()


def read_lines(stream: BinaryIO, block: int = 1 << 20) -> Iterator[list[_Line]]:
    """The lines after the header, decoded a block at a time."""
    decode = msgspec.json.Decoder(_Line).decode_lines
    rest = b""
    while chunk := stream.read(block):
        chunk = rest + chunk
        cut = chunk.rfind(b"\n") + 1
        rest = chunk[cut:]
        if cut:
            yield decode(chunk[:cut])
    if rest.strip():
        yield decode(rest)


class Calendar:
    """Calendar-day arithmetic: plain seconds where the zone keeps one offset, datetime otherwise."""

    def __init__(self, zone: str, low: int, high: int) -> None:
        self.tz = ZoneInfo(zone)
        # The same offset every twelve hours of the window: no transition in it (real ones last months).
        step = DAY // 2
        offsets = {
            dt.datetime.fromtimestamp(t, self.tz).utcoffset() for t in range(low - DAY, high + DAY, step)
        }
        only = next(iter(offsets)) if len(offsets) == 1 else None
        self.offset = None if only is None else int(only.total_seconds())
        self._days: dict[int, str] = {}
        self._last: tuple[int, str] = (-1, "")
        if self.offset is not None:
            sign = "+" if self.offset >= 0 else "-"
            self._suffix = f"{sign}{abs(self.offset) // 3600:02d}:{abs(self.offset) % 3600 // 60:02d}"

    def add_days(self, epoch: int, days: int) -> int:
        """The same wall-clock time `days` calendar days later."""
        if self.offset is not None:
            return epoch + days * DAY
        moment = dt.datetime.fromtimestamp(epoch, self.tz) + dt.timedelta(days=days)
        return int(moment.timestamp())

    def iso(self, epoch: int) -> str:
        """ISO 8601 local time with its offset, as the engine's log writes it."""
        if epoch == self._last[0]:  # actions come in bursts at one instant
            return self._last[1]
        if self.offset is None:
            text = dt.datetime.fromtimestamp(epoch, self.tz).isoformat()
            self._last = (epoch, text)
            return text
        local = epoch + self.offset
        day, second = divmod(local, DAY)
        prefix = self._days.get(day)
        if prefix is None:
            prefix = self._days[day] = dt.date.fromordinal(day + 719163).isoformat() + "T"
        text = f"{prefix}{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}{self._suffix}"
        self._last = (epoch, text)
        return text

    def class_times(self, start: int, end: int) -> list[tuple[int, str]]:
        """The Tuesday-class reminders in [start, end], in time order."""
        found = []
        day = dt.datetime.fromtimestamp(start, self.tz).date()
        last = dt.datetime.fromtimestamp(end, self.tz).date()
        while day <= last:
            for weekday, hour, minute, template in CLASS:
                if day.weekday() == weekday:
                    wall = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=self.tz)
                    moment = int(wall.timestamp())
                    if start <= moment <= end:
                        found.append((moment, template))
            day += dt.timedelta(days=1)
        return sorted(found)


class CarefulEngine:
    """The five reference playbooks over one JSONL timeline; the header is read on creation.

    `zone` is the playbooks' (the header's zone only reads naive times, which generated timelines
    do not have).
    """

    def __init__(self, templates: dict[str, str], zone: str, stream: BinaryIO) -> None:
        self.templates = {name: _Template(source) for name, source in templates.items()}
        self.stream = stream
        header = msgspec.json.decode(stream.readline(), type=_Header)
        self.start = header.start
        self.end = header.end if header.end is not None else header.start
        self.calendar = Calendar(zone, self.start, self.end)
        self.normal = {g.id for g in header.groups if "normal" in g.tags}  # welcome's groups
        self.scope = {g.id for g in header.groups if PRUNE_SCOPE.intersection(g.tags)}  # prune_silent's
        self.edu = sorted(g.id for g in header.groups if "edu" in g.tags)  # class_cadence's
        self.members: dict[str, _Member] = {}
        self.by_index: list[_Member] = []
        self.schedule = self.calendar.class_times(self.start, self.end)
        self.heap = [
            (moment << SHIFT) | (CADENCE << KIND_SHIFT) | i for i, (moment, _) in enumerate(self.schedule)
        ]
        heapq.heapify(self.heap)
        self.sink: Sink = lambda row: None

    # ---- members and timers --------------------------------------------------------------------

    def _member(self, member_id: str, name: str | None) -> _Member:
        index = len(self.by_index)
        if index > INDEX_MASK:
            raise ValueError(f"careful: more than {INDEX_MASK + 1:,} members")
        m = self.members[member_id] = _Member(member_id, index, name or member_id)
        self.by_index.append(m)
        return m

    def _push(self, due: int, kind: int, m: _Member) -> None:
        heapq.heappush(self.heap, (due << SHIFT) | (kind << KIND_SHIFT) | m.index)

    def _count_silence(self, m: _Member, since: int) -> None:
        m.silence_since = since
        if not m.silence_armed:  # an armed entry is due no later than this count's deadline
            m.silence_armed = True
            self._push(self.calendar.add_days(since, SILENCE_DAYS), SILENCE, m)

    def _count_no_order(self, m: _Member, since: int) -> None:
        m.no_order_since = since
        if not m.no_order_armed:
            m.no_order_armed = True
            self._push(self.calendar.add_days(since, NO_ORDER_DAYS), NO_ORDER, m)

    def _record(self, line: _Line) -> None:
        """A member present before the window: counts start at the window's start."""
        m = self._member(line.id, line.name)
        m.arrived = True
        m.protected = not PROTECTED.isdisjoint(line.tags)
        m.groups = tuple(dict.fromkeys(line.groups))
        m.scoped = sum(g in self.scope for g in m.groups)
        if m.scoped:
            self._count_silence(m, self.start)
        if m.groups:
            self._count_no_order(m, self.start)

    # ---- events --------------------------------------------------------------------------------

    def _join(self, m: _Member, group: str, data: _Data | None, now: int) -> None:
        if data is not None and data.name:
            m.name = data.name
        if group not in m.groups:
            scoped_before, had_groups = m.scoped, bool(m.groups)
            m.groups += (group,)
            m.scoped += group in self.scope
            if not m.arrived:
                m.arrived = True
                if m.scoped:
                    self._count_silence(m, now)
                self._count_no_order(m, now)
            else:  # entering a playbook's scope anew restarts its count, as the engine does
                if m.scoped and not scoped_before:
                    self._count_silence(m, now)
                if not had_groups:
                    self._count_no_order(m, now)
        spam = m.name.startswith("AAA")
        if group in self.normal and not m.welcomed and not spam:
            m.welcomed = True
            sink = self.sink
            sink((now, "send", "welcome", m.id, group, "welcome", self._text("welcome", m), "done"))
            sink((now, "grant", "welcome", m.id, group, "new50", None, "done"))
            sink((now, "tag", "welcome", m.id, group, "newcomer", None, "done"))
        if spam and not m.protected:
            self._kick(now, "kick_spam", m, group, "广告号")

    def _leave(self, m: _Member, group: str) -> None:
        if group in m.groups:
            m.groups = tuple(g for g in m.groups if g != group)
            m.scoped -= group in self.scope
        if m.wait_group == group:
            m.wait_until = None

    def _kick(self, now: int, playbook: str, m: _Member, group: str, reason: str) -> None:
        # Never blocked: both callers pass over core and staff members, and no rule tags anyone so.
        self.sink((now, "kick", playbook, m.id, group, reason, None, "done"))
        self._leave(m, group)

    def _text(self, template: str, m: _Member) -> str:
        return self.templates[template].text(m.name)

    # ---- what falls due ------------------------------------------------------------------------

    def _moved(self, key: int, instant: int) -> bool:
        """Re-arm a silence or no-order entry that popped before its count's deadline; True if so."""
        kind = key >> KIND_SHIFT & 3
        if kind == SILENCE:
            m = self.by_index[key & INDEX_MASK]
            since = m.silence_since
            if since is None:
                m.silence_armed = False
                return True
            due = self.calendar.add_days(max(since, m.last_message), SILENCE_DAYS)
        elif kind == NO_ORDER:
            m = self.by_index[key & INDEX_MASK]
            since = m.no_order_since
            if since is None:
                m.no_order_armed = False
                return True
            due = self.calendar.add_days(max(since, m.last_order), NO_ORDER_DAYS)
        else:
            return False
        if due == instant:
            return False
        heapq.heappush(self.heap, (due << SHIFT) | (key & ((1 << SHIFT) - 1)))
        return True

    def _order(self, key: int) -> tuple[int, str, str, str]:
        """Same-instant order: playbook, member id, group id (then prune before its timeout)."""
        kind = key >> KIND_SHIFT & 3
        if kind == CADENCE:
            return (3, "", "", "")
        m = self.by_index[key & INDEX_MASK]
        if kind == SILENCE:
            return (2, m.id, "", "prune")
        if kind == TIMEOUT:
            return (2, m.id, m.wait_group, "timeout")
        return (4, m.id, "", "react")

    def _instant(self, instant: int) -> None:
        """Everything due at one instant, after that instant's events."""
        heap = self.heap
        moved = self._moved
        # Only a member's own firing changes its counts, so moved deadlines can be re-armed first.
        batch = [key for key in _pop_instant(heap, instant) if not moved(key, instant)]
        if len(batch) > 1:
            batch.sort(key=self._order)
        for key in batch:
            self._fire(instant, key)

    def _fire(self, now: int, key: int) -> None:
        kind, index = key >> KIND_SHIFT & 3, key & INDEX_MASK
        sink = self.sink
        if kind == CADENCE:
            template = self.schedule[index][1]
            text = self.templates[template].text("")
            for group in self.edu:
                sink((now, "send", "class_cadence", None, group, template, text, "done"))
            return
        m = self.by_index[index]
        if kind == SILENCE:
            m.silence_armed = False
            m.silence_since = None
            if not m.scoped or m.protected:
                return
            group = min(g for g in m.groups if g in self.scope)
            text = self._text("we_miss_you", m)
            sink((now, "send", "prune_silent", m.id, group, "we_miss_you", text, "done"))
            m.wait_until, m.wait_group = self.calendar.add_days(now, WARNING_DAYS), group
            self._push(m.wait_until, TIMEOUT, m)
        elif kind == TIMEOUT:
            if m.wait_until == now:  # else the member posted, left or was warned again since
                m.wait_until = None
                self._kick(now, "prune_silent", m, m.wait_group, "潜水超过四周")
        else:
            m.no_order_armed = False
            m.no_order_since = None
            if not m.groups or m.reactivated:
                return
            m.reactivated = True
            group = min(m.groups)
            sink((now, "tag", "reactivate", m.id, group, "dormant", None, "done"))
            sink((now, "send", "reactivate", m.id, group, "come_back", self._text("come_back", m), "done"))

    def _due_before(self, moment: int) -> None:
        """Fire every instant before `moment` (and not after the end)."""
        heap, limit = self.heap, min(moment, self.end + 1) << SHIFT
        while heap and heap[0] < limit:
            self._instant(heap[0] >> SHIFT)

    # ---- the loop ------------------------------------------------------------------------------

    def run(self, sink: Sink) -> None:
        """Run the whole timeline; each action goes to `sink` as a row."""
        self.sink = sink
        members, heap, due_before = self.members, self.heap, self._due_before
        count_silence, count_no_order = self._count_silence, self._count_no_order
        for lines in read_lines(self.stream):
            for line in lines:
                now = line.at
                if now < 0:
                    self._record(line)
                    continue
                if heap and heap[0] < now << SHIFT:
                    due_before(now)
                kind = line.kind
                m = members.get(line.member)
                if m is None:
                    m = self._member(line.member, line.data.name if line.data else None)
                if kind == "message":
                    # The silence deadline moves without touching the heap; see `_moved`.
                    m.last_message = now
                    if m.silence_since is None and m.scoped:
                        count_silence(m, now)
                    m.wait_until = None  # a warned member who posts is kept
                elif kind == "join":
                    self._join(m, line.group, line.data, now)
                elif kind == "order":
                    m.last_order = now
                    if m.no_order_since is None and m.groups:
                        count_no_order(m, now)
                elif kind == "leave":
                    self._leave(m, line.group)
                else:
                    raise ValueError(f"careful: the reference playbooks do not expect {kind!r} events")
        due_before(self.end + 1)


def _pop_instant(heap: list[int], instant: int) -> list[int]:
    """Pop every entry due at `instant` (the heap's first)."""
    batch = [heapq.heappop(heap)]
    while heap and heap[0] >> SHIFT == instant:
        batch.append(heapq.heappop(heap))
    return batch


# ---- the log -------------------------------------------------------------------------------------


def log_writer(out: BinaryIO, calendar: Calendar) -> Sink:
    """Write each row as the engine's JSONL log line (keys sorted), with a key of its own."""
    encode = msgspec.json.Encoder().encode  # the dicts below are built in sorted key order
    write, iso, sha256 = out.write, calendar.iso, hashlib.sha256
    count = [0]

    def log(row: Row) -> None:
        now, kind, playbook, member, group, what, text, status = row
        count[0] += 1
        # Unique per action and the same on every run, like the engine's (whose scheme is its own).
        key = sha256(f"{count[0]}|{playbook}|{member or ''}|{group}|{now}".encode()).hexdigest()[:24]
        at = iso(now)
        data: dict[str, Any]
        if kind == "send":
            target = "group" if member is None else "member"
            data = {"at": at, "channel": None, "group": group, "key": key, "kind": kind, "member": member}
            data |= {"playbook": playbook, "status": status, "target": target, "template": what, "text": text}
        elif kind == "grant":
            data = {"at": at, "coupon": what, "group": group, "key": key, "kind": kind, "member": member}
            data |= {"playbook": playbook, "status": status, "target": "member", "worth": WORTH}
        elif kind == "tag":
            data = {"at": at, "group": group, "key": key, "kind": kind, "member": member}
            data |= {"playbook": playbook, "status": status, "tags": [what], "target": "member"}
        else:
            data = {"at": at, "group": group, "key": key, "kind": kind, "member": member}
            data |= {"playbook": playbook, "because": what, "status": status, "target": "member"}
        write(encode(data) + b"\n")

    return log


def run_file(templates: dict[str, str], zone: str, timeline: Path, log: Path | None) -> list[Row]:
    """Run a timeline file; write the JSONL log to `log`, or return the rows when it is None."""
    rows: list[Row] = []
    with timeline.open("rb") as stream:
        engine = CarefulEngine(templates, zone, stream)
        if log is None:
            engine.run(rows.append)
        else:
            with log.open("wb") as out:
                engine.run(log_writer(out, engine.calendar))
    return rows


def first_difference(engine_log: Path, careful_log: Path) -> str | None:
    """Where two JSONL logs differ, idempotency keys aside; None when they are the same."""
    decode = msgspec.json.Decoder().decode
    with engine_log.open("rb") as ours, careful_log.open("rb") as theirs:
        for number, (a, b) in enumerate(itertools.zip_longest(ours, theirs), 1):
            if a is None or b is None:
                return f"line {number}: one log ends, the other has {a or b!r}"
            left, right = decode(a), decode(b)
            left.pop("key", None)
            right.pop("key", None)
            if left != right:
                return f"line {number}: engine {left} != careful {right}"
    return None
