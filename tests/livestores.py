"""Store URLs for the live-runtime tests: memory, a fresh SQLite file, a fresh PostgreSQL schema.

PostgreSQL tests skip, with the reason, only when no server answers and SOPDSL_REQUIRE_POSTGRES
is unset; with it set (as in CI) they fail instead. Each run gets its own database, dropped at
the end, and each test its own schema in it, so runs and tests never see each other's rows.
Also what live reports are checked against: G5's `sopdsl report` (`dry_report`, `per_playbook`).
"""

from __future__ import annotations

import json
import os
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sopdsl.dryrun.fixtures import Fixture, load_fixture
from sopdsl.dryrun.simulate import to_epoch
from sopdsl.engine.actions import Action

ADMIN_URL = os.environ.get("SOPDSL_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
KINDS = ("memory", "sqlite", "postgres")
START = 1_772_294_400  # 2026-03-01 00:00 in Shanghai
HOUR = 3600


def _admin() -> psycopg.Connection[tuple[object, ...]] | str:
    try:
        return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


@pytest.fixture(scope="session")
def postgres_db() -> Iterator[str]:
    """The URL of a database created for this test run."""
    admin = _admin()
    if isinstance(admin, str):
        reason = f"no PostgreSQL server answers at {ADMIN_URL} ({admin})"
        if os.environ.get("SOPDSL_REQUIRE_POSTGRES"):
            pytest.fail(f"{reason}, and SOPDSL_REQUIRE_POSTGRES is set")
        pytest.skip(reason)
    name = f"sopdsl_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    base = ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def fresh_schema(db_url: str) -> str:
    """A URL whose connections work in a new, empty schema of the run's database."""
    schema = f"s_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{db_url}?options=-csearch_path%3D{schema}"


def store_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A URL for a fresh, empty store of this kind."""
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return fresh_schema(request.getfixturevalue("postgres_db"))


def fixture_setup(runtime: Any, fixture: Fixture, zone: str) -> None:
    """Register a fixture's groups and members with a live runtime, as the simulator does with its engine."""
    for group in fixture.groups:
        runtime.add_group(group.record())
    for member in fixture.members:
        runtime.add_member(member.record(lambda text: to_epoch(text, zone)))


def fixture_events(fixture: Fixture, zone: str) -> list[dict[str, Any]]:
    """A fixture's events as the JSON a bot would send, each with an id and an epoch time."""
    events = []
    for index, event in enumerate(fixture.events):
        body: dict[str, Any] = {"id": f"e{index}", "kind": event.kind, "time": to_epoch(event.at, zone)}
        for key in ("member", "group", "name"):
            if getattr(event, key) is not None:
                body[key] = getattr(event, key)
        if event.data:
            body["data"] = dict(event.data)
        events.append(body)
    return events


def read_fixture(path: Path) -> Fixture:
    """A fixture file, parsed, each event with the id `fixture_events` gives it (keys derive from
    an event's id, so a dry run of the fixture agrees with a live run of those events)."""
    fixture = load_fixture(path, path.name)[0]
    events = [e.model_copy(update={"id": f"e{i}"}) if e.kind else e for i, e in enumerate(fixture.events)]
    return fixture.model_copy(update={"events": events})


def timeline(seed: int, events: int) -> dict[str, Any]:
    """A busy timeline for tests/engine_cases/busy.sop: joins, leaves, posts and orders over five days."""
    rng = random.Random(seed)
    old = [f"old{i:02d}" for i in range(12)]
    new = [f"new{i:02d}" for i in range(40)]
    groups = ["g_north", "g_south"]
    members = [
        {
            "id": m,
            "groups": [rng.choice(groups)],
            "tags": rng.sample(["core", "koc", "x", "y"], rng.randint(0, 2)),
        }
        for m in old
    ]
    moment = START
    body = []
    for index in range(events):
        moment += rng.randint(0, int(5 * 24 * HOUR / events) * 2)
        kind = rng.choice(["join", "join", "message", "message", "order", "leave"])
        event: dict[str, Any] = {
            "id": f"e{index}",
            "kind": kind,
            "time": moment,
            "member": rng.choice(new + old),
            "group": rng.choice(groups),
        }
        if kind == "order":
            event["data"] = {"amount": 99}
        body.append(event)
    return {
        "start": START,
        "end": moment + 3 * 24 * HOUR,
        "groups": [{"id": g, "tags": ["normal"]} for g in groups] + [{"id": "vip_lounge"}],
        "members": members,
        "events": body,
    }


def busy_fixture(seed: int, events: int) -> tuple[Any, Fixture, dict[str, Any]]:
    """tests/engine_cases/busy.sop's plan, a random busy timeline (`timeline`) and it as a fixture."""
    import datetime as dt

    import sopdsl
    from sopdsl.plan import timeutil

    source = Path(__file__).parent / "engine_cases" / "busy.sop"
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load(str(source))))
    tz = timeutil.zone(plan.declarations.timezone)
    line = timeline(seed, events)

    def at(moment: int) -> str:
        return dt.datetime.fromtimestamp(moment, tz).isoformat()

    fixture = Fixture.model_validate(
        {
            "start": at(line["start"]),
            "end": at(line["end"]),
            "seed": seed,
            "groups": line["groups"],
            "members": line["members"],
            "events": [
                {**{k: v for k, v in e.items() if k != "time"}, "at": at(e["time"])} for e in line["events"]
            ],
        }
    )
    return plan, fixture, line


G5 = Path(__file__).parent.parent / "playbooks" / "G5_ab_poster.sop"  # a split with a control arm, a goal


def dry_report(sop: Path) -> dict[str, Any]:
    """`sopdsl report SOP --timeline SOP.yaml --format json`, as a user runs it."""
    from click.testing import CliRunner

    from sopdsl.cli import main

    result = CliRunner().invoke(
        main, ["report", str(sop), "--timeline", str(sop.with_suffix(".yaml")), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def per_playbook(data: dict[str, Any]) -> tuple[Any, ...]:
    """What a report says per playbook and per experiment arm (what a live report must agree on with it)."""
    return data["playbooks"], data["experiments"], data["burst"]


def as_the_engine_decided(returned: list[Action]) -> list[Action]:
    """The runtime's actions with the engine's statuses: `feed` and `tick` say `queued` for an
    action to go out (its executor runs after), where the engine and the simulator say `done`."""
    assert "done" not in {a.status for a in returned}
    return [Action(**{**a.fields(), "status": "done"}) if a.status == "queued" else a for a in returned]
