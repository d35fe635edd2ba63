"""A shard's log as steps behind their keys, and the merge of the shards' steps (see
`sopdsl.dryrun.shard`).

Input: a shard's engine, fed its events with their numbers among the whole timeline's. Output:
the shard's steps (an event, or a timer coming due, and the actions it writes), written in
batches behind each step's place in one engine's order:

- an event: (time, 0, its number among the events of the whole timeline, "", "", 0);
- a timer: (due, 1, playbook, member, group, the shard's creation order), as `Engine.on_timer`
  is told of it.

The parent merges the shards' batches by key into the log one process writes.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import operator
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import msgspec

from sopdsl.engine.engine import Engine
from sopdsl.engine.events import Event

EVENT, TIMER = 0, 1
_LENGTH = struct.Struct("<I")
# Small enough to stay in the caches while a batch is encoded and written: batches of 4 MB
# streamed through them pushed the engine's own state out (a shard's run at 100k x 90 took 3% more).
_BATCH_STEPS = 1024  # steps a shard writes at once, at most
_BATCH_BYTES = 256 << 10  # and about the most bytes of actions
_ACTIONS = operator.itemgetter(6)  # a row's actions


class UnshardableError(Exception):
    """The timeline does what the shards cannot do apart (the message says what)."""


class Steps:
    """Where one shard writes its log: each step's actions behind the step's key, in batches."""

    def __init__(self, out: IO[bytes], shard: int) -> None:
        self.out = out
        self.shard = shard
        self.buffer = io.BytesIO()  # the actions of a batch's steps, as written
        self.key: tuple[Any, ...] = ()  # the step under way
        self.mark = 0  # where its actions begin in the buffer
        self.keys: list[tuple[Any, ...]] = []
        self.ends: list[int] = []  # where each step's actions end (the next's begin, but for groups')
        self.starts: list[int] = []
        self.groups = hashlib.sha256()  # the steps of groups, which every shard must have alike
        self._encode = msgspec.msgpack.Encoder().encode

    def begin(self, key: tuple[Any, ...]) -> None:
        """A step begins: the one under way is closed (see `close`), and `key` is the new one's."""
        self.close()
        self.key = key

    def close(self) -> None:
        """Close the step under way if it wrote actions (a group's step is kept in shard 0 only)."""
        key, start, end = self.key, self.mark, self.buffer.tell()
        if end == start:
            return
        self.mark = end
        if key[1] == TIMER and key[3] == "":
            self.groups.update(self._encode((key[0], key[2], key[4])))  # not the shard's own creation order
            with self.buffer.getbuffer() as view, view[start:end] as actions:
                self.groups.update(actions)
            if self.shard:
                return
        self.keys.append(key)
        self.starts.append(start)
        self.ends.append(end)
        if len(self.keys) >= _BATCH_STEPS or end >= _BATCH_BYTES:
            self.write()

    def write(self) -> None:
        """Write the batch of steps closed so far, if any, and begin the next."""
        if self.keys:
            # A row a step, its actions last: the parent decodes each straight into the tuple it
            # sorts (keys are unique, so the actions never decide an order).
            blob = self.buffer.getvalue()
            # A key and its actions joined by `+` (a tuple concatenated in C): the shard pays less than
            # for unpacking the key into a new tuple.
            rows = [
                key + (blob[start:end],)  # noqa: RUF005 (see above)
                for key, start, end in zip(self.keys, self.starts, self.ends, strict=True)
            ]
            record = self._encode(rows)
            self.out.write(_LENGTH.pack(len(record)))
            self.out.write(record)
        self.buffer.seek(0)
        self.buffer.truncate()
        self.mark = 0
        self.keys, self.starts, self.ends = [], [], []


