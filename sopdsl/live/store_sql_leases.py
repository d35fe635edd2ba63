"""A SQL store's shard leases among several workers: who is alive, hand-overs, releases (mixed
into `sopdsl.live.store_sql.SqlStore`).

Input and output as the lease methods of `sopdsl.live.store.Store`: each worker records at its
loop turns that it is alive for a while (`roster`), and reads back who else is and which worker
holds a live lease on each shard; `sopdsl.live.balance` decides from that which shards it keeps.
A lease changes hands only through its holder (`hand_over`, `release`) or by expiring.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from sopdsl.live.store import Roster
from sopdsl.live.store_sql_outbox import Cursor

# Who is alive among a store's workers: additive like the task inbox's table, made when missing
# at any version, so a store of an earlier sopdsl opens without a migration.
WORKERS_TABLE = """CREATE TABLE IF NOT EXISTS sopdsl_workers (
    worker TEXT PRIMARY KEY, alive_until DOUBLE PRECISION NOT NULL)"""
_GONE_AFTER = 86400.0  # seconds after which a silent worker's row is deleted


class SqlLeases(ABC):
    """The leases' queries over the store's connection and transactions."""

    @abstractmethod
    def _txn(self, *, flush: bool = True) -> AbstractContextManager[Cursor]:
        """A transaction (see `SqlStore._txn`)."""

    @abstractmethod
    def _sql(self, sql: str) -> str:
        """The statement in the dialect's parameter style."""

    @contextmanager
    def _then(self) -> Iterator[list[Callable[[], None]]]:
        """Calls to make once the transaction inside this block has committed (none if it failed)."""
        calls: list[Callable[[], None]] = []
        yield calls
        for call in calls:
            call()

    def _signal(self, worker: str) -> None:
        """Entries were committed for `worker` to apply, or a lease handed to it: PostgreSQL wakes
        that worker (see `PostgresStore.watch`); elsewhere nothing."""
        return None

    def release(self, shard: str, worker: str) -> None:
        """Give up this worker's lease on a shard."""
        with self._txn() as cur:
            cur.execute(
                self._sql(
                    "UPDATE sopdsl_shards SET lease_owner = NULL, lease_until = 0 "
                    "WHERE shard = ? AND lease_owner = ?"
                ),
                (shard, worker),
            )

    def hand_over(self, shard: str, worker: str, to: str, until: float) -> bool:
        """Pass this worker's lease on a shard (live or lapsed) to `to`, live until `until`, and tell it."""
        with self._then() as then, self._txn() as cur:
            cur.execute(
                self._sql(
                    "UPDATE sopdsl_shards SET lease_owner = ?, lease_until = ? WHERE shard = ? AND lease_owner = ?"
                ),
                (to, until, shard, worker),
            )
            if cur.rowcount:
                then.append(lambda: self._signal(to))
            return bool(cur.rowcount)

    def roster(self, worker: str, wall: float, until: float) -> Roster:
        """Record `worker` alive until `until` (or gone); the live workers and whose lease each shard is on."""
        with self._txn(flush=False) as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO sopdsl_workers (worker, alive_until) VALUES (?, ?) "
                    "ON CONFLICT (worker) DO UPDATE SET alive_until = excluded.alive_until"
                ),
                (worker, until),
            )
            cur.execute(self._sql("DELETE FROM sopdsl_workers WHERE alive_until < ?"), (wall - _GONE_AFTER,))
            cur.execute(
                self._sql("SELECT worker FROM sopdsl_workers WHERE alive_until > ? ORDER BY worker"), (wall,)
            )
            workers = tuple(str(row[0]) for row in cur.fetchall())
            cur.execute(self._sql("SELECT shard, lease_owner FROM sopdsl_shards"))
            holders = {str(shard): None if owner is None else str(owner) for shard, owner in cur.fetchall()}
            return Roster(workers, holders)
