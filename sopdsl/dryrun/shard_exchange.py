"""A sharded dry run's blocks shared out among its processes (see `sopdsl.dryrun.shard`).

Input: the run's folder, a shared array of counters, the process's shard and the number of
shards. Output: for each block of the timeline, what the shard that read its keys found of it for
this one.

Block `b`'s keys are decoded by one process only, shard `b % shards` (its reader), before its run
begins (`shard_read.route_blocks`): it writes each shard a `Route` of the block (that shard's
lines, their numbers among the block's events, the block's count of events, first and last
times), a `MemberRoute` of a block of member lines (that shard's lines, and the groups all of
them name), or None where the block is neither (then every shard reads it in full). So a shard
decodes the keys of a share of the blocks rather than of all, and its own lines once, and reads
the bytes of no other block that has a route. Its run then takes each block's route in turn.

Nothing waits in a circle: a shard's routes are all written before its run begins, and a run
waits only for routes. A process that fails is seen by the parent, which ends the others.
"""

from __future__ import annotations

import mmap
import time
from pathlib import Path
from typing import Any

import msgspec

# (first time, last time, the block's count of events, the shard's numbers among them, its lines)
Route = tuple[int, int, int, list[int], bytes]


class MemberRoute(msgspec.Struct):
    """A shard's route of a block of member lines."""

    lines: bytes  # the shard's own lines, whole
    count: int  # the block's lines, every shard's
    groups: list[str]  # the groups the block's lines name, in the order first named


_ROUTE = msgspec.msgpack.Decoder(Route | MemberRoute | None)


class Counters:
    """Integers a process shares with the processes it forks, each written by one process only.

    An anonymous shared map read and written as 8-byte integers: `multiprocessing`'s shared
    values import ctypes and make a lock, 5 ms before the first shard could start.
    """

    def __init__(self, count: int) -> None:
        self._view = memoryview(mmap.mmap(-1, 8 * count)).cast("q")

    def __getitem__(self, index: int) -> int:
        return int(self._view[index])

    def __setitem__(self, index: int, value: int) -> None:
        self._view[index] = value


_NAP = 0.0002  # seconds between looks at a counter: a block's wait is rare and short


class Exchange:
    """This shard's end of the run's exchange of blocks."""

    def __init__(self, folder: Path, shard: int, shards: int, done: Any) -> None:
        self.folder = folder
        self.shard, self.shards = shard, shards
        # done[k]: 1 + the last block shard k has written its routes of (a shared array of
        # integers, each written by its own shard only).
        self.done = done
        self._encode = msgspec.msgpack.Encoder().encode

    def reads(self, block: int) -> bool:
        """Whether this shard decodes the keys of block number `block` (from 0)."""
        return block % self.shards == self.shard

    def give(self, block: int, routes: list[Route | MemberRoute | None]) -> None:
        """Write each shard its route of a block this shard reads, then say they are written."""
        for shard, route in enumerate(routes):
            (self.folder / f"{block}.{shard}").write_bytes(self._encode(route))
        self.done[self.shard] = block + 1

    def take(self, block: int) -> Route | MemberRoute | None:
        """This shard's route of a block, once the block's reader (this shard or another) has
        written it; read once."""
        reader = block % self.shards
        while self.done[reader] <= block:
            time.sleep(_NAP)
        path = self.folder / f"{block}.{self.shard}"
        route: Route | MemberRoute | None = _ROUTE.decode(path.read_bytes())
        path.unlink()
        return route
