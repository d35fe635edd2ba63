"""Shards on Temporal agree with the simulator: the corpus's fixtures run through workflows on a
real dev server, the engine's clock moved by signals that carry the fixture's time."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from livestores import fixture_events, read_fixture
from temporalserver import Recorder

from sopdsl.build import build_paths
from sopdsl.dryrun.fixtures import Fixture
from sopdsl.dryrun.simulate import register_members, simulate, to_epoch
from sopdsl.engine.actions import Action
from sopdsl.engine.records import GroupRecord, MemberRecord
from sopdsl.plan import Plan

PLAYBOOKS = Path(__file__).parents[2] / "playbooks"


class _Members:
    """Takes the member records `register_members` makes, as an engine would."""

    def __init__(self) -> None:
        self.records: list[MemberRecord] = []

    def add_member(self, record: MemberRecord) -> None:
        self.records.append(record)


def setup_entries(fixture: Fixture, zone: str) -> tuple[list[GroupRecord | MemberRecord], int]:
    """A fixture's groups and members as records, and how many of its events were history."""
    members = _Members()
    past = register_members(members, fixture, zone)  # type: ignore[arg-type]
    return [*(g.record() for g in fixture.groups), *members.records], past


def corpus() -> list[tuple[Path, Path]]:
    """The corpus's fixtures a live shard can replay (no reloads, no staff finishing tasks by
    themselves), each with its playbook: the `.sop` of the longest stem that names one."""
    found = []
    for path in sorted(PLAYBOOKS.glob("*.yaml")):
        parts = path.stem.split(".")
        stems = [".".join(parts[:n]) for n in range(len(parts), 0, -1)]
        sop = next(PLAYBOOKS / f"{s}.sop" for s in stems if (PLAYBOOKS / f"{s}.sop").exists())
        fixture = read_fixture(path)
        staff = fixture.staff_completes_tasks_after or any(s.completes_tasks_after for s in fixture.staff)
        if staff or fixture.end is None:
            continue
        if all(e.kind is not None for e in fixture.events):
            found.append((sop, path))
    return found


def done(actions: list[Action], prefix: str = "") -> list[tuple[Any, ...]]:
    """The actions to go out, as the executors see them."""
    return sorted(
        (
            prefix + a.key,
            a.kind,
            a.member,
            a.group,
            a.time,
            json.dumps(a.detail, sort_keys=True, ensure_ascii=False, default=str),
        )
        for a in actions
        if a.status == "done"
    )


async def replay(
    client: Any, plan: Plan, fixture: Fixture, shard: str, batch: int = 10, **options: Any
) -> dict[str, Any]:
    """Run a fixture through the shard's workflow on a signalled clock, `batch` events a signal;
    its status when settled."""
    from sopdsl.temporal.client import ShardClient
    from sopdsl.temporal.shapes import SIGNALLED

    zone = fixture.timezone or plan.declarations.timezone
    start = to_epoch(fixture.start, zone)
    sender = ShardClient(
        client, plan, shard=shard, seed=fixture.seed, start=start, clock=SIGNALLED, **options
    )
    records, past = setup_entries(fixture, zone)
    await sender.register(records, at=start)
    bodies = fixture_events(fixture, zone)[past:]
    for i in range(0, len(bodies), batch):
        await sender.feed(bodies[i : i + batch])
    assert fixture.end is not None
    await sender.advance(to_epoch(fixture.end, zone))
    return await sender.flush(timeout=90)


def test_corpus_on_temporal_agrees_with_the_simulator(temporal_server: str) -> None:
    from temporalio.client import Client

    from sopdsl.temporal.worker import make_worker

    cases = []
    for sop, path in corpus():
        plan = build_paths([str(sop)]).plan
        assert plan is not None
        cases.append((f"{path.stem}", plan, read_fixture(path)))
    assert len(cases) >= 25
    recorder = Recorder()

    async def main() -> list[dict[str, Any]]:
        client = await Client.connect(temporal_server)
        async with make_worker(client, cases[0][1], recorder.executors(), task_queue="agree"):
            return await asyncio.gather(
                *(
                    replay(client, plan, fixture, name, task_queue="agree", continue_after=8)
                    for name, plan, fixture in cases
                )
            )

    statuses = asyncio.run(main())
    assert sum(s["runs"] > 1 for s in statuses) >= 5  # state crossed continue-as-new by snapshot
    for (name, plan, fixture), status in zip(cases, statuses, strict=True):
        expected = simulate(plan, fixture).actions
        got = [a for key, a in recorder.calls if key.startswith(f"{name}/")]
        assert done(got, f"{name}/") == done(expected, f"{name}/"), name
        assert status.get("actions", 0) == len(expected), name
        # One member's actions go out one at a time, in the order decided.
        for who in {a.member or a.group for a in got}:
            mine = [a.key for a in expected if a.status == "done" and (a.member or a.group) == who]
            assert [a.key for a in got if (a.member or a.group) == who] == mine, (name, who)
        assert status.get("parked", 0) == 0, name


def test_a_shard_too_large_to_hand_on_says_so_and_goes_on(
    temporal_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from temporalio.client import Client

    from sopdsl.temporal import entries
    from sopdsl.temporal.worker import make_worker

    # The workflow's modules are passed through the sandbox: the worker sees the patched limit.
    monkeypatch.setattr(entries, "PAYLOAD_LIMIT", 100)
    sop, path = next((s, p) for s, p in corpus() if p.name == "J1_welcome_ritual.yaml")
    plan = build_paths([str(sop)]).plan
    assert plan is not None
    fixture = read_fixture(path)
    recorder = Recorder()

    async def main() -> dict[str, Any]:
        client = await Client.connect(temporal_server)
        async with make_worker(client, plan, recorder.executors(), task_queue="large"):
            return await replay(client, plan, fixture, "large", task_queue="large", continue_after=5)

    status = asyncio.run(main())
    assert status["too_large"] > 100 and status["runs"] == 1, status
    assert done([a for _, a in recorder.calls], "large/") == done(simulate(plan, fixture).actions, "large/")
