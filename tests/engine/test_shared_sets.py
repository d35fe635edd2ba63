"""Members holding the same tags or groups hold one shared frozenset (`SharedSets`): at 100k
members a set of each member's own was 15% of a dry run's memory."""

from __future__ import annotations

from test_engine import at, compile_text

from sopdsl.engine import state
from sopdsl.engine.engine import Engine
from sopdsl.engine.events import Event
from sopdsl.engine.state import SharedSets

_PLAN = compile_text(
    """
    timezone "Asia/Shanghai"
    playbook promote { on member orders do { tag member "vip" } }
    """
)


def _engine() -> Engine:
    engine = Engine(_PLAN, start=at("2026-03-01 09:00"))
    engine.add_member("m1", groups=["g1"], tags=["new"])
    engine.add_member("m2", groups=["g1"], tags=["new"])
    for member in ("m3", "m4"):
        engine.feed(Event("join", at("2026-03-01 10:00"), member=member, group="g1"))
        engine.feed(Event("tag", at("2026-03-01 10:00"), member=member, name="new"))
    for member in ("m1", "m3"):
        engine.feed(Event("order", at("2026-03-01 11:00"), member=member, group="g1"))
    return engine


def test_members_with_the_same_tags_and_groups_share_one_set_of_each() -> None:
    # Registered, joined, tagged by an event and by an action: each way ends on the shared set.
    engine = _engine()
    m1, m2, m3, m4 = (engine.members[m] for m in ("m1", "m2", "m3", "m4"))
    assert m1.groups == m2.groups == m3.groups == m4.groups == {"g1"}
    assert m1.groups is m2.groups is m3.groups is m4.groups
    assert m2.tags == m4.tags == {"new"} and m2.tags is m4.tags
    assert m1.tags == m3.tags == {"new", "vip"} and m1.tags is m3.tags
    # Leaving and untagging change the member's own set only, and end on the shared ones too.
    engine.feed(Event("leave", at("2026-03-01 12:00"), member="m2", group="g1"))
    engine.feed(Event("untag", at("2026-03-01 12:00"), member="m4", name="new"))
    assert m2.groups == frozenset() and m1.groups == {"g1"}
    assert m4.tags == frozenset() and m4.tags is m2.groups
    assert m2.tags == {"new"}


def test_a_restored_engine_shares_the_sets_again() -> None:
    engine = _engine()
    back = Engine.restore(engine.snapshot(), {_PLAN.content_hash: _PLAN}.__getitem__)
    m1, m2, m3, m4 = (back.members[m] for m in ("m1", "m2", "m3", "m4"))
    assert m1.groups is m2.groups is m3.groups is m4.groups
    assert m1.tags == {"new", "vip"} and m1.tags is m3.tags
    assert m2.tags == {"new"} and m2.tags is m4.tags


def test_past_its_bound_the_table_starts_again_and_every_set_is_still_right() -> None:
    # A bot tagging each member its own way must not grow the table without end.
    sets = SharedSets()
    given = [sets.share(frozenset({f"t{i}"})) for i in range(state._MOST_SHARED * 2 + 10)]
    assert [sorted(s) for s in given] == [[f"t{i}"] for i in range(len(given))]
    assert len(sets._sets) <= state._MOST_SHARED
    late = frozenset({f"t{len(given) - 1}"})
    assert sets.share(late) is given[-1]  # the newest table still shares what it holds
