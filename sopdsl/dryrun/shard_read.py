"""What one process of a sharded dry run reads of a JSONL timeline (see `sopdsl.dryrun.shard`).

Input: an open `Timeline`, the process's end of the run's exchange (`shard_exchange`), and the
groups the run has met. Output: the timeline a block at a time, as a `Part` (a block of everyday
event lines: this shard's events, decoded straight into the engine's events, with their numbers
among all the block's events), as `Members` (a block of member lines: this shard's members, and
every group the block names) or, for any other block, its records read and checked in full as
one process reads them (history, text times, kinds that need more than a member, the block where
the members end, a line with a mistake).

Before its run, each shard decodes the keys (`timeline_lines.BareKey`: time and member, or
`MemberKey`: id and groups) of its share of the blocks and writes every shard its route of each
(`route_blocks`): enough to number every event as the whole timeline does, to check the file's
time order (in C, over the block's times, and from block to block by each shard as it reads),
and to give each shard its own lines. A shard reads the bytes of its share of the blocks and of
those with no route only: where the others begin and end is found without them (`shard_spans`).
Each line is checked in full by the shard whose member it names, the groups its event names too,
so every mistake is found by one of them; a shard stops at the first one, and the run is made
again in one process, which reports them all.
"""

from __future__ import annotations

import functools
import itertools
import zlib
from collections.abc import Container, Iterator, Sequence
from dataclasses import dataclass

import msgspec

from sopdsl.dryrun.shard_exchange import Exchange, MemberRoute, Route
from sopdsl.dryrun.shard_spans import read_span, spans
from sopdsl.dryrun.shard_steps import UnshardableError
from sopdsl.dryrun.timeline import Chunk, Member, Timeline
from sopdsl.dryrun.timeline_lines import (
    BARE_KEYS,
    GROUP,
    ID,
    MEMBER,
    MEMBER_KEYS,
    TIME,
    everyday_events,
    one_a_line,
)
from sopdsl.engine.events import Event


@dataclass
class Part:
    """A block of everyday event lines, as one shard reads it."""

    events: list[Event]  # this shard's, in file order
    numbers: list[int]  # theirs among the block's events, from 1
    count: int  # the block's events, every shard's
    last: int  # the time of the block's last event


@dataclass
class Members:
    """A block of member lines, as one shard reads it."""

    groups: list[str]  # every group the block's lines name, every shard's, in the order first named
    members: list[Member]  # this shard's, in file order


def shard_blocks(
    timeline: Timeline, exchange: Exchange, known: Container[str] | None = None
) -> Iterator[Part | Members | list[Member | Event]]:
    """The timeline's blocks as the shard of `exchange` reads them, each by its route. With
    `known` (the groups the run has met, which only grow), a block where this shard's events name
    another group is not a `Part`: its records are yielded, for the caller to check
    (`named_groups`). Raises `FixtureError` at the first block with a problem."""
    for number, (start, end) in enumerate(spans(timeline)):
        route = exchange.take(number)
        if isinstance(route, MemberRoute):
            yield _members(timeline, route, end - start)
            continue
        part = _routed(timeline, route, known, end - start)
        if part is not None:
            yield part  # its bytes not read: the route holds all this shard needs of them
            continue
        chunk = timeline.counted(read_span(timeline, start, end))
        records = timeline.quick(chunk)
        if records is None:
            records = timeline.checked(chunk)
            timeline.raise_problems()
        yield records
    timeline.raise_problems()


def shard_of(member: str, shards: int) -> int:
    """The shard of a member: CRC-32 of its id's UTF-8 bytes, modulo the number of shards."""
    return zlib.crc32(member.encode("utf-8", "surrogatepass")) % shards


class Owners(dict[str, bool]):
    """Whether this shard owns a member, by member id, each found once (`shard_of`): one table
    for a shard's member lines, history and events, since a member is met in all three."""

    def __init__(self, shard: int, shards: int) -> None:
        super().__init__()
        self.shard, self.shards = shard, shards

    def __missing__(self, member: str) -> bool:
        mine = self[member] = shard_of(member, self.shards) == self.shard
        return mine


def route_blocks(timeline: Timeline, exchange: Exchange) -> None:
    """Decode the keys of the blocks this shard reads, and write every shard (this one too) its
    route of each. The other blocks are not read (`shard_spans`)."""
    for number, (start, end) in enumerate(spans(timeline)):
        if exchange.reads(number):
            block = read_span(timeline, start, end)
            exchange.give(number, _routes(timeline, block, exchange.shards))


def _routes(timeline: Timeline, block: bytes, shards: int) -> list[Route | MemberRoute | None]:
    """Each shard's route of a block of everyday event lines or of member lines (None for all if
    it is neither)."""
    try:
        keys = BARE_KEYS.decode_lines(block)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return _member_routes(block, shards)
    lines = _lines(block)
    if not keys or not one_a_line(block, len(keys), len(lines)):
        return [None] * shards
    times = list(map(TIME, keys))
    if not timeline.in_order(times):
        return [None] * shards
    selectors = _selectors(_owners(list(map(MEMBER, keys)), shards), shards)
    routes: list[Route | MemberRoute | None] = []
    for theirs in selectors:
        numbers = list(itertools.compress(range(1, len(keys) + 1), theirs))
        joined = b"\n".join(itertools.compress(lines, theirs)) if numbers else b""
        routes.append((times[0], times[-1], len(keys), numbers, joined))
    return routes


