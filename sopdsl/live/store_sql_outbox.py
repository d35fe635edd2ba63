"""The outbox of a SQL store: leasing due actions, recording their outcomes, requeueing parked
ones, purging finished ones (mixed into `sopdsl.live.store_sql.SqlStore`).

Input and output as the outbox methods of `sopdsl.live.store.Store`. An outcome is recorded in
the transaction that counts it in the live figures (`store_figures.record_done`), once per row.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from sopdsl.live import store_figures
from sopdsl.live.store import OutboxRow
from sopdsl.live.store_noted import Noted
from sopdsl.live.store_tasks import STAFF, escalation_key

ROW = "id, shard, key, order_key, kind, action, status, attempts, failures, next_at, error"


class Cursor(Protocol):
    """The part of a DB-API cursor the queries use (sqlite3's and psycopg's both fit)."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Any: ...

    def executemany(self, sql: str, params: Sequence[Sequence[Any]], /) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    @property
    def rowcount(self) -> int: ...


class SqlOutbox(ABC):
    """The outbox's queries over the store's connection and transactions."""

    skip_locked: str  # the dialect's row-lock clause for claims ('' where none is needed)
    _noted: Noted  # the figures' member rows known stored (see `SqlStore`)

    @abstractmethod
    def _txn(self, *, flush: bool = True) -> AbstractContextManager[Cursor]:
        """A transaction (see `SqlStore._txn`)."""

    @abstractmethod
    def _sql(self, sql: str) -> str:
        """The statement in the dialect's parameter style."""

    @abstractmethod
    def _many(self, cur: Cursor, insert: store_figures.Insert, rows: list[tuple[Any, ...]]) -> None:
        """Run a figures INSERT for many rows (see `SqlStore._many`)."""

    @abstractmethod
    def _finished(self, count: int) -> None:
        """Rows left the pending set or were deleted (see `SqlStore._finished`)."""

    def _outcomes(self, cur: Cursor, rows: Sequence[OutboxRow]) -> set[int] | None:
        """Record outcomes in one statement and return the ids it changed; None where the dialect
        cannot (each row is then updated alone, as `record_done` does)."""
        return None

    def claim(
        self,
        worker: str,
        wall: float,
        now: int,
        lease: float,
        limit: int,
        skip: Collection[int] = (),
        finished: Sequence[OutboxRow] = (),
    ) -> list[OutboxRow]:
        """Lease due pending rows, oldest first, one per order key, none behind a pending one (nor in
        `skip`), after recording the outcomes of `finished` in the same transaction."""
        skipped = f"AND id NOT IN ({', '.join('?' * len(skip))}) " if skip else ""
        with self._noted.counting(), self._txn(flush=False) as cur:
            if finished:
                self._record(cur, finished)
            cur.execute(
                self._sql(
                    f"SELECT {ROW} FROM sopdsl_outbox o WHERE status = 'pending' AND next_at <= ? "
                    f"AND (lease_owner IS NULL OR lease_owner = ? OR lease_until <= ?) {skipped}"
                    "AND NOT EXISTS (SELECT 1 FROM sopdsl_outbox p WHERE p.status = 'pending' "
                    "AND p.shard = o.shard AND p.order_key = o.order_key AND p.id < o.id) "
                    f"ORDER BY id LIMIT ?{self.skip_locked}"
                ),
                (now, worker, wall, *skip, limit),
            )
            rows = [row_of(r) for r in cur.fetchall()]
            if rows:
                marks = ", ".join("?" * len(rows))
                cur.execute(
                    self._sql(
                        f"UPDATE sopdsl_outbox SET lease_owner = ?, lease_until = ? WHERE id IN ({marks})"
                    ),
                    (worker, wall + lease, *(r.id for r in rows)),
                )
        if finished:
            self._finished(len(finished))
        return rows

    def finish(self, rows: Sequence[OutboxRow], worker: str) -> None:
        """Record dispatches' outcomes and end their leases, in one transaction."""
        if not rows:
            return
        with self._noted.counting(), self._txn(flush=False) as cur:
            self._record(cur, rows)
        self._finished(len(rows))

    def _record(self, cur: Cursor, rows: Sequence[OutboxRow]) -> None:
        """Record outcomes and end leases in the transaction of `cur` (inside `Noted.counting`);
        the caller reports them to `_finished` after it commits."""
        update = self._sql(
            "UPDATE sopdsl_outbox SET status = ?, attempts = ?, failures = ?, next_at = ?, error = ?, "
            "lease_owner = NULL, lease_until = 0 WHERE id = ? AND status = 'pending'"
        )
        counted = [r for r in rows if store_figures.counts(r.status, r.kind)]
        changed = self._outcomes(cur, rows)
        if changed is not None:
            # Counted once per key: only the rows this transaction made done.
            store_figures.record_changed(
                cur, self._sql, [r for r in counted if r.id in changed], self._many, self._noted.fresh
            )
        else:
            cur.executemany(
                update,
                [
                    (r.status, r.attempts, r.failures, r.next_at, r.error, r.id)
                    for r in rows
                    if not store_figures.counts(r.status, r.kind)
                ],
            )
            store_figures.record_done(cur, self._sql, update, counted, self._noted.fresh)

    def requeue(self, shard: str, key: str, now: int) -> bool:
        """Put a parked row back to pending."""
        with self._txn() as cur:
            cur.execute(
                self._sql(
                    "UPDATE sopdsl_outbox SET status = 'pending', attempts = 0, next_at = ? "
                    "WHERE shard = ? AND key = ? AND status = 'parked'"
                ),
                (now, shard, key),
            )
            return bool(cur.rowcount)

    def purge(self, before: int, touches_before: int | None = None) -> int:
        """Delete finished rows due before `before`, and the figures' member rows no report from
        `before` on reads (`store_figures.prunes`); the totals in `stats` keep counting the rows."""
        finished = "status IN ('done', 'dry_run', 'skipped') AND next_at < ?"
        with self._txn() as cur:
            for statement, params in store_figures.prunes(before, touches_before):
                cur.execute(self._sql(statement), params)
            # Counted from what this DELETE took: workers purging at once (each once a day with
            # `--keep-days`) would otherwise both count rows that only one of them deletes.
            cur.execute(
                self._sql(f"DELETE FROM sopdsl_outbox WHERE {finished} RETURNING status, failures"), (before,)
            )
            deleted = cur.fetchall()
            gone = len(deleted)
            self._noted.forget()  # its member rows may be among those the prunes deleted
            if not gone:
                return 0
            out = sum(status != "skipped" for status, _ in deleted)
            failures = sum(int(f) for _, f in deleted)
            for key, amount in (("purged_out", out), ("purged_failures", failures)):
                cur.execute(
                    self._sql(
                        "INSERT INTO sopdsl_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
                        "SET value = CAST(CAST(sopdsl_meta.value AS BIGINT) + ? AS TEXT)"
                    ),
                    (key, str(amount), amount),
                )
        self._finished(gone)
        return gone

    def _purged(self, cur: Cursor) -> tuple[int, int]:
        cur.execute(
            self._sql("SELECT key, value FROM sopdsl_meta WHERE key IN ('purged_out', 'purged_failures')")
        )
        found = {str(k): int(v) for k, v in cur.fetchall()}
        return found.get("purged_out", 0), found.get("purged_failures", 0)

    def outbox(self, shard: str | None = None, status: str | None = None) -> list[OutboxRow]:
        """Every outbox row (of one shard, or all; with one status, or any), in id order."""
        given = {
            column: value for column, value in (("shard", shard), ("status", status)) if value is not None
        }
        where = f"WHERE {' AND '.join(f'{column} = ?' for column in given)} " if given else ""
        with self._txn() as cur:
            cur.execute(
                self._sql(f"SELECT {ROW} FROM sopdsl_outbox {where}ORDER BY id"), tuple(given.values())
            )
            return [row_of(r) for r in cur.fetchall()]

    def staff_actions(self, shard: str, key: str | None = None) -> list[OutboxRow]:
        """The shard's `task` and `escalate` outbox rows in id order (only a task's own and its
        escalation's, with `key`)."""
        where = f"shard = ? AND {STAFF}"
        with self._txn() as cur:
            if key is None:
                cur.execute(self._sql(f"SELECT {ROW} FROM sopdsl_outbox WHERE {where} ORDER BY id"), (shard,))
            else:
                cur.execute(
                    self._sql(f"SELECT {ROW} FROM sopdsl_outbox WHERE {where} AND key IN (?, ?) ORDER BY id"),
                    (shard, key, escalation_key(key)),
                )
            return [row_of(r) for r in cur.fetchall()]


def row_of(row: Sequence[Any]) -> OutboxRow:
    """An outbox row as read by `SELECT {ROW}`."""
    row_id, shard, key, order_key, kind, action, status, attempts, failures, next_at, error = row
    return OutboxRow(
        shard=str(shard),
        key=str(key),
        order_key=str(order_key),
        kind=str(kind),
        action=json.loads(action),
        status=str(status),
        next_at=int(next_at),
        attempts=int(attempts),
        failures=int(failures),
        error=error,
        id=int(row_id),
    )
