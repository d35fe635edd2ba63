"""The SQLite store: the embedded default, one file in WAL mode, one worker process.

Input and output as `sopdsl.live.store.Store`; the queries are in `store_sql`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from sopdsl.errors import StoreError
from sopdsl.live.redact import redact_url
from sopdsl.live.store import OutboxRow
from sopdsl.live.store_noted import Noted
from sopdsl.live.store_sql import SqlStore
from sopdsl.live.store_sql_outbox import Cursor

WAL_PAGES = 4000  # pages the WAL grows to before a checkpoint (see __init__)


class SqliteStore(SqlStore):
    """A store in one SQLite file (`sqlite:///relative.db`, `sqlite:////absolute.db`)."""

    multi_worker = False

    def __init__(self, url: str, *, migrate: bool = False) -> None:
        self.url = url
        path = urlsplit(url).path
        path = path[1:] if path.startswith("/") else path
        if not path:
            raise StoreError(f"store URL {redact_url(url)!r} names no file: write sqlite:///state.db")
        if path != ":memory:" and not Path(path).parent.exists():
            raise StoreError(f"store {redact_url(url)}: folder {Path(path).parent} does not exist")
        self._lock = threading.RLock()
        self._depth = 0  # transactions this store has open (held under the lock: one thread's)
        self._noted = Noted()
        self._path = path
        self._unsynced = threading.local()  # `on` in the threads inside `unsynced`
        # Commits made `unsynced` so far, and how many of them a sync covered: each count only
        # grows, and is written by one thread (the committing one, the syncing one).
        self._owed = self._synced = 0
        self._sync_lock = threading.Lock()  # one sync at a time; the next usually finds none owed
        self._wal = -1  # our own descriptor of the WAL file, for `sync`
        # After a failed sync the kernel may have dropped the unsynced pages: nothing more is
        # written until a restart reads back what the disk holds (clients send again meanwhile).
        self._sync_failed: str | None = None
        try:
            # Autocommit mode: transactions are begun explicitly below, as BEGIN IMMEDIATE, so a
            # writer takes the write lock at the start instead of failing half way through.
            self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
            self._conn.execute("PRAGMA journal_mode=WAL")
            # Each commit is durable once the WAL is synced; a power loss cannot undo one.
            # (NORMAL would sync the WAL only at checkpoints: a commit could be lost after its
            # event was answered.) Only the outbox's bookkeeping commits without a sync.
            self._conn.execute("PRAGMA synchronous=FULL")
            self._flushing = True
            # A checkpoint runs inside the COMMIT that crosses this many WAL pages, and copies each
            # page once however many transactions changed it: at SQLite's default of 1,000, one
            # every ~50 of the service's transactions copied the same hot pages over and over. A
            # 4-event feed's wall time 387-394 -> 345-355 us, CPU 428-435 -> 419-427 us; the WAL
            # file stays under 16 MB.
            self._conn.execute(f"PRAGMA wal_autocheckpoint={WAL_PAGES}")
        except sqlite3.Error as exc:
            raise StoreError(f"store {redact_url(url)}: cannot open the database: {exc}") from None
        try:
            self._prepare(migrate)
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise StoreError(f"store {redact_url(url)}: not a sopdsl store ({exc})") from None

    @contextmanager
    def _txn(self, *, flush: bool = True) -> Iterator[Cursor]:
        if self._sync_failed is not None:
            raise StoreError(self._sync_failed)
        with self._lock:
            cur = self._conn.cursor()
            if self._depth:
                # Opened by this thread inside its own transaction (a plan read while a step
                # replays): it joins that one, as psycopg's nested transaction does.
                yield cur
                return
            self._depth += 1
            owed = flush and getattr(self._unsynced, "on", False)
            if owed:
                flush = False
            try:
                if flush != self._flushing:
                    # WAL frames are appended in order and a sync covers all of them, so an
                    # unsynced commit is on disk by the next synced one, never after it.
                    cur.execute(f"PRAGMA synchronous={'FULL' if flush else 'NORMAL'}")
                    self._flushing = flush
                cur.execute("BEGIN IMMEDIATE")
                try:
                    yield cur
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
                cur.execute("COMMIT")
                if owed:
                    self._owed += 1
            except sqlite3.OperationalError as exc:  # locked past the timeout, disk full, read-only
                if self._conn.in_transaction:  # a COMMIT that failed leaves it open: end it
                    self._conn.rollback()
                raise StoreError(f"store {redact_url(self.url)}: {exc}") from exc
            finally:
                self._depth -= 1

    @property
    def syncs_apart(self) -> bool:
        """A file's store does (an in-memory database has nothing to sync)."""
        return self._path != ":memory:"

    @contextmanager
    def unsynced(self) -> Iterator[None]:
        """This thread's commits skip their sync (`synchronous=NORMAL`) until `sync`.

        The group committer's: it syncs in another thread while it applies the next requests,
        and answers a request only after the sync. Durable as FULL for what is answered: a sync
        covers every WAL frame written before it, and SQLite syncs the WAL itself before a
        checkpoint copies it and before it reuses the file."""
        self._unsynced.on = True
        try:
            yield
        finally:
            self._unsynced.on = False

    def sync(self) -> None:
        """Make the commits made `unsynced` so far durable."""
        self._sync(self._owed)

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
        """`SqlStore.claim`, returning only rows whose commit is durable: no action leaves
        before the event that caused it is kept (the committer syncs its commits apart)."""
        with self._lock:  # no commit between the mark and the claim: it sees what the mark counts
            mark = self._owed
            rows = super().claim(worker, wall, now, lease, limit, skip, finished)
        if rows:
            self._sync(mark)
        return rows

    def _sync(self, through: int) -> None:
        """Sync unless the first `through` commits made `unsynced` are durable already: one
        fdatasync of the WAL file, outside the store's lock, so that commits go on meanwhile."""
        with self._sync_lock:
            if self._synced >= through:
                return  # another thread's sync covered them
            target = self._owed  # read first: a commit after this read may not be covered
            try:
                if self._wal < 0:
                    self._wal = os.open(self._path + "-wal", os.O_RDWR)
                getattr(os, "fdatasync", os.fsync)(self._wal)
            except OSError as exc:
                self._sync_failed = (
                    f"store {redact_url(self.url)}: cannot sync the WAL file ({exc}); restart the "
                    "service: events answered with this error may not have been kept, send them again"
                )
                raise StoreError(self._sync_failed) from exc
            self._synced = target

    def _has_schema(self, cur: Cursor) -> bool:
        cur.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sopdsl_meta'")
        return cur.fetchone() is not None

    def close(self) -> None:
        """Close the database file."""
        with self._sync_lock:
            if self._wal >= 0:
                os.close(self._wal)
                self._wal = -1
        self._conn.close()
