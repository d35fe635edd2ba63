"""Idempotency keys: one per decided action, the same on every replay, whatever the path's spelling.

A key derives from what started the flow (the event's id, or the event's number among the
shard's events; for a timer, what armed it) and from the action's place in the flow, never
from the clock. Two messages in the same second are two actions with two keys, and both go out.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from livestores import START, as_the_engine_decided, timeline

import sopdsl
from sopdsl.build import compile_files
from sopdsl.dryrun.fixtures import Fixture
from sopdsl.dryrun.simulate import simulate
from sopdsl.engine.actions import Action
from sopdsl.live.runtime import ManualClock, Runtime
from sopdsl.plan import Plan, timeutil

CASES = Path(__file__).parent.parent / "engine_cases"
HOUR = 3600

REPEATING = """\
timezone "Asia/Shanghai"
template thanks = "谢谢 {{ member.name }}"
template welcome = "欢迎"
playbook thank {
    on member posts
    repeat always
    do { send thanks to member }
}
playbook buyers {
    on member orders
    repeat always
    do { send thanks to member }
}
playbook hello {
    on member joins
    do { send welcome to member }
}
"""


def plan_of(text: str) -> Plan:
    return sopdsl.compile_program(sopdsl.check(sopdsl.load_text(text, "inline.sop")))


def test_three_posts_in_one_second_are_three_actions_with_three_keys(tmp_path: Path) -> None:
    clock = ManualClock(START)
    executed: list[str] = []
    rt = Runtime(
        plan_of(REPEATING),
        f"sqlite:///{tmp_path / 'state.db'}",
        clock=clock,
        executors={"send": lambda action, key: executed.append(key)},
    )
    post = {"kind": "message", "member": "m1", "group": "g1", "time": START}
    decided = [a for _ in range(3) for a in rt.feed(post)]
    rt.tick()
    assert len(decided) == 3
    assert len({a.key for a in decided}) == 3
    assert sorted(executed) == sorted(a.key for a in decided)
    rt.close()


def test_one_list_of_a_join_and_five_orders_executes_every_action(tmp_path: Path) -> None:
    # What a bot posts to /events in one request: every decided action has its own key.
    clock = ManualClock(START)
    executed: list[str] = []
    rt = Runtime(
        plan_of(REPEATING),
        f"sqlite:///{tmp_path / 'state.db'}",
        clock=clock,
        executors={"send": lambda action, key: executed.append(key)},
    )
    join = {"kind": "join", "member": "m1", "group": "g1", "time": START}
    orders = [{"kind": "order", "member": "m1", "group": "g1", "time": START} for _ in range(5)]
    decided = rt.feed_many([join, *orders])
    rt.tick()
    assert len(decided) == 6
    assert len({a.key for a in decided}) == 6
    assert sorted(executed) == sorted(a.key for a in decided)
    rt.close()


# ---- the property over random timelines ----------------------------------------------------------


def _fixture(line: dict[str, Any], zone: dt.tzinfo) -> Fixture:
    def at(moment: int) -> str:
        return dt.datetime.fromtimestamp(moment, zone).isoformat()

    events = [{k: v for k, v in {**e, "at": at(e["time"])}.items() if k != "time"} for e in line["events"]]
    return Fixture.model_validate(
        {
            "start": at(line["start"]),
            "end": at(line["end"]),
            "groups": line["groups"],
            "members": line["members"],
            "events": events,
        }
    )


def _line(seed: int, with_ids: bool) -> dict[str, Any]:
    line = timeline(seed, 80)
    rng = random.Random(seed)
    # Bursts: events in the very same second as the one before.
    for before, event in zip(line["events"], line["events"][1:], strict=False):
        if rng.random() < 0.3:
            event["time"] = before["time"]
    if not with_ids:
        for event in line["events"]:
            event.pop("id")
    return line


def _live(plan: Plan, line: dict[str, Any], url: str, *, restart_at: int | None = None) -> list[Action]:
    clock = ManualClock(line["start"])

    def opened() -> Runtime:
        return Runtime(plan, url, clock=clock, dry_run=True, snapshot_every=7)

    rt = opened()
    for group in line["groups"]:
        rt.add_group(group["id"], tags=group.get("tags", ()))
    for member in line["members"]:
        rt.add_member(member["id"], tags=member["tags"], groups=member["groups"])
    decided: list[Action] = []
    for index, event in enumerate(line["events"]):
        if index == restart_at:
            rt.close()
            rt = opened()
        clock.set(event["time"])
        decided.extend(rt.feed(event))
    clock.set(line["end"])
    decided.extend(rt.tick())
    rt.close()
    return decided


def _facts(actions: list[Action]) -> list[tuple[str, str, int, str, str]]:
    return [(a.kind, a.target, a.time, a.status, a.key) for a in actions]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), with_ids=st.booleans())
def test_keys_are_unique_and_agree_across_dry_run_live_and_restart(
    seed: int, with_ids: bool, tmp_path_factory: pytest.TempPathFactory
) -> None:
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load(str(CASES / "busy.sop"))))
    zone = timeutil.zone(plan.declarations.timezone)
    line = _line(seed, with_ids)
    dry = simulate(plan, _fixture(line, zone)).actions
    assert dry
    # One key per decided action.
    assert len({a.key for a in dry}) == len(dry)
    # The live runtime decides the same actions, with the same keys; and again after a restart
    # halfway (from a snapshot, then the journal after it).
    folder = tmp_path_factory.mktemp("keys")
    assert _facts(as_the_engine_decided(_live(plan, line, "memory://"))) == _facts(dry)
    restarted = _live(plan, line, f"sqlite:///{folder / 'state.db'}", restart_at=len(line["events"]) // 2)
    assert _facts(as_the_engine_decided(restarted)) == _facts(dry)


def test_two_spellings_of_a_path_give_one_plan_and_the_same_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    zone = timeutil.zone("Asia/Shanghai")
    line = _line(7, with_ids=False)
    fixture = _fixture(line, zone)
    monkeypatch.chdir(CASES.parent)
    spellings = [Path("engine_cases/busy.sop"), CASES / "busy.sop"]
    plans = [compile_files([p]).plan for p in spellings]
    monkeypatch.chdir(CASES)
    plans.append(compile_files([Path("busy.sop")]).plan)
    plans.append(
        sopdsl.compile_program(sopdsl.check(sopdsl.load(os.path.join("..", "engine_cases", "busy.sop"))))
    )
    assert all(p is not None for p in plans)
    hashes = {p.content_hash for p in plans if p is not None}
    assert len(hashes) == 1
    keys = [[a.key for a in simulate(p, fixture).actions] for p in plans if p is not None]
    assert keys[0] and all(k == keys[0] for k in keys)
    # Locations in the plan are relative to the root file's folder.
    assert plans[0] is not None and plans[0].playbooks[0].code[0].loc.startswith("busy.sop:")


ORIGINS = """\
timezone "Asia/Shanghai"
template hi = "你好"
playbook nudge {
    in groups tagged "normal"
    on member silent for 2 days
    apply to all members
    repeat always
    do { send hi to member }
}
playbook hello {
    in groups tagged "normal"
    on member joins
    do { send hi to member }
}
"""


def _key(origin: str, playbook: str, member: str, group: str) -> str:
    raw = f"{origin}|{playbook}|-1|{member}|{group}|1"
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


def test_a_key_derives_from_the_event_or_the_timer_that_started_its_flow() -> None:
    # The origin is written out only when a flow starts (not per event): its text must stay the
    # one keys were always derived from, or every journaled key of a live store would change.
    from sopdsl.engine.engine import Engine
    from sopdsl.engine.events import Event

    engine = Engine(plan_of(ORIGINS), start=START)
    engine.add_group("g1", tags=["normal"])
    engine.add_member("m1", groups=["g1"])
    engine.feed(Event("message", START + 10, member="m1", group="g1"))  # the 1st event: no flow
    engine.feed(Event("join", START + 20, member="m2", group="g1"))  # the 2nd, without an id
    engine.feed(Event("join", START + 30, member="m3", group="g1", id="ev-7"))
    engine.advance(START + 3 * 86400)
    keys = {(a.playbook, a.member): a.key for a in engine.log}
    assert keys[("hello", "m2")] == _key("#2", "hello", "m2", "g1")
    assert keys[("hello", "m3")] == _key("e:ev-7", "hello", "m3", "g1")
    # A silence deadline, counted in the group (a group-scoped `silent for`, timer kind 8):
    # t<timer kind>:<playbook>:<member>:<due>:<trigger index>:<group>.
    due = START + 10 + 2 * 86400
    assert keys[("nudge", "m1")] == _key(f"t8:nudge:m1:{due}:0:g1", "nudge", "m1", "g1")


def test_the_sha256_the_keys_are_made_with_is_sha256() -> None:
    # The engine takes CPython's own SHA-256 where it has one: a key is the same on every
    # Python, and the same as hashlib's, or a replay after an upgrade would send again.
    import hashlib

    from sopdsl.engine.flows import _sha256

    for raw in (b"", b"#12|welcome|-1|u1|g1|1", "e:\u4e2d|\u5165\u7fa4|0|||3".encode()):
        assert _sha256(raw).hexdigest() == hashlib.sha256(raw).hexdigest()
