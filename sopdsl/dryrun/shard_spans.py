"""Where a JSONL timeline's blocks begin and end, found without reading them (see
`sopdsl.dryrun.shard`).

Input: an open `Timeline` whose blocks are not read yet. Output: each block's offsets in the file,
as `Timeline.chunks` cuts them, and a block's bytes when asked (`read_span`).

`Timeline.chunks` reads the file `BLOCK` bytes at a time and ends each block at the last newline
of a read (a read with none joins the next). A shard of a sharded run decodes only a share of the
blocks, and takes most of the rest by their routes, never their bytes: it needs where each block
ends, which the end of each read says, so only that end is read here (and the blocks of member
lines, to find where they end, as `chunks` cuts there).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from sopdsl.dryrun import timeline as timeline_module
from sopdsl.dryrun.timeline import Timeline
from sopdsl.dryrun.timeline_lines import roster_end

_TAIL = 1 << 12  # bytes read back from the end of a read at a time, to find its last newline


def spans(timeline: Timeline) -> Iterator[tuple[int, int]]:
    """The timeline's blocks not read yet, as `Timeline.chunks` would give them: where each
    begins and ends in the file."""
    fd = timeline.fileno()
    blocks = _reads(timeline, fd)
    # The blocks of members are read to find where they end (`cut_at_roster_end`): a few
    # megabytes at most, searched in C.
    for start, end in blocks:
        at = roster_end(read_span(timeline, start, end))
        if at < 0:
            yield start, end
            continue
        if at:
            yield start, start + at
        yield start + at, end
        yield from blocks
        return


def _reads(timeline: Timeline, fd: int) -> Iterator[tuple[int, int]]:
    """Where the blocks of whole lines of `BLOCK`-byte reads begin and end, the roster not cut."""
    size = os.fstat(fd).st_size
    block = timeline_module.BLOCK
    start = window = timeline.read_bytes  # the header read: where the blocks begin
    while window < size:
        end = min(window + block, size)
        cut = _last_newline(fd, window, end)
        window = end
        if cut >= 0:  # else a line longer than a read: the block goes on
            yield start, cut + 1
            start = cut + 1
    if start < size:
        yield start, size


def _last_newline(fd: int, low: int, high: int) -> int:
    """The offset of the last newline in the file's bytes `low` to `high`, or -1 if none."""
    at = high
    while at > low:
        begin = max(low, at - _TAIL)
        found = os.pread(fd, at - begin, begin).rfind(b"\n")
        if found >= 0:
            return begin + found
        at = begin
    return -1


def read_span(timeline: Timeline, start: int, end: int) -> bytes:
    """The bytes of the timeline's file from `start` to `end` (a block `spans` gave)."""
    fd = timeline.fileno()
    data = os.pread(fd, end - start, start)
    while len(data) < end - start:  # a read of over 2 GB, on Linux, or a file cut short
        more = os.pread(fd, end - start - len(data), start + len(data))
        if not more:
            raise OSError(f"{timeline.shown}: the file became shorter as it was read")
        data += more
    return data
