"""Journal entries written before the member record: a store from an older sopdsl replays as before.

What a bot developer notices: after an upgrade, members and groups registered by the old version
come back from the journal with every field they had (and the fields added since at their
defaults), so the same events send the same messages.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import sopdsl
from sopdsl.engine.engine import Engine
from sopdsl.live.dispatch import ACTION_KINDS
from sopdsl.live.runtime import ManualClock, Runtime, open_store
from sopdsl.plan import Plan

BUSY = Path(__file__).parent.parent / "engine_cases" / "busy.sop"
START = 1_772_000_000

# Exactly what `Runtime.add_group` and `Runtime.add_member` journaled before `MemberRecord`.
OLD_GROUP = {
    "op": "group",
    "id": "group:g1",
    "time": START,
    "group": "g1",
    "name": "老群",
    "tags": ["vip"],
    "zone": "Asia/Tokyo",
    "operator": "小美",
    "owner": "阿强",
}
OLD_MEMBER = {
    "op": "member",
    "id": "member:m1",
    "time": START,
    "member": "m1",
    "groups": ["g1"],
    "name": "阿花",
    "tags": ["lead", "vip"],
    "attributes": {"city": "杭州"},
    "nickname": "花",
    "joined_at": START - 86_400,
    "referrer": "m0",
    "channel": "poster",
    "counters": {"orders": 2},
}


def busy_plan() -> Plan:
    return sopdsl.compile_program(sopdsl.check(sopdsl.load(str(BUSY))))


def old_engine(plan: Plan) -> Engine:
    """The engine as the old journal replay built it from those entries (the oracle)."""
    engine = Engine(plan, start=START)
    engine.add_group("g1", name="老群", tags=["vip"], timezone="Asia/Tokyo", operator="小美", owner="阿强")
    engine.add_member(
        "m1",
        name="阿花",
        nickname="花",
        tags=["lead", "vip"],
        attributes={"city": "杭州"},
        groups=["g1"],
        joined_at=START - 86_400,
        referrer="m0",
        channel="poster",
        counters={"orders": 2},
    )
    return engine


def test_an_old_journal_member_entry_replays_as_before(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    sent: list[Any] = []
    options: dict[str, Any] = {
        "executors": dict.fromkeys(ACTION_KINDS, lambda action, key: sent.append(key)),
        "clock": ManualClock(START),
    }
    Runtime(busy_plan(), url, **options).close()  # a shard with its plan, as an old version left it
    store = open_store(url)
    assert store.append("default", [OLD_GROUP, OLD_MEMBER]) == 2
    store.close()

    rt = Runtime(busy_plan(), url, **options)
    engine = rt.engine()
    expected = old_engine(busy_plan())
    member = engine.members["m1"]
    assert dataclasses.asdict(member) == dataclasses.asdict(expected.members["m1"])
    assert member.owner is None and "m1" not in engine.contacts  # fields added since: defaults
    group = engine.groups["g1"]
    assert dataclasses.asdict(group) == dataclasses.asdict(expected.groups["g1"])
    assert str(group.zone) == "Asia/Tokyo"  # the old `zone` key is still read
    rt.close()


def test_a_new_entry_names_the_record_fields(tmp_path: Path) -> None:
    rt = Runtime(busy_plan(), f"sqlite:///{tmp_path / 'state.db'}", clock=ManualClock(START))
    rt.add_group("g1", timezone="Asia/Tokyo")
    rt.add_member("m1", groups=["g1"], contact=True, owner="小美")
    bodies = [entry.body for entry in rt.store.journal("default")]
    group, member = (b for b in bodies if b["op"] in ("group", "member"))
    assert group["timezone"] == "Asia/Tokyo" and "zone" not in group
    assert member["contact"] is True and member["owner"] == "小美"
    engine = rt.engine()
    assert engine.members["m1"].owner == "小美" and "m1" in engine.contacts
    rt.close()
