"""The engine's event tally (`Engine.tally`), the dry run's per-group, per-day event counts."""

from __future__ import annotations

from test_snapshot import busy_plan

from sopdsl.engine.engine import Engine
from sopdsl.engine.events import Event
from sopdsl.engine.tally import EventTally
from sopdsl.plan import timeutil

SHANGHAI = timeutil.zone("Asia/Shanghai")
START = 1_772_294_400  # 2026-03-01 00:00 in Shanghai
HOUR = 3600


def _fed(events: list[Event], first: int = START) -> EventTally:
    engine = Engine(busy_plan(), start=START)
    tally = engine.tally = EventTally(first, SHANGHAI, "-")
    engine.feed_all(events)
    return tally


def _counts(tally: EventTally) -> dict[tuple[str, str], tuple[object, ...]]:
    return {**tally.settled, **tally.day_counts()}


def test_a_day_counts_posters_once_and_every_message_and_its_joins_leaves_and_orders() -> None:
    tally = _fed(
        [
            Event("join", START + HOUR, "m1", "g_north", {"name": "一号"}),
            Event("message", START + 2 * HOUR, "m1", "g_north"),
            Event("message", START + 3 * HOUR, "m1", "g_north"),
            Event("message", START + 4 * HOUR, "m2", "g_north"),
            Event("order", START + 5 * HOUR, "m2", "g_north", {"amount": 99}),
            Event("order", START + 6 * HOUR, "m2", "g_north", {"amount": 1.5}),
            Event("leave", START + 7 * HOUR, "m1", "g_north"),
        ]
    )
    # posters, messages, joins, leaves, orders, buyers, amount
    assert _counts(tally) == {("g_north", "2026-03-01"): (2, 3, 1, 1, 2, 1, 100.5)}


def test_days_end_at_local_midnight_and_an_event_without_a_group_counts_apart() -> None:
    tally = _fed(
        [
            Event("message", START + 23 * HOUR, "m1", "g_north"),  # 23:00 on the first
            Event("order", START + 24 * HOUR, "m3", None, {"amount": 5}),  # 00:00 on the second
            Event("message", START + 25 * HOUR, "m1", "g_north"),
        ]
    )
    assert _counts(tally) == {
        ("g_north", "2026-03-01"): (1, 1, 0, 0, 0, 0, 0),
        ("g_north", "2026-03-02"): (1, 1, 0, 0, 0, 0, 0),
        ("-", "2026-03-02"): (0, 0, 0, 0, 1, 1, 5),
    }


def test_events_before_the_first_instant_counted_are_passed_over() -> None:
    tally = _fed(
        [
            Event("message", START + HOUR, "m1", "g_north"),
            Event("message", START + 3 * HOUR, "m2", "g_north"),
        ],
        first=START + 2 * HOUR,
    )
    assert _counts(tally) == {("g_north", "2026-03-01"): (1, 1, 0, 0, 0, 0, 0)}


def test_an_engine_without_a_tally_decides_the_same() -> None:
    events = [
        Event("join", START + HOUR, "m1", "g_north", {"name": "一号"}),
        Event("message", START + 2 * HOUR, "m1", "g_north"),
        Event("order", START + 3 * HOUR, "m1", "g_north", {"amount": 30}),
    ]
    counted = Engine(busy_plan(), start=START)
    counted.tally = EventTally(START, SHANGHAI, "-")
    counted.feed_all(events)
    plain = Engine(busy_plan(), start=START)
    plain.feed_all(events)
    assert plain.tally is None
    assert [a.key for a in counted.log] == [a.key for a in plain.log]
    assert counted.log  # the comparison above compares something
