"""A shard whose journal already holds an id over `MAX_ID` (journaled before ids were limited) is
not wedged: it loads, ticks, takes events, snapshots and restarts, and the ids are named in a
warning once it is loaded.

On PostgreSQL, which indexes at most 2,704 bytes a row, every tick of such a shard failed at once
(`index row size 3032 exceeds btree version 4 maximum 2704 for index "sopdsl_outbox_order"`), and
so did every later feed: no other member's send went out again. The outbox's order and the
figures' members and groups now hold a shorter stand-in for such an id (`long_ids.bounded`);
the engine, the journal and the actions keep the id itself.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

import pytest
from livestores import KINDS, store_url
from test_long_ids import WAITING
from test_service import Recorder

import sopdsl
from sopdsl.live.clock import ManualClock
from sopdsl.live.long_ids import bounded
from sopdsl.live.runtime import Runtime
from sopdsl.live.store import Store, open_store
from sopdsl.live.store_figures import PlaybookTally, write_playbooks
from sopdsl.live.store_sql import SqlStore

START = 1_772_294_400  # 2026-03-01 00:00 in Shanghai
# Random, so that PostgreSQL cannot compress it into an index row.
LONG_MEMBER = secrets.token_hex(1500)
LONG_GROUP = secrets.token_hex(1500)


def runtime(store: Store, clock: ManualClock, recorder: Recorder) -> Runtime:
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(WAITING, "long.sop")))
    # A snapshot after every apply: the restarts below read the engine from one.
    return Runtime(plan, store, executors={"send": recorder}, clock=clock, snapshot_every=1)


@pytest.mark.parametrize("kind", KINDS)
def test_a_shard_holding_an_id_too_long_keeps_working_and_names_it(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    url = store_url(kind, tmp_path, request)
    clock = ManualClock(START)
    recorder = Recorder()
    store = open_store(url)
    first = runtime(store, clock, recorder)
    first.tick()
    # As sopdsl journaled them before ids were limited: a member's id, and a group's.
    store.append(
        first.shard,
        [
            {"op": "event", "kind": "join", "member": LONG_MEMBER, "group": "g1", "time": START},
            {"op": "event", "kind": "join", "member": "m5", "group": LONG_GROUP, "time": START},
        ],
    )
    first.close()

    def restarted() -> Runtime:
        return runtime(store if kind == "memory" else open_store(url), clock, recorder)

    second = restarted()
    with caplog.at_level(logging.WARNING, logger="sopdsl.runtime"):
        second.feed({"kind": "join", "member": "m1", "group": "g1"})
    [warning] = [r.getMessage() for r in caplog.records if "longer than 256" in r.getMessage()]
    assert "shard 'default'" in warning
    assert f"member '{bounded(LONG_MEMBER)}' (3000 characters)" in warning
    assert f"group '{bounded(LONG_GROUP)}' (3000 characters)" in warning
    assert "register the member or group under its real id" in warning

    clock.advance(61)
    sent = second.tick()  # the sends of all three joins: the shard is not wedged
    assert sorted(str(a.member) for a in sent) == sorted([LONG_MEMBER, "m5", "m1"])
    # The executor gets each action whole: the long ids themselves, not their stand-ins.
    assert sorted((str(a.member), str(a.group)) for a, _ in recorder.calls) == sorted(
        [(LONG_MEMBER, "g1"), ("m5", LONG_GROUP), ("m1", "g1")]
    )
    second.feed({"kind": "join", "member": "m2", "group": "g1"})
    assert second.store.load_snapshot(second.shard) is not None
    second.close()

    third = restarted()  # from the snapshot, which holds the long ids too
    assert LONG_MEMBER in third.engine().members and LONG_GROUP in third.engine().groups
    clock.advance(61)
    assert [a.member for a in third.tick()] == ["m2"]
    third.feed({"kind": "join", "member": "m3", "group": "g1"})
    clock.advance(61)
    assert [a.member for a in third.tick()] == ["m3"]
    assert len(recorder.calls) == 5
    third.close()


def test_a_stand_in_is_short_unique_and_kept_for_an_id_within_the_limit() -> None:
    assert bounded("m1") == "m1" and bounded("会" * 256) == "会" * 256
    long = bounded(LONG_MEMBER)
    assert len(long) <= 256 and long.startswith(LONG_MEMBER[:32])
    assert bounded(LONG_MEMBER) == long != bounded(LONG_MEMBER[:-1] + "x")


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "memory"])
def test_the_per_playbook_figures_of_a_long_id_are_stored_under_its_stand_in(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # Arms, touches and goal events name members too (a split, a send, a goal met): on PostgreSQL
    # each overflowed its table's primary key as the outbox's order did.
    store = open_store(store_url(kind, tmp_path, request))
    assert isinstance(store, SqlStore)
    tally = PlaybookTally()
    tally.arms[("welcome", LONG_MEMBER)] = ("a", START)
    tally.touches.add(("welcome", LONG_MEMBER, START, "a"))
    tally.hit(LONG_MEMBER, START, "welcome\x1fbuys", 10)
    with store._txn() as cur:
        write_playbooks(cur, store._sql, "default", tally, store._many)
    with store._txn() as cur:
        found = [
            cur.execute(f"SELECT member FROM {table}").fetchall()
            for table in ("sopdsl_figure_arms", "sopdsl_figure_touches", "sopdsl_figure_goals")
        ]
    assert found == [[(bounded(LONG_MEMBER),)]] * 3
    store.close()
