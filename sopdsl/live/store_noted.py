"""The members a SQL store has already counted in the latest slots, so their rows are not written again.

Input: the (shard, group, slot, figure, member) rows of `store_figures.NOTE` a transaction is
about to insert, then whether it committed. Output: only the rows this process has not seen
committed yet. A member posting ten messages in a quarter hour is one row of
`sopdsl_figure_members`; each message used to run its INSERT ... ON CONFLICT DO NOTHING, and the
row's place in the index is at random (by member), so each dirtied a page of its own: 4.8 of
the 20.8 WAL pages a transaction of 7 events wrote in bench/live_txn_cost.py's workload.

Only rows seen committed are remembered (a transaction's are held apart until then, per thread),
so a remembered row is always in the table: skipping its INSERT changes nothing. Rows of the two
newest slots are kept, and at most `LIMIT`; anything forgotten is written again, which the
ON CONFLICT clause makes harmless. A purge forgets everything.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

LIMIT = 200_000  # rows remembered at most (a few tens of megabytes)


class Noted:
    """Rows of the figures' member table known to be stored; see the module's docstring."""

    def __init__(self) -> None:
        self._known: set[tuple[Any, ...]] = set()
        self._newest = -(2**62)  # the newest slot among them
        self._local = threading.local()  # this thread's transaction's rows, not committed yet
        self._lock = threading.Lock()  # one change at a time (the feeding and dispatching threads)

    def fresh(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """The rows not known to be stored; they are remembered once the transaction commits."""
        known = self._known
        new = [row for row in rows if row not in known]
        pending = getattr(self._local, "rows", None)
        if pending is not None:
            pending.extend(new)
        return new

    @contextmanager
    def counting(self) -> Iterator[None]:
        """Around a transaction that writes member rows: they are remembered if it commits."""
        pending: list[tuple[Any, ...]] = []
        self._local.rows = pending
        try:
            yield
        finally:
            self._local.rows = None
        if pending:
            self._keep(pending)

    def _keep(self, rows: list[tuple[Any, ...]]) -> None:
        with self._lock:
            newest = max(row[2] for row in rows)
            if newest > self._newest or len(self._known) + len(rows) > LIMIT:
                self._newest = max(newest, self._newest)
                self._known = {row for row in self._known if row[2] >= self._newest - 1}
                if len(self._known) + len(rows) > LIMIT:
                    self._known = set()
            self._known.update(row for row in rows if row[2] >= self._newest - 1)

    def forget(self) -> None:
        """Forget every row (a purge deleted some)."""
        with self._lock:
            self._known = set()
