"""`sopdsl run --workers N`: worker processes on one port sharing a PostgreSQL store.

Events are posted over HTTP to many shards, each request on a new connection, so the kernel
spreads them over the workers; the test then waits until every journaled entry is applied and
every action executed, and compares the actions executed (the log executor's lines, with their
idempotency keys) with what one process decides for the same events, and the shards' leases with
the lease rule's even shares (sopdsl/live/balance.py). With one worker killed by SIGKILL mid-run,
the supervisor starts it again under its name; requests it was answering fail and are sent again
with the same event ids, as a bot would. In-process runtimes with their loops in threads check
the rule where one worker takes every request, one dies and comes back, and that the store wakes
a holder (entries journaled for it) and the dispatchers (actions a process without one stored).
"""

from __future__ import annotations

import datetime
import io
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest

import sopdsl

BUSY = Path(__file__).parent.parent / "engine_cases" / "busy.sop"
SHARDS = [f"c{n:02d}" for n in range(12)]
KINDS = ["join", "join", "message", "order", "leave"]


@pytest.fixture
def pg_url(postgres_db: str) -> str:
    """A fresh schema of the run's database, named for this branch's tests."""
    schema = f"pgworkers_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_db, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{postgres_db}?options=-csearch_path%3D{schema}"


def _events(now: int, shards: list[str] = SHARDS, rounds: int = 3) -> dict[str, list[list[dict[str, Any]]]]:
    """For each shard, lists of events (each with an id and a time, so a dry run gives the same keys)."""
    lists: dict[str, list[list[dict[str, Any]]]] = {}
    n = 0
    for index, shard in enumerate(shards):
        lists[shard] = []
        for batch in range(rounds):
            body = []
            for _ in range(10):
                n += 1
                kind = KINDS[n % len(KINDS)]
                event: dict[str, Any] = {
                    "id": f"e{n}",
                    "kind": kind,
                    "member": f"m{(n * 7 + index) % 23}",
                    "group": "g_north" if n % 3 else "g_south",
                    "time": now - 120 + batch * 10,
                }
                if kind == "order":
                    event["data"] = {"amount": 99}
                body.append(event)
            lists[shard].append(body)
    return lists


def _post(port: int, shard: str, body: list[dict[str, Any]]) -> None:
    """Post a list until it is answered 202 (a worker killed mid-request: send it again, same ids)."""
    for _ in range(50):
        try:
            answer = httpx.post(f"http://127.0.0.1:{port}/events?shard={shard}", json=body, timeout=30)
        except httpx.TransportError:
            time.sleep(0.2)
            continue
        assert answer.status_code == 202, answer.text
        return
    raise AssertionError(f"no worker took a list for {shard}")


def _settled(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        behind = conn.execute("SELECT COUNT(*) FROM sopdsl_shards WHERE head > applied").fetchone()
        pending = conn.execute("SELECT COUNT(*) FROM sopdsl_outbox WHERE status = 'pending'").fetchone()
        return behind is not None and pending is not None and behind[0] == 0 and pending[0] == 0


def _expected(lists: dict[str, list[list[dict[str, Any]]]]) -> set[str]:
    """The keys one process decides for the same events, as executors see them (`SHARD/KEY`)."""
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load(str(BUSY))))
    keys: set[str] = set()
    for shard, bodies in lists.items():
        clock = sopdsl.ManualClock(bodies[-1][-1]["time"])
        solo = sopdsl.Runtime(plan, "memory://", clock=clock, dry_run=True, shard=shard)
        for body in bodies:
            solo.feed_many(body)
        solo.dispatch()
        # Executors get the default shard's keys as they are, the others' with their shard.
        prefix = "" if shard == "default" else f"{shard}/"
        keys |= {f"{prefix}{r.key}" for r in solo.store.outbox() if r.status == "dry_run"}
        solo.close()
    return keys


