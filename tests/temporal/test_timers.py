"""Shards on Temporal: real durable timers on the wall clock (a wait of seconds, across a worker
restart), and a plan change mid-flow that finishes flows as the simulator does."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from livestores import fixture_events, read_fixture
from temporalserver import Recorder

import sopdsl
from sopdsl.build import build_paths
from sopdsl.dryrun.simulate import simulate, to_epoch
from sopdsl.engine.records import GroupRecord
from sopdsl.engine.versions import FINISHES

PLAYBOOKS = Path(__file__).parents[2] / "playbooks"

NUDGE = """
timezone "UTC"
template hello = "hi {{ member.name }}"
template nudge = "still there, {{ member.name }}?"
playbook welcome {
    on member joins
    do {
        send hello to member
        wait 1 minute
        send nudge to member
    }
}
"""


def test_a_durable_timer_fires_on_the_wall_clock_even_while_no_worker_runs(temporal_server: str) -> None:
    from temporalio.client import Client

    from sopdsl.temporal.client import ShardClient
    from sopdsl.temporal.shapes import Retry
    from sopdsl.temporal.worker import make_worker

    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(NUDGE, "nudge.sop")))
    first, second = Recorder(), Recorder()
    # The member joined 52 s ago, so the minute's wait ends in about 8 s.
    joined = int(time.time()) - 52
    due = joined + 60

    async def main() -> None:
        client = await Client.connect(temporal_server)
        # An action lost with a stopped worker is tried again after 5 s, not 300.
        retry = Retry(timeout=5)
        sender = ShardClient(client, plan, shard="timer", start=joined, retry=retry, task_queue="timers")
        async with make_worker(
            await Client.connect(temporal_server), plan, first.executors(), task_queue="timers"
        ):
            await sender.register([GroupRecord("g1")], at=joined)
            await sender.feed([{"id": "j1", "kind": "join", "member": "m1", "group": "g1", "time": joined}])
            await sender.flush(timeout=30)
        assert [a.detail["template"] for _, a in first.calls] == ["hello"]
        assert time.time() < due  # the first worker stopped before the timer came due
        while time.time() < due + 1:  # the timer comes due while no worker runs
            await asyncio.sleep(0.2)
        async with make_worker(
            await Client.connect(temporal_server), plan, second.executors(), task_queue="timers"
        ):
            # Generous: on a loaded machine the worker's start and the server's hand-over take a while.
            deadline = time.monotonic() + 60
            while not second.calls and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert second.calls, await sender.status()

    asyncio.run(main())
    assert [(k, a.detail["template"], a.time) for k, a in second.calls] == [
        (second.calls[0][0], "nudge", due)
    ]


def test_a_plan_change_mid_flow_finishes_flows_as_the_simulator_does(temporal_server: str) -> None:
    from temporalio.client import Client

    from sopdsl.temporal.client import ShardClient
    from sopdsl.temporal.shapes import SIGNALLED
    from sopdsl.temporal.worker import make_worker

    v1 = build_paths([str(PLAYBOOKS / "J3_self_introduction.sop")]).plan
    v2 = build_paths([str(PLAYBOOKS / "J3_self_introduction.v2.sop")]).plan
    assert v1 is not None and v2 is not None
    fixture = read_fixture(PLAYBOOKS / "J3_self_introduction.reload.yaml")
    zone = fixture.timezone or v1.declarations.timezone
    simulation = simulate(v1, fixture, versions={("J3_self_introduction.v2.sop",): v2})
    assert [c.outcome for r in simulation.reloads for c in r.changes] == [FINISHES, FINISHES]
    expected = sorted((a.key, a.kind, a.member, a.time) for a in simulation.actions if a.status == "done")
    # Lili joined after the change: she gets v2's reminder, which v1 does not have.
    assert any(a.member == "lili" and a.playbook for a in simulation.actions if a.status == "done")
    recorder = Recorder()

    async def main() -> dict[str, Any]:
        client = await Client.connect(temporal_server)
        start = to_epoch(fixture.start, zone)
        sender = ShardClient(client, v1, shard="reload", start=start, clock=SIGNALLED, task_queue="reload")
        async with make_worker(client, v1, recorder.executors(), task_queue="reload"):
            await sender.register([g.record() for g in fixture.groups], at=start)
            bodies = fixture_events(fixture, zone)
            for event, body in zip(fixture.events, bodies, strict=True):
                if event.kind is None:
                    await sender.reload(v2, at=to_epoch(event.at, zone))
                else:
                    await sender.feed([body])
            await sender.advance(to_epoch(fixture.end or fixture.start, zone))
            return await sender.flush(timeout=60)

    status = asyncio.run(main())
    assert status["plan"] == v2.content_hash
    got = sorted((k.removeprefix("reload/"), a.kind, a.member, a.time) for k, a in recorder.calls)
    assert got == expected


WELCOME = """
timezone "Asia/Shanghai"
template welcome = "欢迎 {{ member.name }}"
template day3 = "三天了，{{ member.name }}"
template day3_new = "三天了，{{ member.name }}，来看看本周直播"
playbook welcome {
    on member joins
    %s
    do {
        send welcome to member
        wait 3 days
        send %s to member
    }
}
"""


@pytest.mark.parametrize(
    ("change", "day3"), [("", "三天了，m1"), ("on change migrate", "三天了，m1，来看看本周直播")]
)
def test_a_plan_change_mid_wait_finishes_or_migrates_as_the_playbook_says(
    temporal_server: str, change: str, day3: str
) -> None:
    from temporalio.client import Client

    from sopdsl.temporal.client import ShardClient
    from sopdsl.temporal.shapes import SIGNALLED
    from sopdsl.temporal.worker import make_worker

    v1 = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(WELCOME % ("", "day3"), "welcome.sop")))
    v2 = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(WELCOME % (change, "day3_new"), "welcome.sop")))
    start, day = 1_772_330_400, 86400
    recorder = Recorder()
    queue = f"switch{len(change)}"

    async def main() -> None:
        client = await Client.connect(temporal_server)
        sender = ShardClient(client, v1, shard=queue, start=start, clock=SIGNALLED, task_queue=queue)
        async with make_worker(client, v1, recorder.executors(), task_queue=queue):
            await sender.register([GroupRecord("g1")], at=start)
            await sender.feed([{"id": "j1", "kind": "join", "member": "m1", "group": "g1", "time": start}])
            await sender.advance(start + day)
            await sender.reload(v2, at=start + day)  # m1 is in the middle of the three days' wait
            await sender.feed(
                [{"id": "j2", "kind": "join", "member": "m2", "group": "g1", "time": start + day}]
            )
            await sender.advance(start + 5 * day)
            await sender.flush(timeout=60)

    asyncio.run(main())
    sent = sorted((a.member, a.detail["text"]) for _, a in recorder.calls)
    assert sent == sorted(
        [("m1", "欢迎 m1"), ("m1", day3), ("m2", "欢迎 m2"), ("m2", "三天了，m2，来看看本周直播")]
    )
