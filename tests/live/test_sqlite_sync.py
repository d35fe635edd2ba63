"""SQLite's disk syncs: an event's transaction is synced before it returns; only the outbox's
bookkeeping (claims and outcomes) commits without a sync of its own (docs/runtime.md)."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from sopdsl.errors import StoreError
from sopdsl.live.store import DONE, Batch, OutboxRow, open_store
from sopdsl.live.store_sqlite import SqliteStore

FULL, NORMAL = 2, 1


def test_events_commit_synced_and_the_outbox_bookkeeping_does_not(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    assert isinstance(store, SqliteStore)
    seen: dict[str, int] = {}

    def mode() -> int:
        return int(store._conn.execute("PRAGMA synchronous").fetchone()[0])

    def step(info: Any, existing: Any, offered: list[dict[str, Any]]) -> Batch:
        seen["apply"] = mode()  # inside the event's transaction
        row = OutboxRow("s", "k1", "m1", "send", {"key": "k1"}, next_at=0)
        return Batch(entries=offered, rows=[row], next_due=None)

    store.ensure_shard("s", start=0, seed=0, plan_hash="p")
    store.apply(
        "s", [{"op": "event", "kind": "join", "id": "e1"}], step, since=0, worker="w", wall=0, lease=30
    )
    [row] = store.claim("w", 0, 10, 30, 20)
    seen["claim"] = mode()
    row.status, row.attempts = DONE, 1
    store.finish([row], "w")
    seen["finish"] = mode()
    store.apply(
        "s", [{"op": "event", "kind": "join", "id": "e2"}], step, since=1, worker="w", wall=0, lease=30
    )
    seen["apply again"] = mode()
    store.close()
    assert seen == {"apply": FULL, "claim": NORMAL, "finish": NORMAL, "apply again": FULL}


def test_unsynced_commits_are_synced_once_before_a_claim_or_a_sync_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    assert isinstance(store, SqliteStore) and store.syncs_apart
    syncs: list[int] = []
    real = os.fdatasync

    def counted(fd: int) -> None:
        syncs.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", counted)
    modes: list[int] = []

    def step(info: Any, existing: Any, offered: list[dict[str, Any]]) -> Batch:
        modes.append(int(store._conn.execute("PRAGMA synchronous").fetchone()[0]))
        key = str(offered[0]["id"])
        return Batch(entries=offered, rows=[OutboxRow("s", key, key, "send", {"key": key}, next_at=0)])

    def apply(event_id: str, seq: int) -> None:
        event = {"op": "event", "kind": "join", "id": event_id}
        store.apply("s", [event], step, since=seq, worker="w", wall=0, lease=30)

    store.ensure_shard("s", start=0, seed=0, plan_hash="p")
    with store.unsynced():
        apply("e1", 0)
    assert modes == [NORMAL] and syncs == []  # committed, not synced yet
    [row] = store.claim("w", 0, 10, 30, 20)
    assert row.key == "e1" and len(syncs) == 1  # synced before the row was handed out
    store.sync()
    assert len(syncs) == 1  # nothing owed
    with store.unsynced():
        apply("e2", 1)
    store.sync()
    assert len(syncs) == 2
    apply("e3", 2)  # outside `unsynced`: synced by its own commit
    store.sync()
    assert modes == [NORMAL, NORMAL, FULL] and len(syncs) == 2
    store.close()


def test_after_a_failed_sync_the_store_writes_nothing_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    assert isinstance(store, SqliteStore)
    store.ensure_shard("s", start=0, seed=0, plan_hash="p")

    def step(info: Any, existing: Any, offered: list[dict[str, Any]]) -> Batch:
        return Batch(entries=offered)

    with store.unsynced():
        store.apply("s", [{"op": "event", "id": "e1"}], step, since=0, worker="w", wall=0, lease=30)

    def failing(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", failing)
    with pytest.raises(StoreError, match="cannot sync the WAL file"):
        store.sync()
    monkeypatch.undo()
    # The kernel may have dropped e1's pages: a later commit must not make it look kept.
    with pytest.raises(StoreError, match="restart the service"):
        store.apply("s", [{"op": "event", "id": "e2"}], step, since=1, worker="w", wall=0, lease=30)
    store.close()