@pytest.mark.parametrize("kill_one", [False, True], ids=["all_live", "one_killed"])
def test_workers_share_one_port_spread_the_leases_and_lose_nothing(
    kill_one: bool, pg_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "actions.jsonl"
    err = tmp_path / "stderr.txt"
    command = [
        sys.executable, "-m", "sopdsl", "run", str(BUSY), "--store", pg_url, "--workers", "4",
        "--worker", "w", "--executor-concurrency", "4", "--insecure-no-auth", "--port", "0",
    ]  # fmt: skip
    with out.open("w") as stdout, err.open("w") as stderr:
        service = subprocess.Popen(command, stdout=stdout, stderr=stderr)
    try:
        deadline = time.monotonic() + 60
        port = None
        while port is None:
            assert time.monotonic() < deadline and service.poll() is None, err.read_text()
            found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", err.read_text())
            port = int(found.group(1)) if found else None
            time.sleep(0.05)
        while err.read_text().count("sopdsl run as worker") < 4:
            assert time.monotonic() < deadline and service.poll() is None, err.read_text()
            time.sleep(0.05)
        lists = _events(int(time.time()))
        rounds = list(zip(*lists.values(), strict=True))
        for number, bodies in enumerate(rounds):
            if kill_one and number == 1:
                workers = [
                    int(p)
                    for p in Path(f"/proc/{service.pid}/task/{service.pid}/children").read_text().split()
                ]
                os.kill(workers[0], signal.SIGKILL)
            for shard, body in zip(lists, bodies, strict=True):
                _post(port, shard, body)
        while not _settled(pg_url):
            assert time.monotonic() < deadline + 120, "the workers did not apply and execute everything"
            time.sleep(0.1)
        # The shards' leases spread evenly over the workers (a restarted one gets its share back):
        # 13 shards (with the default one) are 4, 3, 3 and 3.
        while True:
            with psycopg.connect(pg_url, autocommit=True) as conn:
                owners: dict[str, str | None] = dict(
                    conn.execute("SELECT shard, lease_owner FROM sopdsl_shards").fetchall()
                )
            held = Counter(owners.values())
            if set(held) == {"w-1", "w-2", "w-3", "w-4"} and sorted(held.values()) == [3, 3, 3, 4]:
                break
            assert time.monotonic() < deadline + 150, f"the leases are not spread evenly: {owners}"
            time.sleep(0.1)
        with psycopg.connect(pg_url, autocommit=True) as conn:
            journaled = conn.execute(
                'SELECT COUNT(*) FROM sopdsl_journal WHERE body LIKE \'%"op":"event"%\''
            ).fetchone()
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=60)
    assert service.returncode == 0, err.read_text()

    # Every event journaled once, however often it was sent.
    assert journaled is not None and journaled[0] == sum(len(b) for bodies in lists.values() for b in bodies)
    # The shards' leases are spread over the workers.
    holders = {owners[shard] for shard in SHARDS}
    assert holders <= {"w-1", "w-2", "w-3", "w-4"} and len(holders) >= 2, owners
    executed = [json.loads(line)["idempotency_key"] for line in out.read_text().splitlines()]
    if kill_one:
        assert "worker w-" in err.read_text() and "starting it again" in err.read_text()
        # At least once: only rows the killed worker had claimed (one batch) may go out twice.
        assert len(executed) - len(set(executed)) <= 20
    else:
        assert len(executed) == len(set(executed)), "an action was executed twice"
    assert set(executed) == _expected(lists)


class _Worker:
    """A runtime whose loop runs in a thread, woken by the store, as each `sopdsl run` worker's is."""

    def __init__(self, plan: Any, url: str, name: str, executed: list[str], spans: list[Any]) -> None:
        from sopdsl.live.dispatch import ACTION_KINDS

        def record(action: Any, key: str) -> None:
            executed.append(key)

        executors = dict.fromkeys(ACTION_KINDS, record)
        self.runtime = sopdsl.Runtime(plan, url, worker=name, executors=executors, lease=LEASE)
        apply = self.runtime.store.apply

        def timed(shard: str, new: Any, step: Any, **options: Any) -> Any:
            def watched(*args: Any) -> Any:  # the step runs inside the shard's transaction
                began = time.monotonic()
                try:
                    return step(*args)
                finally:
                    spans.append((shard, name, began, time.monotonic()))

            return apply(shard, new, watched, **options)

        self.runtime.store.apply = timed  # type: ignore[method-assign]
        self.stop = threading.Event()
        assert self.runtime.watch(self.runtime.wake.set)
        self.thread = threading.Thread(target=self.runtime.run, args=(self.stop,), kwargs={"idle": 0.2})
        self.thread.start()

    def crash(self) -> None:
        """Stop as SIGKILL would: the loop ends and the connections drop, leases and all left as they are."""
        self.stop.set()
        self.thread.join(timeout=30)
        self.runtime.store.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        self.runtime.close()


LEASE = 2.0  # seconds: a dead worker's shards pass to the others this soon


