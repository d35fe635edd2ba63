"""Engine snapshots in the live runtime: a restart reads the latest snapshot and the journal after it.

What a bot developer notices: a restart takes as long as the journal since the last snapshot,
not since the shard began, and sends exactly what an uninterrupted run sends.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest
from livestores import KINDS, store_url, timeline

import sopdsl
from sopdsl.engine.actions import Action
from sopdsl.live import shards as live
from sopdsl.live.dispatch import ACTION_KINDS
from sopdsl.live.runtime import ManualClock, Runtime
from sopdsl.plan import Plan

BUSY = Path(__file__).parent.parent / "engine_cases" / "busy.sop"


def busy_plan() -> Plan:
    return sopdsl.compile_program(sopdsl.check(sopdsl.load(str(BUSY))))


@pytest.fixture(params=[k for k in KINDS if k != "memory"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url(request.param, tmp_path, request)


class Keys:
    def __init__(self) -> None:
        self.keys: list[str] = []

    def __call__(self, action: Action, key: str) -> None:
        self.keys.append(key)


def open_runtime(url: str, line: dict[str, Any], keys: Keys, **options: Any) -> tuple[Runtime, ManualClock]:
    clock = ManualClock(line["start"])
    rt = Runtime(busy_plan(), url, executors=dict.fromkeys(ACTION_KINDS, keys), clock=clock, **options)
    return rt, clock


def drive(rt: Runtime, clock: ManualClock, line: dict[str, Any], events: list[dict[str, Any]]) -> None:
    if rt.stats()["events_in"] == 0:
        for group in line["groups"]:
            rt.add_group(group["id"], tags=group.get("tags", ()))
        for member in line["members"]:
            rt.add_member(member["id"], groups=member["groups"], tags=member["tags"])
    for event in events:
        clock.set(event["time"])
        rt.tick(event["time"] - 1)
        rt.feed(event)
        rt.dispatch()


def finish(rt: Runtime, clock: ManualClock, line: dict[str, Any]) -> None:
    clock.set(line["end"])
    rt.tick()
    rt.close()


def replayed(rt: Runtime) -> int:
    """The journal entries a runtime played to catch its engines up (at its start: its restart's replay)."""
    return rt._shards.replayed


def test_a_restart_replays_only_the_journal_after_the_latest_snapshot(
    url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    line = timeline(3, 200)
    half = len(line["events"]) // 2
    whole_keys = Keys()
    rt, clock = open_runtime(store_url("memory", tmp_path, request), line, whole_keys, snapshot_every=0)
    drive(rt, clock, line, line["events"])
    finish(rt, clock, line)

    keys = Keys()
    rt, clock = open_runtime(url, line, keys, snapshot_every=40)
    drive(rt, clock, line, line["events"][:half])
    head = len(rt.store.journal("default"))
    rt.close()
    assert head > 3 * 40  # events, set-up and timer runs: several snapshots' worth

    rt, clock = open_runtime(url, line, keys, snapshot_every=40)
    assert replayed(rt) < 40  # only the entries after the latest snapshot
    drive(rt, clock, line, line["events"][half:])
    finish(rt, clock, line)
    assert len(whole_keys.keys) > 100
    assert keys.keys == whole_keys.keys


def _corrupt(url: str) -> None:
    statement = "UPDATE sopdsl_snapshots SET body = ?"
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute(statement, (b"garbage",))
    else:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(statement.replace("?", "%s"), (b"garbage",))


def test_an_unreadable_snapshot_is_logged_and_the_whole_journal_replayed(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    line = timeline(4, 80)
    keys = Keys()
    rt, clock = open_runtime(url, line, keys, snapshot_every=20)
    drive(rt, clock, line, line["events"])
    head = len(rt.store.journal("default"))
    outbox = len(rt.store.outbox())
    rt.close()
    _corrupt(url)
    with caplog.at_level(logging.WARNING, logger="sopdsl.runtime"):
        rt, clock = open_runtime(url, line, keys, snapshot_every=20)
    assert any("unreadable engine snapshot" in r.getMessage() for r in caplog.records)
    assert replayed(rt) == head
    clock.set(line["events"][-1]["time"])
    rt.tick()
    assert len(rt.store.outbox()) == outbox  # the same state: nothing decided twice
    rt.close()


def test_without_snapshots_none_is_written(url: str) -> None:
    line = timeline(5, 30)
    rt, clock = open_runtime(url, line, Keys(), snapshot_every=0)
    drive(rt, clock, line, line["events"])
    assert rt.store.load_snapshot("default") is None
    rt.close()


def test_a_worker_without_the_shard_restores_its_snapshot_once_not_per_event(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = store_url("postgres", tmp_path, request)
    line = timeline(6, 60)
    holder, clock = open_runtime(url, line, Keys(), snapshot_every=10, worker="A", lease=300)
    drive(holder, clock, line, line["events"][:40])
    assert holder.store.load_snapshot("default") is not None
    other = Runtime(busy_plan(), url, clock=clock, worker="B", lease=300, snapshot_every=10)
    for event in line["events"][40:]:
        clock.set(event["time"])
        other.feed(event)  # journaled for A, which holds the shard
    assert other._shards.restored == 1
    holder.close()
    other.close()


def test_the_automatic_snapshot_interval_grows_with_the_engines_state() -> None:
    # A fixed interval made a large shard spend much of its CPU writing snapshots; the automatic
    # one waits for at least SNAPSHOT_PER_STATE entries per member and flow.
    assert not live.snapshot_due(live.SNAPSHOT_MIN - 1, None, 10)
    assert live.snapshot_due(live.SNAPSHOT_MIN, None, 10)
    big = live.SNAPSHOT_MIN  # members and flows
    assert not live.snapshot_due(live.SNAPSHOT_PER_STATE * big - 1, None, big)
    assert live.snapshot_due(live.SNAPSHOT_PER_STATE * big, None, big)
    # A number given is exactly that interval; 0 is never.
    assert live.snapshot_due(40, 40, big)
    assert not live.snapshot_due(39, 40, big)
    assert not live.snapshot_due(10**9, 0, 1)


def test_by_default_a_runtime_snapshots_by_the_automatic_interval(
    url: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "SNAPSHOT_MIN", 30)
    line = timeline(3, 200)
    keys = Keys()
    rt, clock = open_runtime(url, line, keys)  # snapshot_every not given: automatic
    drive(rt, clock, line, line["events"])
    engine = rt.engine()
    state = len(engine.members) + len(engine.flows)
    head = len(rt.store.journal("default"))
    rt.close()
    every = max(30, live.SNAPSHOT_PER_STATE * state)
    assert head >= 2 * every  # the run was long enough for a snapshot by the automatic rule

    rt, clock = open_runtime(url, line, keys)
    # A restart replays only what came after the latest snapshot: fewer than one interval (as the
    # state grew during the run, the interval at the end is the largest it was).
    assert replayed(rt) < every
    rt.close()
