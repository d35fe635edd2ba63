"""Claims stay cheap as finished rows pile up: the PostgreSQL store vacuums its outbox itself.

Not timed (speeds belong in bench/live.py): these tests count the entries left in the partial
index that claims scan, and check that the vacuum neither waits on another worker's nor breaks
claiming. Autovacuum is off server-wide on the test machine, as on the installations this is for.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest
from livestores import store_url

from sopdsl.live.store import DONE, Batch, OutboxRow, open_store
from sopdsl.live.store_postgres import PostgresStore

EVERY = 100


@pytest.fixture
def pg(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    url = store_url("postgres", tmp_path, request)
    store = open_store(url)
    assert isinstance(store, PostgresStore)  # vacuum_every is PostgresStore's setting
    store.vacuum_every = EVERY
    store.ensure_shard("s", start=0, seed=0, plan_hash="abc")
    yield store
    store.close()


def _insert(store: Any, first: int, count: int) -> None:
    rows = [
        OutboxRow("s", f"k{n}", f"m{n}", "send", {"n": n}, next_at=0) for n in range(first, first + count)
    ]
    store.apply("s", [], lambda *_: Batch(rows=rows), since=0, worker="w", wall=1000.0, lease=30.0)


def _drain(store: Any) -> int:
    """Claim and finish every due row, 20 at a time, as a dispatcher does; how many."""
    finished = 0
    while rows := store.claim("w", 1000.0, 10, 30.0, 20):
        for row in rows:
            row.status, row.attempts = DONE, 1
        store.finish(rows, "w")
        finished += len(rows)
    return finished


def _claim_index_entries(url: str) -> int:
    """Entries, dead or alive, on the leaf pages of the index claims scan (pageinspect)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pageinspect SCHEMA public")
        pages = conn.execute("SELECT pg_relation_size('sopdsl_outbox_due') / 8192").fetchone()
        assert pages is not None
        entries = 0
        for block in range(1, int(pages[0])):  # block 0 is the metapage
            kind, live, dead, next_page = conn.execute(
                "SELECT type, live_items, dead_items, btpo_next "
                "FROM public.bt_page_stats('sopdsl_outbox_due', %s)",
                (block,),
            ).fetchone() or (None, 0, 0, 0)
            if kind == "l":
                entries += int(live) + int(dead) - (1 if next_page else 0)  # less the high key
        return entries


def test_finished_rows_leave_the_claim_index_every_n_rows(pg: Any) -> None:
    _insert(pg, 0, 5 * EVERY)
    assert _claim_index_entries(pg.url) == 5 * EVERY
    assert _drain(pg) == 5 * EVERY
    # Vacuumed whenever 100 rows were dead: at most the entries of the rows finished since the
    # last one remain (two each at most: as inserted, and after a claim's lease update). Without
    # the vacuum, all 500 rows' entries and more stay until one runs, and claims walk past them.
    assert _claim_index_entries(pg.url) <= 2 * EVERY
    assert _vacuums(pg.url) >= 3


def _vacuums(url: str) -> int:
    with psycopg.connect(url) as conn:
        found = conn.execute(
            "SELECT vacuum_count FROM pg_stat_user_tables "
            "WHERE relname = 'sopdsl_outbox' AND schemaname = current_schema()"
        ).fetchone()
    assert found is not None
    return int(found[0])


def test_the_stores_of_all_shards_and_workers_share_one_count(pg: Any) -> None:
    # Three stores (three shards' runtimes, or three workers) finish 45 rows each: fewer than
    # `vacuum_every` dead rows each, even with their lease updates, but more than it together.
    others = [open_store(pg.url) for _ in range(2)]
    try:
        for other in others:
            assert isinstance(other, PostgresStore)
            other.vacuum_every = EVERY
        _insert(pg, 0, 135)
        for store in (pg, *others):
            for _ in range(3):
                rows = store.claim("w", 1000.0, 10, 30.0, 15)
                assert len(rows) == 15
                for row in rows:
                    row.status = DONE
                store.finish(rows, "w")
        assert _vacuums(pg.url) >= 1
    finally:
        for other in others:
            other.close()


def test_a_vacuum_does_not_wait_for_another_workers(pg: Any) -> None:
    _insert(pg, 0, 3 * EVERY)
    with psycopg.connect(pg.url) as other, other.transaction():
        # Another worker vacuuming the outbox holds this lock for the vacuum's length.
        other.execute("LOCK TABLE sopdsl_outbox IN SHARE UPDATE EXCLUSIVE MODE")
        done = threading.Event()
        counted: list[int] = []

        def dispatch() -> None:
            counted.append(_drain(pg))
            done.set()

        thread = threading.Thread(target=dispatch, daemon=True)
        thread.start()
        assert done.wait(30), "finishing rows waited for another worker's vacuum"
    assert counted == [3 * EVERY]
    # Claims, keys and ordering still work after the vacuums: new rows are claimed once.
    _insert(pg, 0, 5)  # keys already taken: ignored
    _insert(pg, 1000, 3)
    assert [r.key for r in pg.claim("w", 1000.0, 10, 30.0, 20)] == ["k1000", "k1001", "k1002"]
    assert pg.stats()["actions_out"] == 3 * EVERY


def test_a_finish_inside_an_open_transaction_puts_the_vacuum_off(pg: Any) -> None:
    _insert(pg, 0, EVERY)
    rows = pg.claim("w", 1000.0, 10, 30.0, EVERY)
    for row in rows:
        row.status = DONE
    # The vacuum's connection (the outbox's) inside a caller's transaction, where VACUUM cannot run.
    with pg._outbox_connection().transaction():
        pg.finish(rows, "w")
    assert pg._unvacuumed == EVERY  # counted, looked at after the next finish outside it
    _insert(pg, EVERY, 1)
    assert _drain(pg) == 1
    assert pg._unvacuumed == 0
    assert _claim_index_entries(pg.url) == 0


def test_a_finish_neither_waits_for_a_feed_in_progress_nor_puts_the_vacuum_off(pg: Any) -> None:
    _insert(pg, 0, EVERY)
    rows = pg.claim("w", 1000.0, 10, 30.0, EVERY)
    for row in rows:
        row.status = DONE
    with pg._txn():  # a feed's transaction on the store's main connection, under way in another thread
        finishing = threading.Thread(target=pg.finish, args=(rows, "w"), daemon=True)
        finishing.start()
        finishing.join(30)
        assert not finishing.is_alive(), "finishing rows waited for the feed's transaction"
    assert pg._unvacuumed == 0
    assert _claim_index_entries(pg.url) == 0