def test_workers_fed_through_one_hold_even_shares_and_take_over_and_give_back_a_dead_ones(
    pg_url: str,
) -> None:
    # Every list goes to worker a (a load balancer that sends everything to one), yet each of the
    # four applies its share: 13 shards are 4, 3, 3 and 3. Worker d dies: its shards pass to the
    # other three (5, 4, 4) once its leases lapse; it comes back and gets its share back. Every
    # action goes out once, and no two workers ever run a step of one shard at the same time.
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load(str(BUSY))))
    shards = ["default", *SHARDS]
    lists = _events(int(time.time()), shards, rounds=4)
    executed: list[str] = []
    spans: list[tuple[str, str, float, float]] = []
    workers = {name: _Worker(plan, pg_url, name, executed, spans) for name in "abcd"}
    try:

        def feed(number: int) -> None:
            for shard, bodies in lists.items():
                workers["a"].runtime.feed_batch(bodies[number], shard=shard)

        def settles(holding: list[int], live: str) -> None:
            deadline = time.monotonic() + 60
            while True:
                with psycopg.connect(pg_url, autocommit=True) as conn:
                    owners: dict[str, str | None] = dict(
                        conn.execute("SELECT shard, lease_owner FROM sopdsl_shards").fetchall()
                    )
                held = Counter(owners[shard] for shard in shards)
                if _settled(pg_url) and set(held) == set(live) and sorted(held.values()) == holding:
                    return
                assert time.monotonic() < deadline, f"the leases did not settle: {owners}"
                time.sleep(0.1)

        feed(0)
        feed(1)
        settles([3, 3, 3, 4], "abcd")
        workers["d"].crash()
        feed(2)
        settles([4, 4, 5], "abc")
        workers["d"] = _Worker(plan, pg_url, "d", executed, spans)
        feed(3)
        settles([3, 3, 3, 4], "abcd")
    finally:
        for worker in workers.values():
            if not worker.runtime.closed and not worker.stop.is_set():
                worker.close()
    assert len(executed) == len(set(executed)), "an action was executed twice"
    assert set(executed) == _expected(lists)
    by_shard: dict[str, list[tuple[float, float, str]]] = {}
    for shard, name, began, ended in spans:
        by_shard.setdefault(shard, []).append((began, ended, name))
    for shard, steps in by_shard.items():
        steps.sort()
        for (_, ended, first), (began, _, then) in itertools.pairwise(steps):
            assert ended <= began, f"{first} and {then} applied {shard} at once"


def test_a_list_journaled_by_another_worker_is_applied_without_waiting_for_a_poll(pg_url: str) -> None:
    # Worker a holds shard s1 and polls only once a minute; worker b journals a list for s1 (a's
    # lease), and its commit NOTIFYs a, whose loop applies the list at once.
    from zoneinfo import ZoneInfo

    from sopdsl.live.service import Service

    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load(str(BUSY))))
    now = int(time.time())
    a = sopdsl.Runtime(plan, pg_url, worker="a", dry_run=True)
    b = sopdsl.Runtime(plan, pg_url, worker="b", dry_run=True)
    service = Service(a, zone=ZoneInfo("Asia/Shanghai"), port=0, tick_every=60.0, log=io.StringIO())
    try:
        assert a.watch(service.wake_up)
        assert a.feed_batch([_join("e1", now)], shard="s1").duplicates == []  # a takes s1's lease
        service.start()
        while service.ready()[0] != 200:  # its first loop turn is over: the next is a minute away
            time.sleep(0.01)
        assert b.feed_batch([_join("e2", now), _join("e3", now)], shard="s1").caused == [0, 0]  # journaled
        deadline = time.monotonic() + 20  # a third of the poll interval, however loaded the machine
        while _applied(pg_url, "s1") < 3:
            assert time.monotonic() < deadline, "the holder waited for its poll"
            time.sleep(0.05)
        assert sorted(a.engine("s1").members) == ["m1", "m2", "m3"]
    finally:
        service.stop()
        b.close()


