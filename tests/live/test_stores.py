"""The store interface, one test body per behaviour, run against memory, SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from livestores import KINDS, store_url

from sopdsl.errors import StoreError
from sopdsl.live.store import (
    DONE,
    PARKED,
    PENDING,
    SCHEMA_VERSION,
    Batch,
    Entry,
    OutboxRow,
    ShardInfo,
    Store,
    open_store,
)


@pytest.fixture(params=KINDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url(request.param, tmp_path, request)


@pytest.fixture
def store(url: str) -> Any:
    opened = open_store(url)
    yield opened
    opened.close()


def _row(key: str, member: str = "m1", *, at: int = 100) -> OutboxRow:
    return OutboxRow("s", key, member, "send", {"key": key, "member": member}, next_at=at)


def _feed(
    store: Store, entries: list[dict[str, Any]], rows: list[OutboxRow], *, worker: str = "w1"
) -> Batch | None:
    """Apply entries that produce `rows`, as the runtime does (with no engine behind it)."""

    def step(info: ShardInfo, existing: list[Entry], offered: list[dict[str, Any]]) -> Batch:
        return Batch(entries=offered, rows=rows, next_due=500)

    return store.apply("s", entries, step, since=0, worker=worker, wall=1000.0, lease=30.0)


def test_a_shard_is_created_once(store: Store) -> None:
    first = store.ensure_shard("s", start=10, seed=3, plan_hash="abc")
    again = store.ensure_shard("s", start=99, seed=9, plan_hash="def")
    assert (
        (again.start, again.seed, again.plan_hash)
        == (first.start, first.seed, first.plan_hash)
        == (10, 3, "abc")
    )


def test_apply_appends_numbers_and_dedups_event_ids(store: Store) -> None:
    store.ensure_shard("s", start=0, seed=0, plan_hash="abc")
    _feed(store, [{"op": "event", "id": "e1"}, {"op": "event", "id": "e1"}, {"op": "advance"}], [])
    _feed(store, [{"op": "event", "id": "e1"}, {"op": "event", "id": "e2"}], [])
    journal = store.journal("s")
    assert [(e.seq, e.body) for e in journal] == [
        (1, {"op": "event", "id": "e1"}),
        (2, {"op": "advance"}),
        (3, {"op": "event", "id": "e2"}),
    ]
    assert [e.seq for e in store.journal("s", after=2)] == [3]
    assert store.stats()["events_in"] == 2


def test_outbox_suppresses_a_second_row_with_the_same_key(store: Store) -> None:
    store.ensure_shard("s", start=0, seed=0, plan_hash="abc")
    _feed(store, [{"op": "event"}], [_row("k1"), _row("k1"), _row("k2", "m2")])
    _feed(store, [{"op": "event"}], [_row("k1")])
    assert [r.key for r in store.outbox()] == ["k1", "k2"]


def test_a_failing_step_stores_nothing(store: Store) -> None:
    store.ensure_shard("s", start=0, seed=0, plan_hash="abc")
    _feed(store, [{"op": "event", "id": "e1"}], [_row("k1")])

    def broken(info: ShardInfo, existing: list[Entry], offered: list[dict[str, Any]]) -> Batch:
        raise RuntimeError("engine failed")

    with pytest.raises(RuntimeError):
        store.apply("s", [{"op": "event", "id": "e2"}], broken, since=0, worker="w1", wall=1000.0, lease=30.0)
    assert [e.body.get("id") for e in store.journal("s")] == ["e1"]
    assert [r.key for r in store.outbox()] == ["k1"]
    # The refused id was not recorded: sending it again is accepted.
    _feed(store, [{"op": "event", "id": "e2"}], [])
    assert [e.body.get("id") for e in store.journal("s")] == ["e1", "e2"]


def test_step_sees_applied_and_pending_entries(store: Store) -> None:
    store.ensure_shard("s", start=0, seed=0, plan_hash="abc")
    _feed(store, [{"op": "event", "n": 1}], [])
    seen: list[tuple[int, int, list[int], list[dict[str, Any]]]] = []

    def step(info: ShardInfo, existing: list[Entry], offered: list[dict[str, Any]]) -> Batch:
        seen.append((info.applied, info.head, [e.seq for e in existing], offered))
        return Batch(entries=offered, next_due=None)

    store.apply("s", [{"op": "event", "n": 2}], step, since=0, worker="w1", wall=1000.0, lease=30.0)
    assert seen == [(1, 1, [1], [{"op": "event", "n": 2}])]


def test_a_leased_shard_takes_entries_for_its_holder(store: Store) -> None:
    store.ensure_shard("s", start=0, seed=0, plan_hash="abc")
    _feed(store, [{"op": "event", "n": 1}], [], worker="w1")  # w1 holds the lease until 1030
    calls: list[int] = []

    def step(info: ShardInfo, existing: list[Entry], offered: list[dict[str, Any]]) -> Batch:
        calls.append(len(existing))
        return Batch(entries=offered, next_due=None)

    assert (
        store.apply("s", [{"op": "event", "n": 2}], step, since=1, worker="w2", wall=1010.0, lease=30.0)
        is None
    )
    assert calls == []
    assert [e.seq for e in store.journal("s")] == [1, 2]
    assert store.work("w2", 1010.0, 0, 10) == []
    assert store.work("w1", 1010.0, 0, 10) == ["s"]  # its own entry to apply
    # After the lease expires another worker takes over and applies what is pending.
    assert store.work("w2", 1031.0, 0, 10) == ["s"]
    assert store.apply("s", [], step, since=1, worker="w2", wall=1031.0, lease=30.0) is not None
    assert calls == [1]
    assert store.work("w2", 1031.0, 0, 10) == []


def test_a_free_shard_left_to_another_worker_is_journaled_for_it_and_a_live_lease_still_wins(
    store: Store,
) -> None:
    store.ensure_shard("s", start=0, seed=0, plan_hash="abc")
    calls: list[str] = []

    def step(info: ShardInfo, existing: list[Entry], offered: list[dict[str, Any]]) -> Batch:
        calls.append(f"{info.applied}+{len(offered)}")
        return Batch(entries=offered, next_due=None)

    def apply(worker: str, n: int | None, wall: float, defer_to: str | None) -> Batch | None:
        new = [{"op": "event", "n": n}] if n is not None else []
        return store.apply("s", new, step, since=0, worker=worker, wall=wall, lease=30.0, defer_to=defer_to)

    # Nobody holds it: left to w1, w2's feed is only journaled, and only w1 finds it as work.
    assert apply("w2", 1, 1000.0, "w1") is None and calls == []
    assert [e.seq for e in store.journal("s")] == [1]
    assert store.work("w2", 1000.0, 0, 10, skip=["s"]) == []
    assert store.work("w1", 1000.0, 0, 10) == ["s"]
    assert apply("w1", None, 1000.0, None) is not None and calls == ["0+0"]  # w1 takes it
    # A live lease is applied by its holder, whoever the shard is left to now, and never taken.
    assert apply("w1", 2, 1010.0, "w2") is not None
    assert apply("w2", 3, 1010.0, None) is None
    assert store.work("w2", 1010.0, 0, 10) == [] and store.work("w1", 1010.0, 0, 10, skip=["s"]) == ["s"]
    assert calls == ["0+0", "1+1"]


def test_a_lease_is_handed_over_by_its_holder_only_and_the_roster_says_who_is_alive(store: Store) -> None:
    for shard in ("s", "t"):
        store.ensure_shard(shard, start=0, seed=0, plan_hash="abc")
    _feed(store, [{"op": "event", "n": 1}], [], worker="w1")  # w1 holds s until 1030
    assert not store.hand_over("s", "w2", "w3", 1040.0)  # not w2's to give
    assert store.hand_over("s", "w1", "w2", 1040.0)
    roster = store.roster("w1", 1035.0, 1040.0)
    assert roster.workers == ("w1",) and roster.holders == {"s": "w2", "t": None}
    # w2 holds it now: w1's feed is journaled for w2.
    assert _feed(store, [{"op": "event", "n": 2}], [], worker="w1") is None
    assert store.work("w2", 1035.0, 0, 10) == ["s"] and store.work("w1", 1035.0, 0, 10) == []
    store.roster("w2", 1035.0, 1045.0)
    assert store.roster("w1", 1041.0, 1050.0).workers == ("w1", "w2")
    assert store.roster("w1", 1046.0, 1046.0).workers == ()  # w2 went silent, w1 left
    # A lapsed lease is still its worker's to hand over, until another worker takes the shard.
    assert store.roster("w1", 1046.0, 1046.0).holders == {"s": "w2", "t": None}
    assert not store.hand_over("s", "w1", "w3", 2000.0) and store.hand_over("s", "w2", "w3", 2000.0)
    assert store.work("w1", 1100.0, 0, 10) == [] and store.work("w3", 1100.0, 0, 10) == ["s"]


def test_work_lists_shards_with_due_timers(store: Store) -> None:
    store.ensure_shard("s", start=0, seed=0, plan_hash="abc")
    _feed(store, [{"op": "event"}], [])  # next_due 500
    assert store.work("w1", 2000.0, 499, 10) == []
    assert store.work("w1", 2000.0, 500, 10) == ["s"]
    assert store.next_wakeup() == 500


def test_claim_keeps_each_members_order_and_leases(store: Store) -> None:
    store.ensure_shard("s", start=0, seed=0, plan_hash="abc")
    _feed(
        store, [{"op": "event"}], [_row("a1", "a"), _row("a2", "a"), _row("b1", "b"), _row("c1", "c", at=200)]
    )
    first = store.claim("w1", 1000.0, 150, 30.0, 10)
    assert [r.key for r in first] == ["a1", "b1"]  # a2 waits behind a1; c1 is not due
    assert store.claim("w2", 1001.0, 150, 30.0, 10) == []  # leased to w1, and a2 still waits
    a1 = first[0]
    a1.status, a1.attempts = DONE, 1
    store.finish([a1], "w1")
    assert [r.key for r in store.claim("w2", 1002.0, 150, 30.0, 10)] == ["a2"]
    # w1 died holding b1: when its lease runs out, b1 is claimable again.
    assert [r.key for r in store.claim("w3", 1031.0, 150, 30.0, 10)] == ["b1"]


def test_a_worker_claims_its_own_leased_rows_again_unless_it_skips_those_in_flight(store: Store) -> None:
    store.ensure_shard("s", start=0, seed=0, plan_hash="abc")
    _feed(store, [{"op": "event"}], [_row("a1", "a"), _row("a2", "a"), _row("b1", "b"), _row("c1", "c")])
    first = store.claim("w1", 1000.0, 150, 30.0, 2)
    assert [r.key for r in first] == ["a1", "b1"]
    # Restarted under its name, w1 takes its leased rows back; while executing them, it skips them.
    assert [r.key for r in store.claim("w1", 1001.0, 150, 30.0, 10)] == ["a1", "b1", "c1"]
    in_flight = {r.id for r in first}
    assert [r.key for r in store.claim("w1", 1002.0, 150, 30.0, 10, skip=in_flight)] == ["c1"]  # a2 waits


def test_a_claim_records_the_outcomes_it_is_given_first_and_takes_the_rows_they_free(store: Store) -> None:
    store.ensure_shard("s", start=0, seed=0, plan_hash="abc")
    _feed(store, [{"op": "event"}], [_row("a1", "a"), _row("a2", "a"), _row("b1", "b")])
    a1, b1 = store.claim("w1", 1000.0, 150, 30.0, 10)
    a1.status, a1.attempts = DONE, 1
    b1.attempts, b1.failures, b1.next_at, b1.error = 1, 1, 500, "RuntimeError: busy"
    # One call: a1 done frees a2; b1's retry is not due yet.
    assert [r.key for r in store.claim("w1", 1001.0, 150, 30.0, 10, finished=[a1, b1])] == ["a2"]
    rows = {r.key: r for r in store.outbox()}
    assert rows["a1"].status == DONE and (rows["b1"].status, rows["b1"].next_at) == (PENDING, 500)
    assert store.stats()["actions_out"] == 1


def test_finish_records_outcomes_and_stats(store: Store) -> None:
    store.ensure_shard("s", start=0, seed=0, plan_hash="abc")
    _feed(store, [{"op": "event", "id": "x"}], [_row("k1", "a"), _row("k2", "b"), _row("k3", "c")])
    k1, k2, k3 = store.claim("w1", 1000.0, 150, 30.0, 10)
    k1.status, k1.attempts = DONE, 1
    k2.status, k2.attempts, k2.failures, k2.error = PARKED, 5, 5, "RuntimeError: down"
    k3.attempts, k3.failures, k3.next_at, k3.error = 1, 1, 180, "RuntimeError: busy"
    store.finish([k1, k2, k3], "w1")
    rows = {r.key: r for r in store.outbox()}
    assert (rows["k2"].status, rows["k2"].error) == (PARKED, "RuntimeError: down")
    assert (rows["k3"].status, rows["k3"].next_at) == (PENDING, 180)
    assert store.claim("w1", 1000.0, 179, 30.0, 10) == []  # the retry is not due yet
    assert [r.key for r in store.claim("w1", 1000.0, 180, 30.0, 10)] == ["k3"]
    assert store.stats() == {
        "events_in": 1,
        "actions_out": 1,
        "pending": 1,
        "failures": 6,
        "parked": 1,
        "failed": 0,
    }


def test_plans_are_kept_by_hash(store: Store) -> None:
    store.save_plan("h1", '{"a": "计划"}')
    store.save_plan("h1", "ignored")
    assert store.load_plan("h1") == '{"a": "计划"}'
    assert store.load_plan("h2") is None


# ---- opening: URLs, schema versions --------------------------------------------------------------


def test_unknown_url_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match=r"unknown store URL 'redis://x'.*sqlite:///"):
        open_store("redis://x")


def test_sqlite_in_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        open_store(f"sqlite:///{tmp_path}/nope/state.db")


def test_sqlite_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=r"junk\.db"):
        open_store(f"sqlite:///{path}")


def test_postgres_that_does_not_answer_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="cannot connect"):
        open_store("postgresql://nobody:secret@127.0.0.1:1/none")


def _set_version(url: str, version: int) -> None:
    if url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute("UPDATE sopdsl_meta SET value = ? WHERE key = 'schema_version'", (str(version),))
    else:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE sopdsl_meta SET value = %s WHERE key = 'schema_version'", (str(version),))


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_schema_version_is_checked_at_open(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = store_url(kind, tmp_path, request)
    store = open_store(url)
    store.ensure_shard("s", start=1, seed=0, plan_hash="abc")
    store.close()
    reopened = open_store(url)  # same version: opens, and keeps what it had
    assert reopened.ensure_shard("s", start=2, seed=0, plan_hash="x").start == 1
    reopened.close()
    _set_version(url, SCHEMA_VERSION + 1)
    with pytest.raises(StoreError, match=rf"schema version {SCHEMA_VERSION + 1}, newer.*upgrade sopdsl"):
        open_store(url)
    _set_version(url, SCHEMA_VERSION - 1)
    with pytest.raises(StoreError, match=r"migrate=True"):
        open_store(url)


def test_append_only_journals_for_the_applier(store: Store) -> None:
    store.ensure_shard("s", start=0, seed=0, plan_hash="abc")
    assert store.append("s", [{"op": "event", "id": "e1"}, {"op": "event", "id": "e1"}]) == 1
    assert store.append("s", [{"op": "event", "id": "e1"}]) == 0
    assert store.work("w1", 1000.0, 0, 10) == ["s"]
    seen: list[list[int]] = []

    def step(info: ShardInfo, existing: list[Entry], offered: list[dict[str, Any]]) -> Batch:
        seen.append([e.seq for e in existing if e.seq > info.applied])
        return Batch(entries=offered)

    store.apply("s", [], step, since=0, worker="w1", wall=1000.0, lease=30.0)
    assert seen == [[1]]
    assert store.work("w1", 1000.0, 0, 10) == []


def test_purge_deletes_finished_rows_and_keeps_the_totals(store: Store) -> None:
    store.ensure_shard("s", start=0, seed=0, plan_hash="abc")
    rows = [_row("old", "a", at=100), _row("parked", "b", at=100), _row("new", "c", at=900)]
    skipped = _row("dropped", "d", at=100)
    skipped.status = "skipped"
    _feed(store, [{"op": "event"}], [*rows, skipped])
    old, parked, new = store.claim("w1", 1000.0, 1000, 30.0, 10)
    old.status, old.attempts, old.failures = DONE, 2, 1
    parked.status, parked.attempts, parked.failures = PARKED, 5, 5
    new.status, new.attempts = DONE, 1
    store.finish([old, parked, new], "w1")
    before = store.stats()
    assert store.purge(500) == 2  # the old done row and the old skipped one
    assert [r.key for r in store.outbox()] == ["parked", "new"]
    assert store.stats() == before
    assert store.purge(500) == 0


@pytest.mark.parametrize("kind", [kind for kind in KINDS if kind != "memory"])  # shared by processes
def test_workers_purging_at_once_count_each_row_once(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Every worker of a shared store purges once a day (`--keep-days`), at about the same time:
    each finished row is deleted and counted by one of them, never by both."""
    import threading

    url = store_url(kind, tmp_path, request)
    stores = [open_store(url), open_store(url)]
    try:
        stores[0].ensure_shard("s", start=0, seed=0, plan_hash="abc")
        for round_ in range(4):
            rows = [_row(f"r{round_}-{n}", f"m{n}") for n in range(30)]
            _feed(stores[0], [{"op": "event"}], rows)
            claimed = stores[0].claim("w1", 1000.0, 1000, 30.0, 100)
            for row in claimed:
                row.status, row.attempts = DONE, 1
            stores[0].finish(claimed, "w1")
            before = stores[0].stats()
            start = threading.Barrier(2)
            gone: list[int] = []

            def purge(store: Store, start: threading.Barrier, gone: list[int]) -> None:
                start.wait()
                gone.append(store.purge(500))

            threads = [threading.Thread(target=purge, args=(store, start, gone)) for store in stores]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert sorted(gone)[-1] + sorted(gone)[0] == len(rows) == len(claimed), gone
            assert stores[1].stats() == before  # the totals count each purged row once
            assert stores[1].outbox() == []
    finally:
        for store in stores:
            store.close()


