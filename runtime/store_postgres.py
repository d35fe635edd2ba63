"""The PostgreSQL store: several workers on several machines share shards and the outbox.

Input and output as `sopdsl.runtime.store.Store`; the queries are in `store_sql`. A shard's row
is locked while one worker applies its journal; outbox rows are claimed with
`FOR UPDATE SKIP LOCKED` and a lease, so a dead worker's claims return when the lease expires.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from sopdsl.errors import StoreError
from sopdsl.runtime.redact import redact_text, redact_url, secrets_of
from sopdsl.runtime.store_sql import Cursor, SqlStore

_SCHEMA_LOCK = 0x50D5D1  # pg_advisory_xact_lock key: one process creates or migrates the schema


class PostgresStore(SqlStore):
    """A store in a PostgreSQL database (`postgresql://user@host:5432/db`)."""

    multi_worker = True
    id_type = "BIGSERIAL PRIMARY KEY"
    blob_type = "BYTEA"
    lock_row = " FOR UPDATE"
    try_lock_row = " FOR UPDATE SKIP LOCKED"
    skip_locked = " FOR UPDATE SKIP LOCKED"

    def __init__(self, url: str, *, migrate: bool = False) -> None:
        self.url = url
        self._lock = threading.RLock()
        self._conn = self._connect()
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
    def _txn(self) -> Iterator[Cursor]:
        with self._lock:
            if self._conn.broken:
                # The server went away (restart, failover): connect again; the failed transaction
                # was rolled back by the server, so nothing half-done remains.
                self._conn = self._connect()
            try:
                with self._conn.transaction(), self._conn.cursor() as cur:
                    yield cur
            except psycopg.OperationalError as exc:
                raise StoreError(f"store {redact_url(self.url)}: {self._reason(exc)}") from exc

    def _has_schema(self, cur: Cursor) -> bool:
        cur.execute("SELECT to_regclass('sopdsl_meta') IS NOT NULL")
        return bool(cur.fetchone()[0])

    def _migration_lock(self, cur: Cursor) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()
