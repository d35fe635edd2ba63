"""A large shard's engine snapshot is written by a forked child: feeding does not wait for it.

What a bot developer notices: at 100,000 members a snapshot took seconds, during which every
request to the service waited. Now the feed that makes a snapshot due returns at once, the
snapshot reaches the store a moment later, and a restart from it acts as an uninterrupted run.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import IO, Any

import pytest
from livestores import KINDS, store_url, timeline
from test_runtime_snapshot import Keys, busy_plan, drive, finish, open_runtime, replayed

from sopdsl.engine.engine import Engine
from sopdsl.live import snapshots_apart
from sopdsl.live.runtime import Runtime

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="this system cannot fork processes")


@pytest.fixture(params=[k for k in KINDS if k != "memory"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url(request.param, tmp_path, request)


def _child_writes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *, hold: bool = False, fail: bool = False
) -> Path:
    """Make every engine snapshot written apart (the tests' engines are small), each child noting
    its process id in tmp_path/pids; with `hold`, a child writes only once tmp_path/go exists;
    with `fail`, it fails."""
    monkeypatch.setattr(snapshots_apart, "APART_FROM", 1)
    pids, go = tmp_path / "pids", tmp_path / "go"
    encode = snapshots_apart._encode

    def noted(engine: Engine, file: IO[bytes]) -> None:
        with pids.open("a") as f:
            f.write(f"{os.getpid()}\n")
        if fail:
            os._exit(snapshots_apart.failed(file, "the disk is full"))
        deadline = time.monotonic() + 60
        while hold and not go.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        encode(engine, file)

    monkeypatch.setattr(snapshots_apart, "_encode", noted)
    return pids


def _uninterrupted(line: dict[str, Any], tmp_path: Path, request: pytest.FixtureRequest) -> Keys:
    """The keys a run of the whole timeline in one go sends, without snapshots."""
    keys = Keys()
    rt, clock = open_runtime(store_url("memory", tmp_path, request), line, keys, snapshot_every=0)
    drive(rt, clock, line, line["events"])
    finish(rt, clock, line)
    return keys


def _children(rt: Runtime) -> dict[str, Any]:
    return rt._shards.snapshots._children


def test_the_snapshot_is_written_by_a_child_while_the_service_feeds_on(
    url: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    pids = _child_writes(monkeypatch, tmp_path, hold=True)
    line = timeline(3, 200)
    whole_keys = _uninterrupted(line, tmp_path, request)

    keys = Keys()
    rt, clock = open_runtime(url, line, keys, snapshot_every=60)
    events = line["events"]
    fed = 0
    while not _children(rt):  # until a snapshot is due
        drive(rt, clock, line, [events[fed]])
        fed += 1
    (child,) = _children(rt).values()
    # The feeds after it go on while the child writes (held until told to go on), and it keeps
    # the engine as it was at the fork.
    drive(rt, clock, line, events[fed : fed + 20])
    assert _children(rt), "the child was still writing"
    # Looked at once the child has let go of this process's files (it notes its id after that): on
    # a loaded machine a child just forked may not have run yet.
    deadline = time.monotonic() + 30
    while not (pids.exists() and pids.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.01)
    if Path(f"/proc/{child.pid}/fd").exists():
        # It keeps none of this process's files (a listening socket would keep a restarted
        # service off its port): standard streams, its snapshot file, and what listing opens.
        assert len(os.listdir(f"/proc/{child.pid}/fd")) <= 5, os.listdir(f"/proc/{child.pid}/fd")
    assert rt.store.load_snapshot("default") is None
    (tmp_path / "go").touch()
    rt._shards.snapshots.collect(wait=30)
    assert rt.store.load_snapshot("default") is not None
    assert rt.store.load_snapshot("default")[0] == child.seq  # type: ignore[index]
    noted = [int(p) for p in pids.read_text().split()]
    assert noted and os.getpid() not in noted  # written by the child, not by this process
    drive(rt, clock, line, events[fed + 20 : len(events) // 2])
    rt.close()  # stores the snapshot a child may still be writing

    rt, clock = open_runtime(url, line, keys, snapshot_every=60)
    assert replayed(rt) < 60 + 20  # from the latest snapshot on
    drive(rt, clock, line, events[len(events) // 2 :])
    finish(rt, clock, line)
    assert len(whole_keys.keys) > 100
    assert keys.keys == whole_keys.keys  # restored from a child's snapshot, it acts as one run


def test_a_child_that_fails_is_logged_and_the_journal_still_restores_everything(
    url: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _child_writes(monkeypatch, tmp_path, fail=True)
    line = timeline(4, 120)
    whole_keys = _uninterrupted(line, tmp_path, request)

    keys = Keys()
    rt, clock = open_runtime(url, line, keys, snapshot_every=30)
    with caplog.at_level(logging.WARNING, logger="sopdsl.runtime"):
        drive(rt, clock, line, line["events"][:60])
        head = len(rt.store.journal("default"))
        rt.close()
    assert any("no snapshot taken: the disk is full" in r.getMessage() for r in caplog.records)

    rt, clock = open_runtime(url, line, keys, snapshot_every=30)
    assert replayed(rt) == head  # no snapshot: the whole journal
    drive(rt, clock, line, line["events"][60:])
    finish(rt, clock, line)
    assert keys.keys == whole_keys.keys


@pytest.mark.parametrize("kind", KINDS)
def test_an_earlier_snapshot_never_replaces_a_later_one(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # A child's snapshot is stored after the fact: another worker may have stored a later one meanwhile.
    rt = Runtime(busy_plan(), store_url(kind, tmp_path, request))
    store = rt.store
    store.save_snapshot("default", 10, b"later")
    store.save_snapshot("default", 5, b"earlier")
    assert store.load_snapshot("default") == (10, b"later")
    store.save_snapshot("default", 12, b"latest")
    assert store.load_snapshot("default") == (12, b"latest")
    rt.close()


def test_small_engines_are_still_snapshotted_in_the_transaction(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # A fork costs more than a small engine's snapshot: below APART_FROM members and flows, none.
    line = timeline(5, 60)
    rt, clock = open_runtime(store_url("sqlite", tmp_path, request), line, Keys(), snapshot_every=20)
    drive(rt, clock, line, line["events"][:30])
    assert rt.store.load_snapshot("default") is not None  # in the feed's own transaction
    assert not _children(rt) and rt._shards.snapshots.written == 0
    rt.close()
