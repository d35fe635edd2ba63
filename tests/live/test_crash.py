"""Crash safety and several workers, with real processes.

A worker runs a busy timeline and records every action key its executor receives (at least
once: a key may appear twice after a kill). It is SIGKILLed at random moments and restarted
until it finishes; the keys it executed, deduplicated, must equal an uninterrupted run's: no
timer lost, no action duplicated in the outbox, each member's actions in order. Halfway through
the timeline the worker switches to an edited plan version, so kills also land around a plan
switch and restarts replay it; engine snapshots are taken often, so restarts also begin from
them. Then four
worker processes share one PostgreSQL store of many shards and execute every action once.

Run as a script, this file is the worker: `python test_crash.py MODE STORE PLAN TIMELINE KEYS WORKER`.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from livestores import START, store_url, timeline

import sopdsl

HERE = Path(__file__).parent.parent


# ---- the worker ------------------------------------------------------------------------------------


def worker(
    mode: str, url: str, plan_path: str, timeline_path: str, keys_path: str, name: str, lease: str = "30"
) -> None:
    """Run a timeline (mode `single`) or help run every shard's (mode `multi`), recording executed keys."""
    from sopdsl.engine.actions import Action
    from sopdsl.live.dispatch import ACTION_KINDS
    from sopdsl.live.runtime import ManualClock, PlanChangedError, Runtime
    from sopdsl.plan import loads

    plan = loads(Path(plan_path).read_text(encoding="utf-8"))
    line = json.loads(Path(timeline_path).read_text(encoding="utf-8"))
    # A new plan version deployed before event `after`: a restarted worker is given whichever
    # version the shard runs, as an operator restarting after a deploy would.
    switch = line.get("reload")
    edited = loads(Path(switch["plan"]).read_text(encoding="utf-8")) if switch else plan
    out = os.open(keys_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    def record(action: Action, key: str) -> None:
        os.write(out, f"{key} {action.member or action.group}\n".encode())
        time.sleep(0.003 if mode == "single" else 0.001)  # a real executor takes time: kills land in it

    executors = dict.fromkeys(ACTION_KINDS, record)
    clock = ManualClock(line["start"])
    if mode == "single":
        try:
            rt = Runtime(plan, url, executors=executors, clock=clock, worker=name, snapshot_every=25)
        except PlanChangedError:
            rt = Runtime(edited, url, executors=executors, clock=clock, worker=name, snapshot_every=25)
        for group in line["groups"]:
            rt.add_group(group["id"], tags=group.get("tags", ()))
        for member in line["members"]:
            rt.add_member(member["id"], groups=member["groups"], tags=member["tags"])
        # Like a bot reading a queue from its committed offset: resume after the events journaled
        # (sending a few again would be harmless too: their ids are known).
        done = rt.stats()["events_in"]
        for index, event in enumerate(line["events"][done:], done):
            # Timers due before the event run first, as they would on a live clock.
            clock.set(event["time"])
            rt.tick(event["time"] - 1)
            if switch and index == switch["after"] and rt.plan.content_hash != edited.content_hash:
                rt.reload(edited)
            rt.feed(event)
            rt.dispatch()
        clock.set(line["end"])
        rt.tick()
        rt.close()
        return
    clock.set(line["end"])
    rt = Runtime(
        plan,
        url,
        executors=executors,
        clock=clock,
        worker=name,
        shard="s00",
        lease=float(lease),
        snapshot_every=25,
    )
    Path(f"{keys_path}.ready").touch()
    while not Path(keys_path).with_name("go").exists():
        time.sleep(0.01)
    idle = 0
    while idle < 20:  # until nothing has been left to do for a while
        rt.tick()
        stats = rt.store.stats()
        # Work held by a dead worker counts too: it comes back when that worker's leases expire.
        busy = rt.store.work(name, time.time() + 3600, line["end"], 1) or stats["pending"]
        idle = 0 if busy else idle + 1
        time.sleep(0.01)
    rt.close()


if __name__ == "__main__":
    worker(*sys.argv[1:8])
    sys.exit(0)


# ---- the tests ---------------------------------------------------------------------------------------


def _spawn(
    mode: str, url: str, plan: Path, line: Path, keys: Path, name: str, lease: float = 30
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(Path(__file__)), mode, url, str(plan), str(line), str(keys), name, str(lease)],
        cwd=HERE,
        # The worker imports the shared helpers beside the test folders, as pytest's pythonpath does.
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _keys(path: Path) -> list[tuple[str, str]]:
    if not path.exists():
        return []
    return [tuple(line.split(" ", 1)) for line in path.read_text().splitlines()]  # type: ignore[misc]


def _first_seen(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return list(dict.fromkeys(pairs))


def _prepare(
    tmp_path: Path, events: int, *, reload: bool = False, goal: bool = False
) -> tuple[Path, Path, dict[str, Any]]:
    busy = HERE / "engine_cases" / "busy.sop"
    source = busy.read_text(encoding="utf-8")
    if goal:
        # A goal on the playbook with the split: the live figures keep its arms, touches and
        # conversions too.
        source = source.replace(
            "playbook welcome {\n", 'playbook welcome {\n    goal "下单" = member orders within 2 days\n'
        )
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(source, str(busy))))
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(plan.dumps(), encoding="utf-8")
    line = timeline(7, events)
    if reload:
        # Halfway through, an edited version: new welcome text (flows go on), a longer wait in
        # prune for members mid-flow to move to, and a new playbook.
        text = source
        text = text.replace('"欢迎 {{ member.name }}"', '"欢迎你 {{ member.name }}"')
        text = text.replace("    apply to all members\n", "    apply to all members\n    on change migrate\n")
        text = text.replace("wait 1 day for member posts", "wait 2 days for member posts")
        text += "\nplaybook thanks {\n    on member orders\n    do { send nudge to member }\n}\n"
        edited = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(text, str(busy))))
        edited_path = tmp_path / "edited.json"
        edited_path.write_text(edited.dumps(), encoding="utf-8")
        line["reload"] = {"after": events // 2, "plan": str(edited_path)}
    line_path = tmp_path / "timeline.json"
    line_path.write_text(json.dumps(line), encoding="utf-8")
    return plan_path, line_path, line


def _run_to_end(url: str, plan: Path, line: Path, keys: Path, name: str) -> float:
    began = time.monotonic()
    proc = _spawn("single", url, plan, line, keys, name)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    return time.monotonic() - began


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_sigkill_at_random_points_loses_and_duplicates_nothing(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    plan, line, data = _prepare(tmp_path, 240, reload=True, goal=True)
    (tmp_path / "ref").mkdir()
    (tmp_path / "crash").mkdir()
    reference_url = store_url(kind, tmp_path / "ref", request)
    reference_keys = tmp_path / "reference.keys"
    _run_to_end(reference_url, plan, line, reference_keys, "crash-worker")
    reference = _keys(reference_keys)
    assert len(reference) > 100
    assert len(set(reference)) == len(reference)
    store = sopdsl.open_store(reference_url)
    try:  # the switch happened mid-run: welcomes of both versions went out
        texts = [str(r.action["detail"].get("text", "")) for r in store.outbox()]
        assert any(t.startswith("欢迎你 ") for t in texts) and any(t.startswith("欢迎 ") for t in texts)
        reference_figures = store.figures("default", 0, 2**40)
    finally:
        store.close()
    sums = {figure for _, _, figure, _ in reference_figures[0]}
    assert {"messages", "joins", "deliveries"} <= sums, sums  # the events and the done sends were counted
    # Per playbook: flows, actions by kind and status, and the goal's and the split's facts.
    per_playbook = {(playbook, figure) for playbook, _, figure, _ in reference_figures.playbooks}
    assert {
        ("welcome", "flows:started"),
        ("welcome", "flows:completed"),
        ("welcome", "actions:send:done"),
    } <= (per_playbook), per_playbook
    assert {arm for _, _, arm, _ in reference_figures.arms} == {"red", "blue"}
    assert reference_figures.touches and reference_figures.goals

    url = store_url(kind, tmp_path / "crash", request)
    keys = tmp_path / "crashed.keys"
    rng = random.Random(1234)
    kills = 0
    for _ in range(60):  # kill it at random moments until it manages to finish
        proc = _spawn("single", url, plan, line, keys, "crash-worker")
        # Kill after a random amount of progress (keys executed), plus a random few milliseconds,
        # so kills land in feeding, applying, executing and marking done alike, at any speed.
        target = len(_keys(keys)) + rng.randint(5, 35)
        while proc.poll() is None and len(_keys(keys)) < target:
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.02))
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        kills += 1
    assert kills >= 5, f"the worker was killed only {kills} times"
    _run_to_end(url, plan, line, keys, "crash-worker")

    executed = _keys(keys)
    # At least once: a key may have been executed again after a kill, but never lost.
    assert sorted(set(executed)) == sorted(reference)
    # Again only when a kill came between the call and the batch being marked done.
    assert max(executed.count(k) for k in set(executed)) <= kills + 1
    # Each member's actions in the order the uninterrupted run executed them.
    for who in {w for _, w in reference}:
        assert [k for k, w in _first_seen(executed) if w == who] == [k for k, w in reference if w == who]
    # The store agrees: every event journaled once, every action once in the outbox, all done.
    store = sopdsl.open_store(url)
    try:
        assert store.stats()["events_in"] == len(data["events"])
        rows = store.outbox()
        assert len({r.key for r in rows}) == len(rows)
        assert {r.key for r in rows if r.status == "done"} == {k for k, _ in reference}
        assert not [r for r in rows if r.status == "pending"]
        # Live figures: each event counted once, each done send once (per idempotency key), each
        # applied entry's flows, actions, arms, touches and goal events once, whatever the kills
        # interrupted, as in the uninterrupted run.
        assert store.figures("default", 0, 2**40) == reference_figures
    finally:
        store.close()


