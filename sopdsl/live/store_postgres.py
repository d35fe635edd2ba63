"""The PostgreSQL store: several workers on several machines share shards and the outbox.

Input and output as `sopdsl.live.store.Store`; the queries are in `store_sql`. A shard's row
is locked while one worker applies its journal; outbox rows are claimed with
`FOR UPDATE SKIP LOCKED` and a lease, so a dead worker's claims return when the lease expires.
Once the outbox holds `vacuum_every` dead rows, a store vacuums it itself (see `_finished`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from sopdsl.errors import StoreError
from sopdsl.live.redact import redact_text, redact_url, secrets_of
from sopdsl.live.store import OutboxRow
from sopdsl.live.store_noted import Noted
from sopdsl.live.store_sql import SqlStore
from sopdsl.live.store_sql_outbox import Cursor

_SCHEMA_LOCK = 0x50D5D1  # pg_advisory_xact_lock key: one process creates or migrates the schema
# INDEX_CLEANUP ON: with AUTO, VACUUM skips the indexes when under 2% of the table's pages hold
# dead rows, which is every time for a few thousand finished rows in a large outbox, and the
# claim index is exactly what needs cleaning. TRUNCATE OFF: giving trailing empty pages back
# takes an exclusive lock that would stall other workers' claims. SKIP_LOCKED: when another
# worker is vacuuming the outbox already, go on instead of queueing behind it.
_VACUUM = "VACUUM (INDEX_CLEANUP ON, TRUNCATE OFF, SKIP_LOCKED) sopdsl_outbox"
_log = logging.getLogger("sopdsl.runtime")
_WORK = "sopdsl_work"  # the channel: a notification's payload names the worker that has work
_ROWS = "sopdsl_outbox"  # ... and the worker that stored outbox rows, for the others' dispatchers
# The columns `_insert` sends as arrays, with their types.
_TYPES = {
    "shard": "text", "seq": "bigint", "event_id": "text", "body": "text", "key": "text",
    "order_key": "text", "kind": "text", "action": "text", "status": "text", "next_at": "bigint",
    # the figures' tables (store_figures)
    "grp": "text", "slot": "bigint", "figure": "text", "value": "float8", "member": "text",
    "playbook": "text", "arm": "text", "moment": "bigint", "met": "text", "events": "bigint",
    "amount": "float8",
}  # fmt: skip
_FLOATS = frozenset(c for c, t in _TYPES.items() if t == "float8")  # sent as floats, whatever Python holds


class PostgresStore(SqlStore):
    """A store in a PostgreSQL database (`postgresql://user@host:5432/db`).

    Two connections: events, journal and outbox rows on one; the outbox's bookkeeping (claims,
    outcomes, the search for work), committed without a WAL flush, on the other."""

    multi_worker = True
    id_type = "BIGSERIAL PRIMARY KEY"
    blob_type = "BYTEA"
    keyed_table = ""
    lock_row = " FOR UPDATE"
    try_lock_row = " FOR UPDATE SKIP LOCKED"
    skip_locked = " FOR UPDATE SKIP LOCKED"
    vacuum_every = 1000  # dead outbox rows (or 1% of the outbox, if more) that call for a vacuum

    def __init__(self, url: str, *, migrate: bool = False) -> None:
        self.url = url
        self._lock = threading.RLock()
        self._unvacuumed = 0  # rows this store finished since it last looked at the outbox's dead rows
        self._count_lock = threading.Lock()
        self._noted = Noted()
        self._conn = self._connect()
        # The outbox's bookkeeping (claims, outcomes, finding work) goes through a second connection,
        # so a dispatcher never waits for a feed's whole transaction (engine time included) to end.
        self._side: psycopg.Connection[tuple[Any, ...]] | None = None
        self._side_lock = threading.Lock()
        self._closing = threading.Event()  # ends `watch`'s listener
        self._listener: threading.Thread | None = None
        self._prepare(migrate)

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise StoreError(f"store {redact_url(self.url)}: cannot connect: {self._reason(exc)}") from None

    def _reason(self, exc: Exception) -> str:
        """A driver's error message with the URL's password and secret parameters masked (libpq may quote them)."""
        return redact_text(str(exc).strip() or type(exc).__name__, secrets_of(self.url))

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s")

    @contextmanager
    def _txn(self, *, flush: bool = True) -> Iterator[Cursor]:
        if not flush:
            with self._side_lock:
                with self._on(self._outbox_connection(), flush=True) as cur:
                    yield cur
            return
        with self._lock:
            if self._conn.broken:
                # The server went away (restart, failover): connect again; the failed transaction
                # was rolled back by the server, so nothing half-done remains.
                self._conn = self._connect()
            with self._on(self._conn, flush=True) as cur:
                yield cur

    def _outbox_connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        """The outbox's bookkeeping connection, (re)made when missing (held by `_side_lock`)."""
        if self._side is None or self._side.broken:
            self._side = self._connect()
            # Its every transaction commits without waiting for the WAL flush (see
            # SqlStore._txn): said once for the session, not in each transaction.
            self._side.execute("SET synchronous_commit = off")
        return self._side

    @contextmanager
    def _pipelined(self) -> Iterator[None]:
        """`apply` in pipeline mode: its transaction was ten round trips (BEGIN, the shard's row, the
        ids, the journal, the figures, the outbox, the shard's update, COMMIT...), each a wait for
        the server while the main connection (hence the worker's feeds) is held; now its reads wait
        and its writes go out together with the COMMIT."""
        with self._lock:
            if self._conn.broken:
                self._conn = self._connect()
            try:
                with self._conn.pipeline():
                    yield
            except psycopg.OperationalError as exc:  # the connection lost at the final sync
                raise StoreError(f"store {redact_url(self.url)}: {self._reason(exc)}") from exc

    @contextmanager
    def _on(self, conn: psycopg.Connection[tuple[Any, ...]], *, flush: bool) -> Iterator[Cursor]:
        """A transaction on `conn` (held by the caller's lock); `flush=False`: committed unflushed."""
        try:
            with conn.transaction(), conn.cursor() as cur:
                if not flush:
                    # Committed without waiting for the WAL flush; the server's later
                    # flushes write it, in order (see SqlStore._txn).
                    cur.execute("SET LOCAL synchronous_commit = off")
                yield cur
        except psycopg.OperationalError as exc:
            raise StoreError(f"store {redact_url(self.url)}: {self._reason(exc)}") from exc

    def _finished(self, count: int) -> None:
        """Vacuum the outbox once it holds `vacuum_every` dead rows (or 1% of its rows, if more).

        A finished row leaves the pending set, but its entries in the partial indexes that claims
        scan (`WHERE status = 'pending'`) stay until a VACUUM removes them. Without autovacuum (off
        server-wide on some installations, where per-table settings cannot turn it on) every claim
        walks past the rows finished so far: an idle claim took 0.14 ms on an empty outbox and
        0.34-0.41 ms after 50,000-100,000 finished rows (bench/live.py), growing with the table.
        So the store vacuums the outbox itself. The alternatives were worse: partitioning by
        status cannot keep `(shard, key)` unique across partitions (a partitioned table's unique
        keys must include the partition key), and a separate queue table of pending rows leaves
        the same dead entries behind its deletes, needing the same vacuum.

        Every tenth of `vacuum_every` rows it finishes, a store reads the outbox's dead-row count
        from the server's statistics (`n_dead_tup`, which every worker's updates raise and a
        vacuum resets; a worker's own counts reach it within a second, this store's outbox
        connection's at once), so the stores of all shards and workers share one count and one of
        them vacuums. A vacuum scans each index once (about 35 ms at 100,000 rows): waiting for 1%
        of the outbox to be dead keeps its cost per row constant as the outbox grows. It runs
        outside any transaction, and neither blocks nor waits for other workers' claims, inserts
        and finishes (it skips the turn if another worker is vacuuming). It cannot remove rows
        that a long-open transaction may still see.

        All of it goes through the outbox's own connection (where claims and outcomes, hence the
        dead rows, are made): never the store's main one, which a feed holds for its whole
        transaction. Looking there made a dispatcher wait for the feed in progress after each
        batch (a third of a busy worker's dispatch time, bench/live.py --only pg-http).
        """
        with self._count_lock:
            self._unvacuumed += count
            if self._unvacuumed < max(1, self.vacuum_every // 10):
                return
            counted, self._unvacuumed = self._unvacuumed, 0
        with self._side_lock:
            side = self._outbox_connection()
            if side.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                with self._count_lock:
                    self._unvacuumed += counted  # inside a transaction, where VACUUM cannot run: later
                return
            try:
                if side.info.server_version >= 150000:
                    side.execute("SELECT pg_stat_force_next_flush()")  # count its updates now
                found = side.execute(
                    "SELECT n_dead_tup, n_live_tup FROM pg_stat_user_tables "
                    "WHERE relid = 'sopdsl_outbox'::regclass"
                ).fetchone()
                if found is None or int(found[0]) < max(self.vacuum_every, int(found[1]) // 100):
                    return
                side.execute(_VACUUM)
            except psycopg.Error as exc:  # the rows are committed; the next vacuum may do better
                _log.warning(
                    "store %s: vacuuming the outbox failed: %s", redact_url(self.url), self._reason(exc)
                )

    def _insert(
        self, cur: Cursor, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], tail: str = ""
    ) -> None:
        """Insert rows as one statement over arrays: a list of 50 events was 50 executions of an INSERT."""
        if not rows:
            return
        arrays = [list(values) for values in zip(*rows, strict=True)]
        for i, column in enumerate(columns):
            if column in _FLOATS:  # a figure's value may be an int in Python; a float8[] wants floats
                arrays[i] = [float(v) for v in arrays[i]]
        # %b: arrays sent in binary; as text, psycopg escapes every quote of the JSON bodies by regex,
        # which cost more than the statements it saves.
        sources = ", ".join(f"%b::{_TYPES[c]}[]" for c in columns)
        names = ", ".join(columns)
        cur.execute(
            f"INSERT INTO {table} ({names}) SELECT * FROM unnest({sources}) AS t({names}){tail}", arrays
        )

    def _taken(self, cur: Cursor, shard: str, ids: list[str]) -> set[str]:
        """Which ids the journal has: one index lookup per id, whatever the journal's length.

        `shard = ? AND event_id IN (...)` read every entry of the shard: with no statistics
        (autovacuum off, so never analyzed) the planner reckons the 50 ids unselective and takes
        the shard's entries from the index, then filters them, 10,000 entries in 2-35 ms. Asked
        an id at a time (LATERAL ... LIMIT 1), only the lookup on `(shard, event_id)` can answer."""
        cur.execute(
            "SELECT t.id FROM unnest(%b::text[]) AS t(id), LATERAL (SELECT 1 FROM sopdsl_journal j "
            "WHERE j.shard = %s AND j.event_id = t.id LIMIT 1) AS found",
            (ids, shard),
        )
        return {str(row[0]) for row in cur.fetchall()}

    def _outcomes(self, cur: Cursor, rows: Sequence[OutboxRow]) -> set[int]:
        """Record a batch's outcomes in one UPDATE; the ids it changed (those still pending)."""
        arrays = [
            list(values)
            for values in zip(
                *((r.id, r.status, r.attempts, r.failures, r.next_at, r.error) for r in rows), strict=True
            )
        ]
        cur.execute(
            "UPDATE sopdsl_outbox o SET status = v.status, attempts = v.attempts, failures = v.failures, "
            "next_at = v.next_at, error = v.error, lease_owner = NULL, lease_until = 0 "
            "FROM unnest(%b::bigint[], %b::text[], %b::int[], %b::int[], %b::bigint[], %b::text[]) "
            "AS v(id, status, attempts, failures, next_at, error) "
            "WHERE o.id = v.id AND o.status = 'pending' RETURNING o.id",
            arrays,
        )
        return {int(row[0]) for row in cur.fetchall()}

    def _signal(self, worker: str) -> None:
        """NOTIFY `worker` (see `watch`) that entries were committed for it, or a lease handed to it."""
        self._notify(_WORK, worker)

    def announce(self, worker: str) -> None:
        """NOTIFY the other workers' dispatchers (see `watch`) that `worker` stored outbox rows."""
        self._notify(_ROWS, worker)

    def _notify(self, channel: str, payload: str) -> None:
        """A NOTIFY on the outbox's connection, once the transaction it tells of has committed.

        Not inside that transaction: a transaction that notifies holds a lock that serializes
        every notifying commit, its WAL flush included, which would undo group commit between
        the feeds of all workers. Here it commits on its own, unflushed. Lost, it costs a poll."""
        try:
            with self._side_lock:
                self._outbox_connection().execute("SELECT pg_notify(%s, %s)", (channel, payload))
        except psycopg.Error as exc:
            _log.warning("store %s: NOTIFY failed (%s)", redact_url(self.url), self._reason(exc))

    def watch(self, worker: str, wake: Callable[[], None], rows: Callable[[], None] | None = None) -> bool:
        """LISTEN on a connection of its own, in a thread: `wake` when a notification names `worker`,
        `rows` when another worker announced outbox rows.

        Another worker's feed for a shard this one holds (or is left, or handed) is journaled
        there and NOTIFYs this one once committed (`_signal`), so it applies it at once instead of
        at its next poll; so too a worker without a dispatcher thread of its own announces the
        outbox rows it stored (`announce`), so an action goes out at once whoever stored it. A lost
        connection is made again, with one `wake` and one `rows` for what it may have missed."""
        if self._listener is None:
            self._listener = threading.Thread(
                target=self._listen, args=(worker, wake, rows), name="sopdsl-listen", daemon=True
            )
            self._listener.start()
        return True

    def _listen(self, worker: str, wake: Callable[[], None], rows: Callable[[], None] | None) -> None:
        while not self._closing.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
                    conn.execute(f"LISTEN {_WORK}")
                    if rows is not None:
                        conn.execute(f"LISTEN {_ROWS}")
                        rows()
                    wake()  # whatever was journaled while nobody listened
                    while not self._closing.is_set():
                        for note in conn.notifies(timeout=1.0):
                            if note.channel == _WORK and note.payload == worker:
                                wake()
                            elif note.channel == _ROWS and note.payload != worker and rows is not None:
                                rows()
            except psycopg.Error as exc:
                _log.warning(
                    "store %s: listening for other workers' entries failed (%s); polling meanwhile",
                    redact_url(self.url),
                    self._reason(exc),
                )
                self._closing.wait(1.0)

    def _has_schema(self, cur: Cursor) -> bool:
        cur.execute("SELECT to_regclass('sopdsl_meta') IS NOT NULL")
        return bool(cur.fetchone()[0])

    def _migration_lock(self, cur: Cursor) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))

    def close(self) -> None:
        """Close the connections (and stop listening)."""
        self._closing.set()
        if self._listener is not None:
            self._listener.join(timeout=5)
        self._conn.close()
        with self._side_lock:
            if self._side is not None:
                self._side.close()
