"""What the SQLite and PostgreSQL stores share: the schema, its migrations, and every query.

Input and output as `sopdsl.live.store.Store`. Subclasses supply the connection, the
transaction, the parameter style and the row locking their database offers.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import msgspec

from sopdsl.errors import StoreError
from sopdsl.live import store_figures, store_figures_read
from sopdsl.live.redact import redact_url
from sopdsl.live.store import (
    DONE,
    DRY_RUN,
    FAILED,
    PARKED,
    PENDING,
    SCHEMA_VERSION,
    Batch,
    Entry,
    ShardInfo,
    Step,
    SyncsEachCommit,
    check_version,
    left_for,
)
from sopdsl.live.store_contacts import CONTACTS_TABLES, SqlContacts
from sopdsl.live.store_noted import Noted
from sopdsl.live.store_sql_leases import WORKERS_TABLE, SqlLeases
from sopdsl.live.store_sql_outbox import Cursor, SqlOutbox
from sopdsl.live.store_tasks import STAFF_INDEX, TASKS_TABLE, SqlTasks

# Explicit, numbered migrations: step N takes a store from version N-1 to N. `{id}` is the
# dialect's auto-numbered primary key. Never edit a released step; add the next one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE sopdsl_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE sopdsl_plans (hash TEXT PRIMARY KEY, body TEXT NOT NULL)",
        """CREATE TABLE sopdsl_shards (
            shard TEXT PRIMARY KEY, start_at BIGINT NOT NULL, seed BIGINT NOT NULL,
            plan_hash TEXT NOT NULL, head BIGINT NOT NULL DEFAULT 0, applied BIGINT NOT NULL DEFAULT 0,
            next_due BIGINT, events BIGINT NOT NULL DEFAULT 0,
            lease_owner TEXT, lease_until DOUBLE PRECISION NOT NULL DEFAULT 0)""",
        """CREATE TABLE sopdsl_journal (
            shard TEXT NOT NULL, seq BIGINT NOT NULL, event_id TEXT, body TEXT NOT NULL,
            PRIMARY KEY (shard, seq))""",
        "CREATE UNIQUE INDEX sopdsl_journal_event ON sopdsl_journal (shard, event_id)",
        """CREATE TABLE sopdsl_outbox (
            id {id}, shard TEXT NOT NULL, key TEXT NOT NULL, order_key TEXT NOT NULL,
            kind TEXT NOT NULL, action TEXT NOT NULL, status TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0, failures INTEGER NOT NULL DEFAULT 0,
            next_at BIGINT NOT NULL, lease_owner TEXT, lease_until DOUBLE PRECISION NOT NULL DEFAULT 0,
            error TEXT, UNIQUE (shard, key))""",
        "CREATE INDEX sopdsl_outbox_due ON sopdsl_outbox (id) WHERE status = 'pending'",
        "CREATE INDEX sopdsl_outbox_order ON sopdsl_outbox (shard, order_key, id) WHERE status = 'pending'",
    ),
    # 2: the plan a shard runs now, which a `plan` journal entry changes ('' until then: its first plan).
    # Engine snapshots: a restart replays the journal after one, not all of it.
    (
        "ALTER TABLE sopdsl_shards ADD COLUMN plan_now TEXT NOT NULL DEFAULT ''",
        "CREATE TABLE sopdsl_snapshots (shard TEXT PRIMARY KEY, seq BIGINT NOT NULL, body {blob} NOT NULL)",
    ),
)
assert len(MIGRATIONS) == SCHEMA_VERSION

_IDS_PER_QUERY = 500  # event ids looked up in one query (SQLite allows 999 parameters before 3.32)
_SHARD = "shard, start_at, seed, plan_hash, head, applied, next_due, events, plan_now"


class SqlStore(SqlContacts, SqlTasks, SqlOutbox, SqlLeases, SyncsEachCommit, ABC):
    """A store over a SQL database; see `SqliteStore` and `PostgresStore`."""

    url: str
    multi_worker = False
    _noted: Noted  # the figures' member rows known stored: not written again (made by each dialect)
    id_type = "INTEGER PRIMARY KEY"
    blob_type = "BLOB"
    # Ends a keyed table's CREATE (the figures'): in SQLite its rows are then kept in the primary
    # key's b-tree alone, not in a rowid table and an index of the key besides.
    keyed_table = " WITHOUT ROWID"
    lock_row = ""  # appended to a SELECT to lock the shard row for this transaction
    try_lock_row = ""  # the same, but skipping a row another transaction holds
    skip_locked = ""  # appended to the outbox claim

    # ---- provided by each dialect ----------------------------------------------------------------

    @abstractmethod
    def _txn(self, *, flush: bool = True) -> AbstractContextManager[Cursor]:
        """A transaction on the connection, committed when the block ends, rolled back on error.

        With `flush=False` the commit may return before it reaches the disk (the outbox's
        bookkeeping: leases and outcomes). It is still atomic and seen by every later
        transaction, and the next flushed commit writes it first; a power loss may undo it,
        which only means those actions are sent again (at least once, with their keys).
        """

    @abstractmethod
    def _has_schema(self, cur: Cursor) -> bool:
        """Whether the database holds sopdsl's tables already."""

    def _migration_lock(self, cur: Cursor) -> None:
        """Keep two processes from creating the schema at once (where the database can)."""
        return None  # SQLite: BEGIN IMMEDIATE already lets one writer in at a time

    def _sql(self, sql: str) -> str:
        return sql

    def _finished(self, count: int) -> None:
        """Outbox rows left the pending set or were deleted (committed); PostgreSQL vacuums here."""
        return None  # SQLite removes an index entry when its row changes: nothing piles up

    def _pipelined(self) -> AbstractContextManager[None]:
        """Around `apply`'s transaction: PostgreSQL sends its statements without waiting for each
        answer (only a read waits); elsewhere nothing."""
        return nullcontext()

    def _many(self, cur: Cursor, insert: store_figures.Insert, rows: list[tuple[Any, ...]]) -> None:
        """Run one of `store_figures`' INSERTs for many rows, as `_insert` does (PostgreSQL: as one
        statement)."""
        self._insert(cur, insert.table, insert.columns, rows, insert.tail)

    def _insert(
        self, cur: Cursor, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], tail: str = ""
    ) -> None:
        """Insert rows (`tail`: an ON CONFLICT clause); PostgreSQL sends them as one statement."""
        marks = ", ".join("?" * len(columns))
        cur.executemany(self._sql(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}){tail}"), rows)

    # ---- schema ------------------------------------------------------------------------------------

    def _prepare(self, migrate: bool) -> None:
        with self._txn() as cur:
            self._migration_lock(cur)
            found = None
            if self._has_schema(cur):
                cur.execute(self._sql("SELECT value FROM sopdsl_meta WHERE key = 'schema_version'"))
                row = cur.fetchone()
                found = int(row[0]) if row else 0
            version = check_version(found, self.url, migrate)
            for number in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[number]:
                    cur.execute(statement.format(id=self.id_type, blob=self.blob_type))
            for statement in store_figures.SCHEMA:  # added apart from the versions: see store_figures
                cur.execute(statement + self.keyed_table)
            # The task inbox's table (`store_tasks.py`) is additive, read by nothing earlier: made
            # when missing, at any version, so a store of an earlier sopdsl opens without a migration.
            cur.execute(TASKS_TABLE)
            cur.execute(STAFF_INDEX)  # the same: an index added to a store of any version
            cur.execute(WORKERS_TABLE)
            for statement in CONTACTS_TABLES:  # the same: a platform's contacts (store_contacts.py)
                cur.execute(statement)
            if version < SCHEMA_VERSION:
                cur.execute(self._sql("DELETE FROM sopdsl_meta WHERE key = 'schema_version'"))
                cur.execute(
                    self._sql("INSERT INTO sopdsl_meta (key, value) VALUES ('schema_version', ?)"),
                    (str(SCHEMA_VERSION),),
                )

    # ---- shards and plans ----------------------------------------------------------------------------

    def ensure_shard(self, shard: str, *, start: int, seed: int, plan_hash: str) -> ShardInfo:
        """The shard's record, created with these values if it does not exist yet."""
        with self._txn() as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO sopdsl_shards (shard, start_at, seed, plan_hash) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (shard) DO NOTHING"
                ),
                (shard, start, seed, plan_hash),
            )
            cur.execute(self._sql(f"SELECT {_SHARD} FROM sopdsl_shards WHERE shard = ?"), (shard,))
            return _shard(cur.fetchone())

    def save_plan(self, plan_hash: str, body: str) -> None:
        """Keep a plan's JSON by its hash."""
        with self._txn() as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO sopdsl_plans (hash, body) VALUES (?, ?) ON CONFLICT (hash) DO NOTHING"
                ),
                (plan_hash, body),
            )

    def load_plan(self, plan_hash: str) -> str | None:
        """A plan's JSON by its hash, or None."""
        with self._txn() as cur:
            cur.execute(self._sql("SELECT body FROM sopdsl_plans WHERE hash = ?"), (plan_hash,))
            row = cur.fetchone()
            return str(row[0]) if row else None

    def journal(self, shard: str, after: int = 0) -> list[Entry]:
        """The shard's journal entries after sequence number `after`."""
        with self._txn() as cur:
            return self._entries(cur, shard, after)

    def load_snapshot(self, shard: str) -> tuple[int, bytes] | None:
        """The shard's latest engine snapshot and the journal entry it was taken after, or None."""
        with self._txn() as cur:
            cur.execute(self._sql("SELECT seq, body FROM sopdsl_snapshots WHERE shard = ?"), (shard,))
            row = cur.fetchone()
            return (int(row[0]), bytes(row[1])) if row else None

    def save_snapshot(self, shard: str, seq: int, body: bytes) -> None:
        """Keep an engine snapshot taken after entry `seq`, unless the shard has a later one."""
        with self._txn() as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO sopdsl_snapshots (shard, seq, body) VALUES (?, ?, ?) ON CONFLICT (shard) "
                    "DO UPDATE SET seq = excluded.seq, body = excluded.body WHERE sopdsl_snapshots.seq < excluded.seq"
                ),
                (shard, seq, body),
            )

    def _entries(self, cur: Cursor, shard: str, after: int) -> list[Entry]:
        cur.execute(
            self._sql("SELECT seq, body FROM sopdsl_journal WHERE shard = ? AND seq > ? ORDER BY seq"),
            (shard, after),
        )
        return [Entry(int(seq), json.loads(body)) for seq, body in cur.fetchall()]

    # ---- applying ------------------------------------------------------------------------------------

    def append(self, shard: str, new: Sequence[dict[str, Any]]) -> int:
        """Append entries for whichever worker applies the shard; how many were taken."""
        with self._then() as then, self._noted.counting(), self._txn() as cur:
            cur.execute(
                self._sql(f"SELECT {_SHARD}, lease_owner FROM sopdsl_shards WHERE shard = ?{self.lock_row}"),
                (shard,),
            )
            found = cur.fetchone()
            if found is None:
                raise StoreError(f"store {redact_url(self.url)} has no shard '{shard}'")
            info = _shard(found[:9])
            accepted = self._accept(cur, info, new)
            self._append(cur, info, accepted)
            if accepted and found[9] is not None:
                then.append(lambda: self._signal(str(found[9])))
            return len(accepted)

    def apply(
        self,
        shard: str,
        new: Sequence[dict[str, Any]],
        step: Step,
        *,
        since: int,
        worker: str,
        wall: float,
        lease: float,
        appended: Callable[[list[dict[str, Any]]], None] | None = None,
        defer_to: str | None = None,
    ) -> Batch | None:
        """Append `new`, run `step` and insert its rows, in one transaction; see `Store.apply`."""
        # Pipelined: nothing below reads a write's answer (no rowcount, no RETURNING), so the
        # writes after `step` go out with the COMMIT, one round trip.
        with self._then() as then, self._noted.counting(), self._pipelined(), self._txn() as cur:
            # With something to append, wait for the row; with nothing, leave a busy shard alone.
            lock = self.lock_row if new else self.try_lock_row
            cur.execute(
                self._sql(
                    f"SELECT {_SHARD}, lease_owner, lease_until FROM sopdsl_shards WHERE shard = ?{lock}"
                ),
                (shard,),
            )
            found = cur.fetchone()
            if found is None:
                return None
            info = _shard(found[:9])
            owner = found[9] if found[9] is not None and float(found[10]) > wall else None  # a live lease's
            accepted = self._accept(cur, info, new)
            if left_for(owner, worker, defer_to):
                self._append(cur, info, accepted)
                target = owner if owner is not None else defer_to
                if accepted and target is not None:
                    then.append(lambda: self._signal(str(target)))
                if appended is not None:
                    appended(accepted)
                return None
            existing = self._entries(cur, shard, since) if since < info.head else []
            batch = step(info, existing, accepted)
            self._append(cur, info, batch.entries, update=False)
            if batch.rows:
                self._insert(
                    cur,
                    "sopdsl_outbox",
                    ("shard", "key", "order_key", "kind", "action", "status", "next_at"),
                    [
                        (r.shard, r.key, r.order_key, r.kind, _dumps(r.action), r.status, r.next_at)
                        for r in batch.rows
                    ],
                    " ON CONFLICT (shard, key) DO NOTHING",
                )
            store_figures.write_playbooks(cur, self._sql, shard, batch.figures, self._many)
            cur.execute(
                self._sql(
                    "UPDATE sopdsl_shards SET head = ?, applied = ?, next_due = ?, events = ?, "
                    "lease_owner = ?, lease_until = ? WHERE shard = ?"
                ),
                (info.head, info.head, batch.next_due, info.events, worker, wall + lease, shard),
            )
            if batch.plan_now:
                cur.execute(
                    self._sql("UPDATE sopdsl_shards SET plan_now = ? WHERE shard = ?"),
                    (batch.plan_now, shard),
                )
            if batch.snapshot:
                seq, body = batch.snapshot
                cur.execute(
                    self._sql(
                        "INSERT INTO sopdsl_snapshots (shard, seq, body) VALUES (?, ?, ?) "
                        "ON CONFLICT (shard) DO UPDATE SET seq = excluded.seq, body = excluded.body"
                    ),
                    (shard, seq, body),
                )
            return batch

    def _accept(self, cur: Cursor, info: ShardInfo, new: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The new entries without events whose id the journal (or an earlier one of them) has."""
        ids = list(dict.fromkeys(str(b["id"]) for b in new if b.get("id") is not None))
        taken = self._taken(cur, info.shard, ids) if ids else set()
        accepted: list[dict[str, Any]] = []
        for body in new:
            event_id = body.get("id")
            if event_id is not None:
                if str(event_id) in taken:
                    continue
                taken.add(str(event_id))
            accepted.append(body)
        return accepted

    def _taken(self, cur: Cursor, shard: str, ids: list[str]) -> set[str]:
        """Which of these event ids the shard's journal has."""
        taken: set[str] = set()
        # One query per chunk of ids rather than one per event: a list of 50 events was 50 round trips.
        for first in range(0, len(ids), _IDS_PER_QUERY):
            chunk = ids[first : first + _IDS_PER_QUERY]
            marks = ", ".join("?" * len(chunk))
            cur.execute(
                self._sql(f"SELECT event_id FROM sopdsl_journal WHERE shard = ? AND event_id IN ({marks})"),
                (shard, *chunk),
            )
            taken.update(str(row[0]) for row in cur.fetchall())
        return taken

    def _append(
        self, cur: Cursor, info: ShardInfo, bodies: list[dict[str, Any]], *, update: bool = True
    ) -> None:
        if not bodies:
            return
        self._insert(
            cur,
            "sopdsl_journal",
            ("shard", "seq", "event_id", "body"),
            [(info.shard, info.head + i, b.get("id"), _dumps(b)) for i, b in enumerate(bodies, 1)],
        )
        info.head += len(bodies)
        info.events += sum(b.get("op") == "event" for b in bodies)
        tally = store_figures.Tally().events(bodies)
        store_figures.write(cur, self._sql, info.shard, tally, self._many, self._noted.fresh)
        if not update:
            return  # the caller writes the shard row itself
        cur.execute(
            self._sql("UPDATE sopdsl_shards SET head = ?, events = ? WHERE shard = ?"),
            (info.head, info.events, info.shard),
        )

    def work(self, worker: str, wall: float, now: int, limit: int, skip: Collection[str] = ()) -> list[str]:
        """Shards with unapplied entries or due timers that this worker may take (of `skip`, only
        those it holds a live lease on)."""
        # Left to other workers: taken only back from this one's own live lease.
        skipped = (
            f"AND (shard NOT IN ({', '.join('?' * len(skip))}) OR (lease_owner = ? AND lease_until > ?)) "
            if skip
            else ""
        )
        with self._txn(flush=False) as cur:
            cur.execute(
                self._sql(
                    "SELECT shard FROM sopdsl_shards WHERE (head > applied OR next_due <= ?) "
                    f"AND (lease_owner IS NULL OR lease_owner = ? OR lease_until <= ?) {skipped}"
                    "ORDER BY CASE WHEN lease_owner = ? THEN 0 ELSE 1 END, shard LIMIT ?"
                ),
                (now, worker, wall, *((*skip, worker, wall) if skip else ()), worker, limit),
            )
            return [str(row[0]) for row in cur.fetchall()]

    def watch(self, worker: str, wake: Callable[[], None], rows: Callable[[], None] | None = None) -> bool:
        """SQLite cannot tell another process's commits: its workers poll (PostgreSQL listens)."""
        return False

    def announce(self, worker: str) -> None:
        """SQLite has one worker process: no other dispatcher to tell (PostgreSQL NOTIFYs them)."""
        return None

    def figures(self, shard: str, lo: int, hi: int) -> store_figures.Found:
        """The live figures of engine times [lo, hi): sums and members seen, per group and slot."""
        with self._txn() as cur:
            return store_figures_read.read(cur, self._sql, shard, lo, hi)

    def figures_span(self, shard: str) -> tuple[int, int] | None:
        """The engine times its figures span (see `Store.figures_span`)."""
        with self._txn() as cur:
            return store_figures_read.read_span(cur, self._sql, shard)

    def next_wakeup(self) -> int | None:
        """The earliest due timer or pending row over all shards, or None."""
        with self._txn() as cur:
            cur.execute(self._sql("SELECT MIN(next_due) FROM sopdsl_shards"))
            due = cur.fetchone()[0]
            cur.execute(self._sql("SELECT MIN(next_at) FROM sopdsl_outbox WHERE status = 'pending'"))
            retry = cur.fetchone()[0]
            times = [int(t) for t in (due, retry) if t is not None]
            return min(times, default=None)

    def stats(self) -> dict[str, int]:
        """Totals over all shards."""
        with self._txn() as cur:
            cur.execute(self._sql("SELECT COALESCE(SUM(events), 0) FROM sopdsl_shards"))
            events = int(cur.fetchone()[0])
            cur.execute(
                self._sql(
                    "SELECT status, COUNT(*), COALESCE(SUM(failures), 0) FROM sopdsl_outbox GROUP BY status"
                )
            )
            counts: dict[str, int] = {}
            failures = 0
            for status, count, failed in cur.fetchall():
                counts[str(status)] = int(count)
                failures += int(failed)
            purged_out, purged_failures = self._purged(cur)
            return {
                "events_in": events,
                "actions_out": counts.get(DONE, 0) + counts.get(DRY_RUN, 0) + purged_out,
                "pending": counts.get(PENDING, 0),
                "failures": failures + purged_failures,
                "parked": counts.get(PARKED, 0),
                "failed": counts.get(FAILED, 0),
            }


def _shard(row: Sequence[Any]) -> ShardInfo:
    shard, start, seed, plan_hash, head, applied, next_due, events, plan_now = row
    return ShardInfo(
        str(shard),
        int(start),
        int(seed),
        str(plan_hash),
        int(head),
        int(applied),
        None if next_due is None else int(next_due),
        int(events),
        str(plan_now or ""),
    )


# msgspec writes compact JSON equal in value to `json.dumps(..., separators=(",", ":"),
# ensure_ascii=False, default=str)` at a tenth of the cost: one journal entry and one outbox row
# per event are written on the service's hot path.
_ENCODER = msgspec.json.Encoder(enc_hook=str)


def _dumps(value: Any) -> str:
    return _ENCODER.encode(value).decode()