class Stepper:
    """Runs a shard's engine, each step's actions written behind its key.

    The engine runs a block of events in one call (`Engine.feed_all`); the steps are told apart
    as they happen: a timer about to run (`Engine.on_timer`) is noted, and an action begins a
    step when it is the first of a timer noted since (if no event was fed since the timer) or of
    an event fed since the step before (the first of the engine's sinks). Most timers write
    nothing (a silence deadline re-armed), so only those that do have a key made. The engine's
    count of events fed says which event a step is; the clock says when, as events are fed in
    time order.
    """

    def __init__(self, engine: Engine, steps: Steps) -> None:
        self.engine = engine
        self.steps = steps
        self.fed = 0  # the engine's count of events fed when the step under way began
        self.timer: tuple[Any, ...] = ()  # the last timer run (its heap entry)
        self.timer_fed = -1  # the engine's count of events fed when it ran
        self.pending = False  # whether it has written nothing yet (its step not begun)
        engine.on_timer = self._timer
        engine.sinks.insert(0, self._action)

    def events(self, numbers: list[int], events: list[Event], before: int) -> None:
        """Feed events, their numbers among the whole timeline's `before + number`, the timers due
        before each first."""
        self.engine.feed_all(events, numbers=[number + before for number in numbers])

    def until(self, end: int) -> None:
        """Run the timers due up to `end`, each a step of its own, and set the clock to `end`."""
        self.engine.advance(end)
        self.steps.close()

    def _timer(self, entry: tuple[Any, ...]) -> None:
        engine = self.engine
        fed = engine.fed
        # A timer that sorts ahead of the step before it (if any: an event fed, or a timer run):
        # due before the clock (which a timer sets to its due if later, so the step before was
        # later), or at the instant of the timer run before it, since the last event, but ahead
        # of it in order (a wait of no time made by a later timer). The merge of shards that each
        # keep their steps in order would not put it where one engine runs it.
        if (fed or self.timer_fed >= 0) and (
            entry[0] < engine.now or (self.timer_fed == fed and entry[:5] < self.timer[:5])
        ):
            raise UnshardableError(
                "a step made a timer due at once that runs ahead of it; run in one process"
            )
        self.timer, self.timer_fed, self.pending = entry, fed, True

    def _action(self, _action: Any) -> None:
        engine = self.engine
        fed = engine.fed
        if self.pending and self.timer_fed == fed:
            # The first action of the timer run last: no event was fed since, so it is its step.
            self.pending = False
            self.fed = fed
            due, playbook, member, group, seq, _ = self.timer
            self.steps.begin((due, TIMER, playbook, member, group, seq))
        elif fed != self.fed:
            self.fed = fed
            self.steps.begin((engine.now, EVENT, fed, "", "", 0))


# A step's key (time, kind, number or playbook, member, group, creation order), then its actions.
_Row = tuple[int, int, int, str, str, int, bytes]
_ROWS = msgspec.msgpack.Decoder(list[_Row])


def batches(path: Path) -> Iterator[list[_Row]]:
    """A shard's steps, a batch at a time, in its order."""
    decode = _ROWS.decode
    with path.open("rb") as stream:
        read = stream.read
        while head := read(4):
            (size,) = _LENGTH.unpack(head)
            yield decode(read(size))


def merged(shards: list[Iterator[list[_Row]]]) -> Iterator[bytes]:
    """The shards' steps merged in key order, as pieces of the log.

    Window by window: every step up to the least of the shards' batches' last keys is known (a
    shard's steps come in order), so those are sorted together (in C: each shard's run merges
    with the others') and written; a shard whose batch is used up reads its next.
    """
    current: dict[int, tuple[list[_Row], int]] = {}
    for index, shard in enumerate(shards):
        batch = next(shard, None)
        if batch is not None:
            current[index] = (batch, 0)
    while current:
        bound = min(rows[-1] for rows, _ in current.values())
        window: list[_Row] = []
        for index, (rows, done) in list(current.items()):
            # The bound is a whole row: only its own shard's row equals it, and is taken.
            cut = bisect.bisect_right(rows, bound, lo=done)
            window.extend(rows[done:cut])
            if cut < len(rows):
                current[index] = (rows, cut)
            elif (batch := next(shards[index], None)) is not None:
                current[index] = (batch, 0)
            else:
                del current[index]
        window.sort()  # keys are unique: no two steps compare as far as their actions
        yield b"".join(map(_ACTIONS, window))