@pytest.mark.parametrize("kill_one", [False, True], ids=["all_live", "one_killed"])
def test_four_postgres_workers_execute_every_action_exactly_once(
    kill_one: bool, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Four workers share 16 shards; killed, one worker's shards and claimed rows pass to the others."""
    plan_path, _, _ = _prepare(tmp_path, 10)
    plan = sopdsl.load_plan(plan_path.read_text(encoding="utf-8"))
    shards = [f"s{i:02d}" for i in range(16)]
    lines = {s: timeline(100 + i, 80) for i, s in enumerate(shards)}
    end = max(line["end"] for line in lines.values())
    line_path = tmp_path / "timeline.json"
    line_path.write_text(json.dumps({"start": START, "end": end}), encoding="utf-8")
    url = store_url("postgres", tmp_path, request)

    # A front end journals every shard's timeline; the workers apply and dispatch them.
    for shard, line in lines.items():
        clock = sopdsl.ManualClock(START)
        front = sopdsl.Runtime(plan, url, clock=clock, shard=shard, worker="front", lease=0)
        for group in line["groups"]:
            front.add_group(group["id"], tags=group.get("tags", ()))
        for member in line["members"]:
            front.add_member(member["id"], groups=member["groups"], tags=member["tags"])
        clock.set(end)
        for event in line["events"]:
            assert front.enqueue(event)
        front.close()

    lease = 2.0 if kill_one else 30.0
    keys = [tmp_path / f"w{i}.keys" for i in range(4)]
    procs = [_spawn("multi", url, plan_path, line_path, keys[i], f"worker-{i}", lease) for i in range(4)]
    deadline = time.monotonic() + 60
    while not all(Path(f"{k}.ready").exists() for k in keys):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.02)
    (tmp_path / "go").touch()
    victim = None
    if kill_one:
        # Kill the first worker to have executed ten actions: it is in the middle of its work.
        while victim is None:
            assert time.monotonic() < deadline + 60, "no worker got going"
            victim = next((i for i in range(4) if len(_keys(keys[i])) >= 10), None)
            time.sleep(0.001)
        procs[victim].send_signal(signal.SIGKILL)
        assert procs[victim].wait(timeout=30) == -signal.SIGKILL, "the worker finished before it was killed"
    for index, proc in enumerate(procs):
        if index != victim:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err.decode()

    per_worker = [[k for k, _ in _keys(path)] for path in keys]
    executed = [k for done in per_worker for k in done]
    assert sum(1 for done in per_worker if done) >= 2, "the workers did not share the work"
    if kill_one:
        # At least once: only rows the dead worker had claimed (one batch) may have gone out twice.
        assert len(executed) - len(set(executed)) <= 20
    else:
        assert len(executed) == len(set(executed)), "an action was executed twice"

    # Exactly the actions a single process decides for the same shards.
    expected: set[str] = set()
    for shard, line in lines.items():
        solo = sopdsl.Runtime(plan, "memory://", clock=sopdsl.ManualClock(START), dry_run=True, shard=shard)
        for group in line["groups"]:
            solo.add_group(group["id"], tags=group.get("tags", ()))
        for member in line["members"]:
            solo.add_member(member["id"], groups=member["groups"], tags=member["tags"])
        for event in line["events"]:
            solo.clock.set(event["time"])  # type: ignore[attr-defined]
            solo.feed(event)
        solo.tick(end)
        expected |= {f"{shard}/{r.key}" for r in solo.store.outbox() if r.status == "dry_run"}
    assert set(executed) == expected
