"""Which worker applies which shard when several share a PostgreSQL store: the lease rule.

Input: the store's roster (`Store.roster`: the workers alive now, and whose lease each shard is
on), read at this worker's loop turns. Output: each shard's worker, the same in every worker
that reads the same roster, and what this worker does about it: the leases it hands over, and
the free shards it leaves to others.

Each shard is assigned to the live worker ranking highest for it (rendezvous hashing of the two
names) among those below their share (shards / workers, whole, one more for some while the
remainder lasts); so every worker gets its share, and when one comes or goes, mostly its own
share moves. A worker

- applies a shard it holds a live lease on, whoever it is assigned to: leases stay the fence.
  Nobody takes another worker's live lease; only its holder hands it over, or it expires;
- takes a free shard (no live lease on it) only if it is its own, or one its roster does not
  show yet; a feed for another live worker's free shard is journaled for that worker, which is
  told (`Store.apply`'s `defer_to`);
- hands its lease on a shard assigned to another worker (live, or lapsed and taken by nobody
  since) to that worker at its next turn, live for a lease's time, so that feeds go there from
  then on; and tells it (`Store.hand_over`).

A worker counts as alive for `ALIVE_TURNS` turns after its last roster call: one that dies stops
counting within seconds, and its shards pass to the others as its leases expire; when it comes
back under its name, it counts again and the others hand its share back. Views of the roster may
differ for a turn (a worker seen by one and not yet by another): then a shard may wait a turn for
its worker, never be applied by two at once.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Protocol

from sopdsl.live.store import Store

log = logging.getLogger("sopdsl.runtime")

TURN = 1.0  # seconds between roster reads at most (a lease under four turns shortens it)
ALIVE_TURNS = 5  # a worker silent for this many turns no longer counts


class BalanceSettings(Protocol):
    """What the balance reads of its runtime, at each call (`sopdsl.live.runtime.Runtime` is one)."""

    store: Store
    worker: str
    lease: float
    wall: Callable[[], float]


def assign(shards: Iterable[str], workers: Sequence[str]) -> dict[str, str]:
    """Each shard's worker: the one ranking highest for it that is below its share, shards taken in
    name order. The shares are even: shards // workers each, one more for the remainder's first."""
    names = sorted(set(workers))
    ordered = sorted(set(shards))
    if not names:
        return {}
    share, extra = divmod(len(ordered), len(names))
    load = dict.fromkeys(names, 0)
    owners: dict[str, str] = {}
    for shard in ordered:
        ranked = sorted(names, key=lambda worker: _rank(shard, worker), reverse=True)
        # Room below the share, or for one more while the remainder lasts: never stuck, since the
        # room left is always the shards left.
        owner = next(w for w in ranked if load[w] < share or (load[w] == share and extra > 0))
        extra -= load[owner] == share
        load[owner] += 1
        owners[shard] = owner
    return owners


def _rank(shard: str, worker: str) -> bytes:
    # A digest, not hash(): every process must rank alike, whatever its PYTHONHASHSEED.
    return hashlib.blake2b(f"{shard}\0{worker}".encode(), digest_size=8).digest()


class Balance:
    """This worker's view of the lease rule, refreshed at its loop turns (under the runtime's lock)."""

    def __init__(self, settings: BalanceSettings, hand_over: Callable[[str, str], None]) -> None:
        # Read at each call, not copied: the runtime's attributes stay the one place they are set.
        self.settings = settings
        self._hand_over = hand_over  # (shard, worker): pass this worker's lease on the shard to it
        self._theirs: dict[str, str] = {}  # shards assigned to other live workers, and to whom
        self._read = float("-inf")  # when the roster was last read (monotonic)
        self._assigned: tuple[tuple[str, ...], tuple[str, ...], dict[str, str]] | None = None

    def turn(self) -> None:
        """Say this worker is alive, read the roster and hand over its leases on other workers'
        shards (at most once a `TURN`; only on a store several workers share)."""
        s = self.settings
        every = min(TURN, s.lease / 4)
        if not s.store.multi_worker or time.monotonic() - self._read < every:
            return
        self._read = time.monotonic()
        wall = s.wall()
        roster = s.store.roster(s.worker, wall, wall + ALIVE_TURNS * every)
        owners = self._assign(tuple(sorted(roster.holders)), tuple(sorted({*roster.workers, s.worker})))
        self._theirs = {shard: owner for shard, owner in owners.items() if owner != s.worker}
        for shard, owner in self._theirs.items():
            if roster.holders[shard] == s.worker:
                log.debug("sopdsl runtime: shard '%s' handed to worker %s, whose share it is", shard, owner)
                self._hand_over(shard, owner)

    def _assign(self, shards: tuple[str, ...], workers: tuple[str, ...]) -> dict[str, str]:
        """`assign`, worked out again only when the shards or the workers changed."""
        if self._assigned is None or self._assigned[:2] != (shards, workers):
            self._assigned = (shards, workers, assign(shards, workers))
        return self._assigned[2]

    def left_to(self, shard: str) -> str | None:
        """The other live worker this shard is assigned to, or None (this one's, or not known yet)."""
        return self._theirs.get(shard)

    def theirs(self) -> Collection[str]:
        """The shards assigned to other live workers."""
        return self._theirs.keys()

    def leave(self) -> None:
        """Say this worker is gone (it stops), so the others count without it at their next turn."""
        s = self.settings
        if s.store.multi_worker and self._read > float("-inf"):
            wall = s.wall()
            s.store.roster(s.worker, wall, wall)
            self._theirs = {}