def _member_routes(block: bytes, shards: int) -> list[Route | MemberRoute | None]:
    """Each shard's route of a block of member lines (None for all if it is not one): its own
    lines, and every group the block names, which each shard knows as one process does."""
    if b'"kind"' in block:
        # Events (where the members end, most likely): read in full, not decoded here in vain.
        return [None] * shards
    lines = _lines(block)
    try:
        keys = MEMBER_KEYS.decode_lines(block)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return [None] * shards
    if not keys or not one_a_line(block, len(keys), len(lines)):
        return [None] * shards
    named = [g if isinstance(g, str) else g.id for key in keys for g in key.groups]
    groups = list(dict.fromkeys(named))
    selectors = _selectors(_owners(list(map(ID, keys)), shards), shards)
    routes: list[Route | MemberRoute | None] = []
    for theirs in selectors:
        joined = b"\n".join(itertools.compress(lines, theirs))
        routes.append(MemberRoute(joined, len(keys), groups))
    return routes


def _lines(block: bytes) -> list[bytes]:
    """A block's lines, without their newlines."""
    lines = block.split(b"\n")
    if not lines[-1]:
        del lines[-1]  # after the last line's newline
    return lines


def _owners(members: list[str], shards: int) -> list[int]:
    """The shard of each member (`shard_of`), found in C."""
    # Worked out again for each line rather than kept by id: a line's id is a new string, whose
    # hash and lookup in a table of 100,000 ids cost more than its CRC-32 does. The ids encode
    # strictly: the keys' decoder refuses a lone surrogate, and its block is read in full.
    return list(map(shards.__rmod__, map(zlib.crc32, map(str.encode, members))))


def _selectors(owner: list[int], shards: int) -> list[Sequence[int]]:
    """For each shard, 1 for each of a block's lines that is its own and 0 for the others' (from
    each line's shard, `_owners`): what `itertools.compress` takes its lines and numbers by."""
    if shards > 256:  # past what a byte holds: compared one by one
        return [list(map(shard.__eq__, owner)) for shard in range(shards)]
    # A byte a line, each shard's made by one translation in C: a third of what comparing each
    # line's shard to each shard costs.
    lines = bytes(owner)
    return [lines.translate(_only(shard)) for shard in range(shards)]


@functools.cache
def _only(shard: int) -> bytes:
    """The translation of a byte to 1 if it is `shard`, else to 0."""
    return bytes(int(value == shard) for value in range(256))


def _members(timeline: Timeline, route: MemberRoute, size: int) -> Members:
    """A block of `size` bytes of member lines, read by its route: this shard's lines checked in
    full as one process checks them (their line numbers are not the file's: a shard's mistakes
    are said again by one process), the others' not read at all."""
    own: list[Member] = []
    if route.lines:
        chunk = Chunk(0, route.lines.count(b"\n") + 1, route.lines)
        for record in timeline.checked(chunk):
            if not isinstance(record, Member):  # never: the route's lines name no kind
                raise UnshardableError("a member line read as an event; run in one process")
            own.append(record)
        timeline.raise_problems()
    timeline.passed(route.count, size)
    return Members(route.groups, own)


def _routed(timeline: Timeline, route: Route | None, known: Container[str] | None, size: int) -> Part | None:
    """A block of `size` bytes read as a `Part` from its route, or None if it is not one (its lines
    are then read in full): it must follow the blocks before, and this shard's events name only
    groups of `known` (if given; each event's groups are checked by the shard of its member)."""
    if route is None:
        return None
    first, last, count, numbers, lines = route
    if not timeline.continues(first):
        return None  # out of order with the block before: read in full, which says so
    if numbers:
        # This shard's lines, whole: the block's lines but the others' (the last needs no newline).
        # Each a whole line holding one value: the block's reader checked every line of it.
        events = everyday_events(lines, len(numbers), whole=True)
        if events is None:
            return None  # one of them is not an everyday event line (or has a mistake): read in full
        if known is not None:
            named = set(map(GROUP, events))
            named.discard(None)
            if not all(map(known.__contains__, named)):
                return None  # a group not met: read in full, for the caller to check (`named_groups`)
    else:
        events = []
    timeline.took(last)
    timeline.passed(count, size)  # a route's block holds an event a line
    return Part(events, numbers, count, last)


def named_groups(events: list[Event], known: Container[str]) -> None:
    """Raise `UnshardableError` if an event names a group the run has not met: one process arms
    a group's calendars when it first meets it, and a shard that does not see the event would
    not."""
    for group in set(map(GROUP, events)):
        if group is not None and group not in known:
            first = next(e.group for e in events if e.group is not None and e.group not in known)
            raise UnshardableError(
                f"an event names group {first}, which the header does not list, and the plan runs calendars in groups"
            )
