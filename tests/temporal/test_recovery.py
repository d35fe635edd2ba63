"""Shards on Temporal lose nothing when a worker dies: a `sopdsl run --engine` worker killed with
SIGKILL mid-timeline and started again, and two workers sharing the shards."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from livestores import busy_fixture, fixture_events
from temporalserver import Recorder

from sopdsl.dryrun.simulate import simulate, to_epoch
from sopdsl.plan import timeutil

SOURCE = Path(__file__).parents[1] / "engine_cases" / "busy.sop"


def start_worker(address: str, out: Path) -> subprocess.Popen[bytes]:
    """`sopdsl run --engine temporal://...` (a worker on the default task queue, and an HTTP front
    not used here), printing each action it executes as a JSON line to `out`."""
    command = [
        sys.executable,
        "-m",
        "sopdsl",
        "run",
        str(SOURCE),
        "--engine",
        f"temporal://{address}/default",
    ]
    command += ["--port", "0", "--insecure-no-auth", "--worker", out.stem]
    return subprocess.Popen(command, stdout=out.open("ab"), stderr=subprocess.PIPE)


def lines(*paths: Path) -> list[dict[str, Any]]:
    """The actions the workers printed (whole lines: one may be half written)."""
    texts = [p.read_text().split("\n")[:-1] for p in paths if p.exists()]
    return [json.loads(line) for text in texts for line in text if line]


def test_a_worker_killed_mid_timeline_loses_nothing_and_repeats_only_keyed_actions(
    temporal_server: str, tmp_path: Path
) -> None:
    from temporalio.client import Client

    from sopdsl.temporal.client import ShardClient
    from sopdsl.temporal.shapes import SIGNALLED, Retry

    plan, fixture, _ = busy_fixture(7, 240)
    zone = plan.declarations.timezone
    tz = timeutil.zone(zone)
    expected = [a.to_json(tz) for a in simulate(plan, fixture).actions if a.status == "done"]
    bodies = fixture_events(fixture, zone)
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"

    async def main() -> None:
        client = await Client.connect(temporal_server)
        sender = ShardClient(
            client, plan, shard="crash", seed=fixture.seed, start=to_epoch(fixture.start, zone),
            clock=SIGNALLED, retry=Retry(base=0.5, timeout=3.0), continue_after=30,
        )  # fmt: skip
        await sender.register([*(g.record() for g in fixture.groups), *(m.record(lambda t: to_epoch(t, zone)) for m in fixture.members)], at=sender.start)  # fmt: skip
        worker = start_worker(temporal_server, first)
        try:
            for i in range(0, 160, 20):
                await sender.feed(bodies[i : i + 20])
            deadline = time.monotonic() + 60
            while len(lines(first)) < 40 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait()
        assert len(lines(first)) >= 40  # killed mid-timeline: some actions out, more to come
        for i in range(160, len(bodies), 20):
            await sender.feed(bodies[i : i + 20])
        await sender.advance(to_epoch(fixture.end or fixture.start, zone))
        worker = start_worker(temporal_server, second)
        try:
            status = await sender.flush(timeout=90)
        finally:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=30) == 0, worker.stderr.read().decode() if worker.stderr else ""
        assert status["runs"] > 1, status  # the state crossed continue-as-new too
        assert status.get("parked", 0) == 0

    asyncio.run(main())
    got = lines(first, second)
    by_key: dict[str, dict[str, Any]] = {}
    for line in got:
        key = line.pop("idempotency_key")
        assert key.startswith("crash/")
        assert by_key.setdefault(key.removeprefix("crash/"), line) == line  # a repeat is the same action
    assert sorted(by_key) == sorted(a["key"] for a in expected)
    assert all(by_key[a["key"]] == a for a in expected)


def test_two_workers_share_the_shards(temporal_server: str) -> None:
    from temporalio.client import Client

    from sopdsl.temporal.client import ShardClient
    from sopdsl.temporal.shapes import SIGNALLED
    from sopdsl.temporal.worker import make_worker

    plan, fixture, _ = busy_fixture(3, 120)
    zone = plan.declarations.timezone
    expected = [a.key for a in simulate(plan, fixture).actions if a.status == "done"]
    recorders = [Recorder(), Recorder()]
    shards = [f"pair{i}" for i in range(6)]

    async def main() -> None:
        client = await Client.connect(temporal_server)
        # Each worker with a connection of its own, as on two machines.
        workers = [
            make_worker(
                await Client.connect(temporal_server),
                plan,
                r.executors(),
                task_queue="pair",
                identity=f"w{i}",
            )
            for i, r in enumerate(recorders)
        ]
        async with workers[0], workers[1]:
            senders = [
                ShardClient(
                    client,
                    plan,
                    shard=s,
                    seed=fixture.seed,
                    start=to_epoch(fixture.start, zone),
                    clock=SIGNALLED,
                    task_queue="pair",
                )
                for s in shards
            ]
            for sender in senders:
                await sender.register([*(g.record() for g in fixture.groups), *(m.record(lambda t: to_epoch(t, zone)) for m in fixture.members)], at=sender.start)  # fmt: skip
                await sender.feed(fixture_events(fixture, zone))
                await sender.advance(to_epoch(fixture.end or fixture.start, zone))
            await asyncio.gather(*(s.flush(timeout=90) for s in senders))

    asyncio.run(main())
    assert all(r.calls for r in recorders)  # both workers executed actions
    for shard in shards:
        executed = [k for r in recorders for k in r.keys(shard)]
        assert sorted(executed) == sorted(expected), shard  # each once, none lost