def test_member_rows_of_a_rolled_back_transaction_are_written_by_the_next(tmp_path: Path) -> None:
    """The figures' member rows are written once per slot and member, but never skipped on the
    word of a transaction that did not commit."""
    store = open_store(f"sqlite:///{tmp_path}/noted.db")
    store.ensure_shard("s", start=0, seed=0, plan_hash="abc")
    post = {"op": "event", "kind": "message", "member": "m1", "group": "g", "time": 1000}

    def failing(info: ShardInfo, existing: list[Entry], offered: list[dict[str, Any]]) -> Batch:
        # The snapshot is written last: its body cannot be stored, so everything rolls back.
        return Batch(entries=offered, rows=[], next_due=None, snapshot=(1, object()))  # type: ignore[arg-type]

    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises for an unbindable value
        store.apply("s", [post], failing, since=0, worker="w1", wall=1000.0, lease=30.0)
    assert store.figures("s", 0, 2000).seen == []
    _feed(store, [post], [])
    _feed(store, [{**post, "time": 1001}], [])
    _feed(store, [{**post, "member": "m2"}], [])
    found = store.figures("s", 0, 2000)
    assert found.seen == [("g", 1, "posters", "m1"), ("g", 1, "posters", "m2")]
    assert ("g", 1, "messages", 3.0) in found.sums
    store.close()
