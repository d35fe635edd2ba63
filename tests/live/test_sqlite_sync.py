"""SQLite's disk syncs: an event's transaction is synced before it returns; only the outbox's
bookkeeping (claims and outcomes) commits without a sync of its own (docs/runtime.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
