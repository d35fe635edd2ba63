"""The SQLite store: the embedded default, one file in WAL mode, one worker process.

Input and output as `sopdsl.live.store.Store`; the queries are in `store_sql`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from sopdsl.errors import StoreError
from sopdsl.live.redact import redact_url
from sopdsl.live.store_noted import Noted
from sopdsl.live.store_sql import SqlStore
from sopdsl.live.store_sql_outbox import Cursor


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
        except sqlite3.Error as exc:
            raise StoreError(f"store {redact_url(url)}: cannot open the database: {exc}") from None
        try:
            self._prepare(migrate)
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise StoreError(f"store {redact_url(url)}: not a sopdsl store ({exc})") from None

    @contextmanager
    def _txn(self, *, flush: bool = True) -> Iterator[Cursor]:
        with self._lock:
            cur = self._conn.cursor()
            if self._depth:
                # Opened by this thread inside its own transaction (a plan read while a step
                # replays): it joins that one, as psycopg's nested transaction does.
                yield cur
                return
            self._depth += 1
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
            except sqlite3.OperationalError as exc:  # locked past the timeout, disk full, read-only
                if self._conn.in_transaction:  # a COMMIT that failed leaves it open: end it
                    self._conn.rollback()
                raise StoreError(f"store {redact_url(self.url)}: {exc}") from exc
            finally:
                self._depth -= 1

    def _has_schema(self, cur: Cursor) -> bool:
        cur.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sopdsl_meta'")
        return cur.fetchone() is not None

    def close(self) -> None:
        """Close the database file."""
        self._conn.close()
