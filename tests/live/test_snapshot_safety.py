"""Engine snapshots are data, not code: a snapshot row someone else wrote is refused, never run.

Issue 9, item 3: a pickled snapshot replaced by one whose `__reduce__` calls `os.system` ran as
the worker when a runtime opened. Snapshots are now a versioned msgpack document read by
declared types (runtime/snapshot.py); an older pickle is recognised and dropped unread, and the
journal replayed. What is checked here: a crafted pickle in a store's snapshot row runs nothing
and the runtime goes on as if there were no snapshot; malformed, truncated and ill-typed blobs
are refused with `EngineError`; and every corpus fixture, snapshotted and restored after every
event, acts exactly as when never snapshotted.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import pickle
import shlex
import sqlite3
from collections import deque
from pathlib import Path
from typing import Any

import psycopg
import pytest
from livestores import KINDS, store_url, timeline
from test_runtime_snapshot import Keys, drive, finish, open_runtime, replayed

from sopdsl.build import compile_files
from sopdsl.dryrun.fixtures import load_fixture, parse_duration
from sopdsl.dryrun.simulate import _add_groups, register_members, to_epoch
from sopdsl.dryrun.testing import fixture_versions, playbook_for
from sopdsl.engine import engine as engine_module
from sopdsl.engine import snapshot as codec
from sopdsl.engine.actions import Action
from sopdsl.engine.engine import Engine
from sopdsl.engine.events import Event
from sopdsl.engine.snapshot import MAGIC
from sopdsl.engine.snapshot_schema import _SNAPSHOT_STATE
from sopdsl.engine.timers import TIMERS
from sopdsl.live.store import Store, open_store
from sopdsl.live.store_memory import MemoryStore
from sopdsl.plan import Plan

ROOT = Path(__file__).resolve().parent.parent.parent
FIXTURES = sorted((ROOT / "playbooks").glob("*.yaml")) + sorted(
    (ROOT / "tests" / "engine_cases").glob("*.yaml")
)
HEADER = len(MAGIC) + 2 + 16  # magic, codec version, shape


# ---- every fixture, snapshotted after every event --------------------------------------------------


@functools.cache
def _plan_of(files: tuple[Path, ...]) -> Plan | None:
    return compile_files(list(files)).plan


@dataclasses.dataclass
class Run:
    """A fixture as `simulate` drives the engine: set-up, then events and plan reloads, then the end."""

    path: Path
    plans: dict[str, Plan]
    steps: list[Event | tuple[int, Plan]]
    end: int | None

    def engine(self) -> Engine:
        fixture, _ = load_fixture(self.path, self.path.name)
        plan = next(iter(self.plans.values()))
        zone = fixture.timezone or plan.declarations.timezone
        delay = (
            parse_duration(fixture.staff_completes_tasks_after)
            if fixture.staff_completes_tasks_after
            else None
        )
        engine = Engine(plan, start=to_epoch(fixture.start, zone), seed=fixture.seed, task_delay=delay)
        _add_groups(engine, fixture.groups)
        register_members(engine, fixture, zone)  # with its history: the events `fixture_run` skips
        return engine

    def play(self, engine: Engine, step: Event | tuple[int, Plan]) -> None:
        if isinstance(step, Event):
            engine.feed(step)
        else:
            engine.reload(step[1], at=step[0])


def fixture_run(path: Path) -> Run:
    fixture, source = load_fixture(path, path.name)
    plan = _plan_of((playbook_for(fixture, path).resolve(),))
    if plan is None:
        pytest.skip(f"{path.name}: its playbook does not check")
    versions = fixture_versions(fixture, path, source, lambda files, _: _plan_of(tuple(files)) or [])
    assert isinstance(versions, dict)
    zone = fixture.timezone or plan.declarations.timezone
    steps: list[Event | tuple[int, Plan]] = []
    start = to_epoch(fixture.start, zone)
    for event in fixture.events:
        time = to_epoch(event.at, zone)
        if time < start:
            continue  # history: registered with the members
        if event.kind is not None:
            steps.append(Event(event.kind, time, event.member, event.group, dict(event.data), event.name))
        else:
            steps.append((time, versions[event.reload_files]))
    plans = {p.content_hash: p for p in [plan, *versions.values()]}
    return Run(path, plans, steps, to_epoch(fixture.end, zone) if fixture.end else None)


def same_state(a: Engine, b: Engine) -> None:
    """Every piece of state a snapshot keeps is equal, type for type (a set is no list, a tuple no list)."""
    for name in [*_SNAPSHOT_STATE, "armed"]:
        assert getattr(a, name) == getattr(b, name), name
        assert _types(getattr(a, name)) == _types(getattr(b, name)), name
    assert a.delivery.counts == b.delivery.counts and a.delivery.stock_used == b.delivery.stock_used
    assert [c.plan.content_hash for c in a.compiled] == [c.plan.content_hash for c in b.compiled]


def _types(value: Any) -> Any:
    """The shape of a value: its types all the way down (sets sorted by their items' repr)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value), [_types(getattr(value, f.name)) for f in dataclasses.fields(value)])
    if isinstance(value, dict):
        return (type(value), [(_types(k), _types(v)) for k, v in value.items()])
    if isinstance(value, (set, frozenset)):
        return (type(value), sorted(repr(_types(x)) for x in value))
    if isinstance(value, (list, tuple, deque)):
        return (type(value), [_types(x) for x in value])
    return type(value)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_fixture_snapshotted_and_restored_after_every_event_acts_as_never_snapshotted(
    path: Path,
) -> None:
    run = fixture_run(path)
    whole = run.engine()
    whole.start()
    for step in run.steps:
        run.play(whole, step)
    whole.advance(run.end if run.end is not None else whole.now)

    engine = run.engine()
    log: list[Action] = []

    def cut() -> Engine:
        blob = engine.snapshot()
        assert blob.startswith(MAGIC)  # data, not a pickle
        restored = Engine.restore(blob, run.plans.__getitem__)
        same_state(engine, restored)
        assert restored.snapshot() == blob  # byte for byte: a deterministic encoding
        log.extend(engine.log)
        return restored

    engine = cut()  # before the engine starts
    engine.start()
    for step in run.steps:
        engine = cut()
        run.play(engine, step)
    engine = cut()
    engine.advance(run.end if run.end is not None else engine.now)
    log.extend(engine.log)
    assert log == whole.log


def test_the_corpus_exercises_every_kind_of_state_a_snapshot_holds() -> None:
    # The fixture test above is only as good as the state it meets: every timer kind, flows
    # waiting, actions held back by the delivery policy, fired triggers, a flow on an earlier
    # plan version.
    kinds: set[int] = set()
    seen: dict[str, bool] = dict.fromkeys(
        ["fired", "waits", "entered", "member_flows", "contacts", "_started_now", "retired", "counts",
         "stock_used", "armed", "windows", "attributes", "coupon", "event", "task_delay"], False
    )  # fmt: skip
    for path in FIXTURES:
        run = fixture_run(path)
        engine = run.engine()
        engine.start()
        for step in [*run.steps, None]:
            if step is not None:
                run.play(engine, step)
            kinds |= {int(entry[5].KIND) for entry in engine.heap}
            for name in ("fired", "waits", "entered", "member_flows", "contacts", "_started_now"):
                seen[name] |= bool(getattr(engine, name))
            seen["retired"] |= len(engine.compiled) > len(engine.live)
            seen["counts"] |= bool(engine.delivery.counts)
            seen["stock_used"] |= bool(engine.delivery.stock_used)
            seen["armed"] |= any(engine.armed.values())
            seen["windows"] |= any(m.windows for m in engine.members.values())
            seen["attributes"] |= any(m.attributes for m in engine.members.values())
            seen["coupon"] |= any(f.coupon for f in engine.flows.values())
            seen["event"] |= any(f.event for f in engine.flows.values())
            seen["task_delay"] |= engine.task_delay is not None
    assert kinds == {int(timer) for timer in TIMERS}  # every kind of timer, the silence in one group too
    assert [name for name, found in seen.items() if not found] == []


# ---- a crafted pickle in the store's snapshot row runs nothing ----------------------------------------


class _Touch:
    """Unpickling this runs `touch PATH`: what the issue's attacker put in the snapshot row."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {shlex.quote(str(self.path))}",))


def _plant(store: Store | str, blob: bytes) -> None:
    """Replace the shard's snapshot row (keeping the journal entry it names) by `blob`."""
    if isinstance(store, MemoryStore):
        seq, _ = store._snapshots["default"]
        store._snapshots["default"] = (seq, blob)
    elif isinstance(store, str) and store.startswith("sqlite"):
        with sqlite3.connect(store.removeprefix("sqlite:///")) as conn:
            assert conn.execute("UPDATE sopdsl_snapshots SET body = ?", (blob,)).rowcount == 1
    else:
        assert isinstance(store, str)
        with psycopg.connect(store, autocommit=True) as conn:
            assert conn.execute("UPDATE sopdsl_snapshots SET body = %s", (blob,)).rowcount == 1


@pytest.mark.parametrize("kind", KINDS)
def test_a_crafted_pickle_in_the_snapshot_row_runs_nothing_and_the_journal_is_replayed(
    kind: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
) -> None:
    line = timeline(8, 120)
    half = len(line["events"]) // 2
    whole = Keys()
    rt, clock = open_runtime("memory://", line, whole, snapshot_every=0)
    drive(rt, clock, line, line["events"])
    finish(rt, clock, line)

    url = store_url(kind, tmp_path, request)
    store: Any = open_store(url) if kind == "memory" else url  # memory: the same store reopened
    keys = Keys()
    rt, clock = open_runtime(store, line, keys, snapshot_every=20)
    drive(rt, clock, line, line["events"][:half])
    head = len(rt.store.journal("default"))
    rt.close()
    marker = tmp_path / "pwned"
    evil = pickle.dumps(_Touch(marker), protocol=pickle.HIGHEST_PROTOCOL)
    assert evil[:1] == b"\x80"
    _plant(store, evil)

    with caplog.at_level(logging.WARNING, logger="sopdsl.runtime"):
        rt, clock = open_runtime(store, line, keys, snapshot_every=20)
    assert not marker.exists()  # nothing was unpickled
    assert replayed(rt) == head  # the whole journal replayed instead
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "older format (pickle" in m and "dropped" in m and "journal replayed" in m for m in warnings
    ), warnings
    found = rt.store.load_snapshot("default")
    assert found is not None and found[1].startswith(MAGIC)  # a new snapshot took the pickle's place
    drive(rt, clock, line, line["events"][half:])
    finish(rt, clock, line)
    assert len(whole.keys) > 50
    assert keys.keys == whole.keys  # the same actions as a run never interrupted
    assert not marker.exists()

    pickle.loads(evil)  # the control: the planted blob does run code when unpickled
    assert marker.exists()


@pytest.mark.source
def test_the_engine_does_not_import_pickle() -> None:
    for module in (engine_module, codec):
        assert "pickle" not in vars(module)
        source = Path(module.__file__ or "").read_text(encoding="utf-8")
        assert "import pickle" not in source and "pickle.load" not in source