def test_actions_another_worker_stored_are_dispatched_without_waiting_for_a_poll(pg_url: str) -> None:
    # Worker a dispatches in a thread of its own that polls once a minute; b, which holds shard s1
    # and has no dispatcher (a bot feeding the store), stores actions and NOTIFYs a's dispatcher.
    from sopdsl.live.dispatch import ACTION_KINDS

    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load(str(BUSY))))
    now = int(time.time())
    executed: list[str] = []
    a = sopdsl.Runtime(
        plan,
        pg_url,
        worker="a",
        executors=dict.fromkeys(ACTION_KINDS, lambda action, key: executed.append(key)),
    )
    b = sopdsl.Runtime(plan, pg_url, worker="b", dry_run=True)
    try:
        a.dispatch_apart(60.0)
        assert a.watch(lambda: None)
        orders = [_join(f"e{n}", now) | {"kind": "order", "data": {"amount": 99}} for n in range(1, 4)]
        b.feed_batch(orders, shard="s1")  # b takes s1: an order is a tag, an untag and an invite
        stored = {f"s1/{row.key}" for row in b.store.outbox("s1")}  # (a may have sent some already)
        # ... and the vip playbook's note to the operator, a send: kept back in quiet hours
        # (22:00-08:00 in Shanghai), until then no outbox row. The test runs at any hour.
        daytime = 8 <= datetime.datetime.fromtimestamp(now, ZoneInfo("Asia/Shanghai")).hour < 22
        assert len(stored) == 9 + 3 * daytime
        deadline = time.monotonic() + 20  # a third of the poll interval, however loaded the machine
        while set(executed) != stored:
            assert time.monotonic() < deadline, "the dispatcher waited for its poll"
            time.sleep(0.05)
    finally:
        a.close()
        b.close()


def test_a_worker_reads_a_shards_snapshot_once_while_another_holds_it_and_again_to_take_it_over(
    pg_url: str,
) -> None:
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load(str(BUSY))))
    now = int(time.time())
    a = sopdsl.Runtime(plan, pg_url, worker="a", dry_run=True)
    b = sopdsl.Runtime(plan, pg_url, worker="b", dry_run=True)
    reads: list[str] = []
    load_snapshot = b.store.load_snapshot

    def counted(shard: str) -> tuple[int, bytes] | None:
        reads.append(shard)
        return load_snapshot(shard)

    b.store.load_snapshot = counted  # type: ignore[method-assign]
    try:
        a.feed_batch([_join("e1", now)], shard="s1")  # a takes s1's lease
        for n in (2, 3, 4):
            assert b.feed_batch([_join(f"e{n}", now)], shard="s1").caused == [0]  # journaled for a
        assert reads == ["s1"]  # not a query per list
        a.close()  # gives its leases up
        b.feed_batch([_join("e5", now)], shard="s1")  # b takes s1 over: from its snapshot, if any
        assert reads == ["s1", "s1"]
        assert sorted(b.engine("s1").members) == ["m1", "m2", "m3", "m4", "m5"]
    finally:
        b.close()


def test_the_admin_views_of_a_shard_another_worker_holds_show_what_it_committed(pg_url: str) -> None:
    # `sopdsl run --workers 2`: the kernel hands an admin request to either worker. The one not
    # holding the shard used to answer 500 ("held by another worker"), after a write went in.
    from sopdsl.engine.records import MemberRecord

    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load(str(BUSY))))
    now = int(time.time())
    a = sopdsl.Runtime(plan, pg_url, worker="a", dry_run=True)
    b = sopdsl.Runtime(plan, pg_url, worker="b", dry_run=True)
    try:
        a.feed_batch([_join("e1", now), _join("e2", now)])  # a takes the shard's lease
        assert b.look("member", "m1") == a.look("member", "m1")
        assert b.look("member", "m1")["member"]["groups"] == ["g_north"]
        b.register([MemberRecord(id="m9", tags=("vip",))])  # journaled for a, read back by b
        assert b.look("member", "m9")["member"]["tags"] == ["vip"] == a.look("member", "m9")["member"]["tags"]
        a.feed_batch([_join("e3", now)])
        assert b.look("member", "m3") == a.look("member", "m3")  # b's copy catches up
        assert sorted(b.engine().members) == ["m1", "m2", "m3", "m9"]
    finally:
        a.close()
        b.close()


def _join(event_id: str, now: int) -> dict[str, Any]:
    return {"id": event_id, "kind": "join", "member": f"m{event_id[1:]}", "group": "g_north", "time": now}


def _applied(url: str, shard: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        found = conn.execute("SELECT applied FROM sopdsl_shards WHERE shard = %s", (shard,)).fetchone()
        return int(found[0]) if found else 0


def test_workers_need_a_postgresql_store_and_no_stdin(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from sopdsl.live.command import run_command

    runner = CliRunner()
    sqlite = runner.invoke(
        run_command, [str(BUSY), "--store", f"sqlite:///{tmp_path}/s.db", "--workers", "2"]
    )
    assert sqlite.exit_code == 2 and "--workers needs a PostgreSQL store" in sqlite.output
    stdin = runner.invoke(
        run_command, [str(BUSY), "--store", "postgresql://x@127.0.0.1/db", "--workers", "2", "--stdin"]
    )
    assert stdin.exit_code == 2 and "cannot go with --workers" in stdin.output
