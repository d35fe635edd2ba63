"""`member silent for` in a playbook scoped to groups counts per group: "has not spoken in this
group". A post in one group re-arms only that group's count; the flow runs in the group the member
is silent in. In private chats, the member's silence stays one count."""

from __future__ import annotations

from test_reload import DAY, T0, compile_text

from sopdsl.engine.engine import Engine
from sopdsl.engine.events import Event
from sopdsl.plan import Plan

PRUNE = """
    timezone "Asia/Shanghai"
    template gone = "已移出"
    playbook prune {
        in groups tagged "normal"
        on member silent for DAYS days
        apply to all members
        repeat always
        do {
            kick member because "潜水"
            send gone to operator
        }
    }
"""


def _plan(days: int = 28) -> Plan:
    return compile_text(PRUNE.replace("DAYS", str(days)))


def _engine(plan: Plan) -> Engine:
    engine = Engine(plan, start=T0)
    engine.add_group("a", tags=["normal"])
    engine.add_group("b", tags=["normal"])
    engine.add_group("c", tags=["vip"])
    engine.add_member("m1", groups=["a", "b", "c"])
    engine.add_member("m2", groups=["a"])
    return engine


def _posts(engine: Engine, until_day: int) -> None:
    """m1 posts in group b every week; never in a."""
    for day in range(1, until_day, 7):
        engine.feed(Event("message", T0 + day * DAY, member="m1", group="b", data={"text": "打卡"}))


def _kicks(engine: Engine) -> list[tuple[str | None, str | None, int]]:
    return [(a.member, a.group, (a.time - T0) // DAY) for a in engine.log if a.kind == "kick"]


def test_a_member_who_posts_in_one_group_is_pruned_from_the_other() -> None:
    engine = _engine(_plan())
    _posts(engine, 60)
    engine.advance(T0 + 60 * DAY)
    # Silent in a since the start: out of a on day 28. Never out of b, where m1 posts; c is out of scope.
    assert _kicks(engine) == [("m1", "a", 28), ("m2", "a", 28)]
    sends = [(a.member, a.group) for a in engine.log if a.kind == "send"]
    assert sends == [("m1", "a"), ("m2", "a")], "the operator is told about group a, where it happened"


def test_a_restored_engine_counts_each_group_on() -> None:
    plan = _plan()
    whole = _engine(plan)
    _posts(whole, 60)
    whole.advance(T0 + 60 * DAY)

    first = _engine(plan)
    _posts(first, 20)
    second = Engine.restore(first.snapshot(), {plan.content_hash: plan}.__getitem__)
    for day in range(22, 60, 7):
        second.feed(Event("message", T0 + day * DAY, member="m1", group="b", data={"text": "打卡"}))
    second.advance(T0 + 60 * DAY)
    assert [(a.time, a.member, a.group, a.key) for a in first.log + second.log] == [
        (a.time, a.member, a.group, a.key) for a in whole.log
    ]


def test_a_new_version_keeps_each_groups_count() -> None:
    engine = _engine(_plan(28))
    engine.feed(Event("message", T0 + 10 * DAY, member="m2", group="a", data={"text": "在"}))
    engine.reload(_plan(30), at=T0 + 12 * DAY)
    engine.advance(T0 + 60 * DAY)
    # Counted on from where each stood: m1 from the start (day 30), m2 from its post (day 40).
    assert _kicks(engine) == [("m1", "a", 30), ("m1", "b", 30), ("m2", "a", 40)]


def test_in_private_chats_the_silence_is_the_members() -> None:
    plan = compile_text(
        PRUNE.replace('in groups tagged "normal"', "in private chats")
        .replace("DAYS", "28")
        .replace('kick member because "潜水"', "send gone to member")
        .replace("send gone to operator", "")
    )
    engine = Engine(plan, start=T0)
    engine.feed(Event("join", T0, member="m3"))  # a contact: a one-to-one chat, no group
    engine.feed(Event("message", T0 + 5 * DAY, member="m3"))
    engine.advance(T0 + 60 * DAY)
    assert [((a.time - T0) // DAY, a.member) for a in engine.log if a.kind == "send"] == [(33, "m3")]
