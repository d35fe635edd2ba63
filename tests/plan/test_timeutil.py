"""Time semantics: wall times to instants, duration arithmetic and calendars, across DST changes.

The zones: America/New_York (1-hour shifts at 02:00), Europe/Warsaw (1-hour shifts at 02:00 and
03:00) and Australia/Lord_Howe (a 30-minute shift, at 02:00 both ways).
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sopdsl.checker import model
from sopdsl.plan import timeutil

NEW_YORK = ZoneInfo("America/New_York")
WARSAW = ZoneInfo("Europe/Warsaw")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
SHANGHAI = ZoneInfo("Asia/Shanghai")
ZONES = [NEW_YORK, WARSAW, LORD_HOWE, SHANGHAI]


def wall(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def iso(epoch: int, tz: ZoneInfo) -> str:
    return timeutil.aware(epoch, tz).isoformat()


def days(n: int) -> model.Duration:
    return model.Duration(amount=n, unit=model.Unit.DAY)


def hours(n: int) -> model.Duration:
    return model.Duration(amount=n, unit=model.Unit.HOUR)


def minutes(n: int) -> model.Duration:
    return model.Duration(amount=n, unit=model.Unit.MINUTE)


def months(n: int) -> model.Duration:
    return model.Duration(amount=n, unit=model.Unit.MONTH)


def daily(*times: str) -> model.Weekly:
    return model.Weekly(weekdays=tuple(range(7)), times=tuple(dt.time.fromisoformat(t) for t in times))


# ---- wall time to instant --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "local", "expected"),
    [
        # In a spring-forward gap: the first instant after it.
        (NEW_YORK, "2026-03-08 02:30", "2026-03-08T03:00:00-04:00"),
        (NEW_YORK, "2026-03-08 02:00", "2026-03-08T03:00:00-04:00"),
        (WARSAW, "2026-03-29 02:59", "2026-03-29T03:00:00+02:00"),
        (LORD_HOWE, "2026-10-04 02:15", "2026-10-04T02:30:00+11:00"),
        # Happening twice on a fall-back night: the first occurrence.
        (NEW_YORK, "2026-11-01 01:30", "2026-11-01T01:30:00-04:00"),
        (WARSAW, "2026-10-25 02:30", "2026-10-25T02:30:00+02:00"),
        (LORD_HOWE, "2026-04-05 01:45", "2026-04-05T01:45:00+11:00"),
        # Either side of a change, and an ordinary day.
        (NEW_YORK, "2026-03-08 01:59", "2026-03-08T01:59:00-05:00"),
        (NEW_YORK, "2026-03-08 03:00", "2026-03-08T03:00:00-04:00"),
        (LORD_HOWE, "2026-04-05 02:00", "2026-04-05T02:00:00+10:30"),
        (SHANGHAI, "2026-03-08 02:30", "2026-03-08T02:30:00+08:00"),
    ],
)
def test_resolve(zone: ZoneInfo, local: str, expected: str) -> None:
    assert iso(timeutil.resolve(wall(local), zone), zone) == expected


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    naive=st.datetimes(min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2027, 12, 31)),
)
def test_resolve_round_trips_except_in_gaps(zone: ZoneInfo, naive: dt.datetime) -> None:
    naive = naive.replace(microsecond=0)
    instant = timeutil.resolve(naive, zone)
    back = timeutil.local(instant, zone)
    if back != naive:
        # Only a wall time that does not exist moves, and only forward, to the end of the gap.
        assert back > naive
        assert back - naive <= dt.timedelta(hours=1)
        assert timeutil.aware(instant - 1, zone).utcoffset() != timeutil.aware(instant, zone).utcoffset()
    else:
        # An existing wall time: its first occurrence.
        assert timeutil.local(instant - 3600, zone) != naive
        assert timeutil.local(instant - 1800, zone) != naive


# ---- durations ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "start", "duration", "expected"),
    [
        # `N days` keeps the wall time across a change; `N hours` is exact.
        (NEW_YORK, "2026-03-07 12:00", days(1), "2026-03-08T12:00:00-04:00"),
        (NEW_YORK, "2026-03-07 12:00", hours(24), "2026-03-08T13:00:00-04:00"),
        (NEW_YORK, "2026-10-31 12:00", days(1), "2026-11-01T12:00:00-05:00"),
        (NEW_YORK, "2026-10-31 12:00", hours(24), "2026-11-01T11:00:00-05:00"),
        (WARSAW, "2026-03-28 18:00", days(1), "2026-03-29T18:00:00+02:00"),
        (WARSAW, "2026-03-28 18:00", hours(24), "2026-03-29T19:00:00+02:00"),
        (LORD_HOWE, "2026-04-04 12:00", days(1), "2026-04-05T12:00:00+10:30"),
        (LORD_HOWE, "2026-04-04 12:00", hours(24), "2026-04-05T11:30:00+10:30"),
        (LORD_HOWE, "2026-10-03 12:00", hours(24), "2026-10-04T12:30:00+11:00"),
        (LORD_HOWE, "2026-10-03 12:00", minutes(24 * 60), "2026-10-04T12:30:00+11:00"),
        # Landing in a gap: the first instant after it.
        (NEW_YORK, "2026-03-07 02:30", days(1), "2026-03-08T03:00:00-04:00"),
        # Landing on a repeated wall time: its first occurrence.
        (NEW_YORK, "2026-10-31 01:30", days(1), "2026-11-01T01:30:00-04:00"),
        # Months keep the day, clamped to the end of a shorter month; weeks are 7 days.
        (SHANGHAI, "2026-01-31 09:00", months(1), "2026-02-28T09:00:00+08:00"),
        (
            SHANGHAI,
            "2028-02-29 09:00",
            model.Duration(amount=1, unit=model.Unit.YEAR),
            "2029-02-28T09:00:00+08:00",
        ),
        (
            NEW_YORK,
            "2026-03-02 09:00",
            model.Duration(amount=1, unit=model.Unit.WEEK),
            "2026-03-09T09:00:00-04:00",
        ),
    ],
)
def test_add(zone: ZoneInfo, start: str, duration: model.Duration, expected: str) -> None:
    assert iso(timeutil.add(timeutil.resolve(wall(start), zone), duration, zone), zone) == expected


def test_subtracting_days_keeps_the_wall_time() -> None:
    start = timeutil.resolve(wall("2026-03-09 20:00"), NEW_YORK)
    assert iso(timeutil.add(start, days(2), NEW_YORK, sign=-1), NEW_YORK) == "2026-03-07T20:00:00-05:00"
    assert iso(timeutil.add(start, hours(48), NEW_YORK, sign=-1), NEW_YORK) == "2026-03-07T19:00:00-05:00"


@settings(max_examples=200, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    epoch=st.integers(timeutil.to_epoch(dt.datetime(2025, 1, 1, tzinfo=dt.UTC)), 1_830_000_000),
    amount=st.integers(1, 400),
)
def test_hours_are_exact_and_days_keep_the_wall_time(zone: ZoneInfo, epoch: int, amount: int) -> None:
    epoch -= epoch % 60
    assert timeutil.add(epoch, hours(amount), zone) - epoch == amount * 3600
    assert timeutil.add(epoch, minutes(amount), zone) - epoch == amount * 60
    later = timeutil.add(epoch, days(amount), zone)
    target = timeutil.local(epoch, zone) + dt.timedelta(days=amount)
    # Same wall time on the day `amount` days later, unless that wall time does not exist there.
    assert timeutil.local(later, zone) == target or (
        timeutil.local(later, zone) > target and timeutil.resolve(target, zone) == later
    )


def _around_changes(zone: ZoneInfo) -> list[int]:
    """Every second of the two hours around each of the zone's offset changes in 2026."""
    hour = timeutil.to_epoch(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    found: list[int] = []
    while hour < timeutil.to_epoch(dt.datetime(2027, 1, 1, tzinfo=dt.UTC)):
        if timeutil.aware(hour, zone).utcoffset() != timeutil.aware(hour + 3600, zone).utcoffset():
            found.extend(range(hour, hour + 7200))
        hour += 3600
    return found


@pytest.mark.parametrize("zone", ZONES, ids=str)
def test_local_date_and_time_are_the_zones_wall_clock_through_every_change(zone: ZoneInfo) -> None:
    seconds = _around_changes(zone)
    assert len(seconds) == (0 if zone is SHANGHAI else 2 * 7200)  # two changes a year
    for epoch in seconds:
        wall = timeutil.local(epoch, zone)
        assert (timeutil.local_date(epoch, zone), timeutil.local_time(epoch, zone)) == (
            wall.date(),
            wall.time(),
        )


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from([*ZONES, ZoneInfo("Asia/Kathmandu"), ZoneInfo("Pacific/Chatham")]),
    epoch=st.integers(-(2**34), 2**34),
)
def test_local_date_and_time_are_the_zones_wall_clock_at_any_instant(zone: ZoneInfo, epoch: int) -> None:
    wall = timeutil.local(epoch, zone)
    assert (timeutil.local_date(epoch, zone), timeutil.local_time(epoch, zone)) == (wall.date(), wall.time())


# ---- calendars -----------------------------------------------------------------------------------


def fires(
    rule: model.CalendarRule,
    zone: ZoneInfo,
    start: str,
    end: str,
    offsets: tuple[tuple[bool, model.Duration], ...] = (),
    at: dt.time | None = None,
) -> list[str]:
    """Every firing in [start, end), as ISO local times."""
    after = timeutil.resolve(wall(start), zone) - 1
    limit = timeutil.resolve(wall(end), zone)
    found: list[str] = []
    while True:
        due = timeutil.next_fire(rule, offsets, at, zone, after)
        if due is None or due >= limit:
            return found
        assert due > after
        found.append(iso(due, zone))
        after = due


@pytest.mark.parametrize(
    ("zone", "time"),
    [(NEW_YORK, "02:30"), (NEW_YORK, "01:30"), (WARSAW, "02:30"), (LORD_HOWE, "01:45"), (LORD_HOWE, "02:15")],
)
def test_a_daily_calendar_fires_once_on_every_day_of_the_year(zone: ZoneInfo, time: str) -> None:
    """Through both changes: never skipped (in a gap), never doubled (in a repeated hour)."""
    found = fires(daily(time), zone, "2026-01-01 00:00", "2027-01-01 00:00")
    assert len(found) == 365
    assert len({f[:10] for f in found}) == 365


def test_daily_calendar_on_the_new_york_changes() -> None:
    spring = fires(daily("02:30"), NEW_YORK, "2026-03-07 00:00", "2026-03-10 00:00")
    assert spring == ["2026-03-07T02:30:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"]
    fall = fires(daily("01:30"), NEW_YORK, "2026-10-31 00:00", "2026-11-03 00:00")
    assert fall == ["2026-10-31T01:30:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]


def test_exact_interval_keeps_its_rhythm_through_a_fall_back_night() -> None:
    rule = model.Interval(every=minutes(30), first=wall("2026-11-01 00:00"), until=dt.date(2026, 11, 1))
    found = fires(rule, NEW_YORK, "2026-10-31 00:00", "2026-11-03 00:00")
    # The day is 25 hours long: 50 half-hours, the repeated 01:00-02:00 included.
    assert len(found) == 50
    assert found[2:6] == [
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:30:00-04:00",
        "2026-11-01T01:00:00-05:00",
        "2026-11-01T01:30:00-05:00",
    ]
    instants = [dt.datetime.fromisoformat(f).timestamp() for f in found]
    assert {b - a for a, b in itertools.pairwise(instants)} == {1800}


def test_exact_interval_through_a_spring_forward_night() -> None:
    rule = model.Interval(every=hours(1), first=wall("2026-03-08 00:00"), until=dt.date(2026, 3, 8))
    found = fires(rule, NEW_YORK, "2026-03-07 00:00", "2026-03-10 00:00")
    assert len(found) == 23
    assert found[1:3] == ["2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00"]


def test_interval_in_days_keeps_the_wall_time() -> None:
    rule = model.Interval(every=days(1), first=wall("2026-03-06 02:30"), until=dt.date(2026, 3, 9))
    assert fires(rule, NEW_YORK, "2026-03-01 00:00", "2026-04-01 00:00") == [
        "2026-03-06T02:30:00-05:00",
        "2026-03-07T02:30:00-05:00",
        "2026-03-08T03:00:00-04:00",
        "2026-03-09T02:30:00-04:00",
    ]


def test_cron_is_read_on_the_local_wall() -> None:
    rule = model.Cron(expression="30 2 * * *")
    assert fires(rule, NEW_YORK, "2026-03-07 00:00", "2026-03-10 00:00") == [
        "2026-03-07T02:30:00-05:00",
        "2026-03-08T03:00:00-04:00",
        "2026-03-09T02:30:00-04:00",
    ]


def test_calendar_offsets() -> None:
    tuesday = model.Weekly(weekdays=(1,), times=(dt.time(20),))
    window = ("2026-03-01 00:00", "2026-03-15 00:00")
    assert fires(tuesday, NEW_YORK, *window, offsets=((True, days(2)),)) == [
        "2026-03-01T20:00:00-05:00",  # Sunday before Tuesday 3 March
        "2026-03-08T20:00:00-04:00",  # Sunday 20:00 on the wall, across the change
    ]
    assert fires(tuesday, NEW_YORK, *window, offsets=((True, hours(2)),)) == [
        "2026-03-03T18:00:00-05:00",
        "2026-03-10T18:00:00-04:00",
    ]
    assert fires(tuesday, NEW_YORK, *window, offsets=((False, days(1)),), at=dt.time(10)) == [
        "2026-03-04T10:00:00-05:00",
        "2026-03-11T10:00:00-04:00",
    ]


def test_calendar_limits() -> None:
    rule = model.Weekly(
        weekdays=tuple(range(7)), times=(dt.time(12),), start=dt.date(2026, 3, 2), until=dt.date(2026, 3, 3)
    )
    assert fires(rule, SHANGHAI, "2026-03-01 00:00", "2026-03-10 00:00") == [
        "2026-03-02T12:00:00+08:00",
        "2026-03-03T12:00:00+08:00",
    ]
    dates = model.Dates(dates=(dt.date(2026, 11, 11), dt.date(2026, 12, 12)), times=(dt.time(10),))
    assert fires(dates, SHANGHAI, "2026-11-11 10:00", "2027-01-01 00:00") == [
        "2026-11-11T10:00:00+08:00",
        "2026-12-12T10:00:00+08:00",
    ]
    # Strictly after: a firing at the `after` instant itself is not the next one.
    noon = timeutil.resolve(wall("2026-11-11 10:00"), SHANGHAI)
    assert timeutil.next_fire(dates, (), None, SHANGHAI, noon) == timeutil.resolve(
        wall("2026-12-12 10:00"), SHANGHAI
    )
    assert timeutil.next_fire(dates, (), None, SHANGHAI, noon + 40 * 86400) is None


def test_a_cron_that_never_fires_has_no_next_time_rather_than_an_error() -> None:
    # The checker refuses it (SOP304); a plan compiled before that check must not crash a run.
    after = timeutil.resolve(dt.datetime(2026, 1, 1), SHANGHAI)
    never = model.Cron(expression="0 9 31 2 *")
    assert timeutil.next_fire(never, (), None, SHANGHAI, after) is None
    leap = model.Cron(expression="0 9 29 2 *")
    assert timeutil.next_fire(leap, (), None, SHANGHAI, after) == timeutil.resolve(
        dt.datetime(2028, 2, 29, 9), SHANGHAI
    )


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    every=st.sampled_from([1, 7, 30, 90, 240]),
    first=st.integers(0, 400 * 86400),
    after=st.integers(0, 400 * 86400),
    offset=st.sampled_from([(), ((True, 30),), ((False, 90),), ((False, 1440), (True, 60))]),
)
def test_an_exact_interval_finds_its_next_firing_as_a_walk_from_far_back_does(
    zone: ZoneInfo, every: int, first: int, after: int, offset: tuple[tuple[bool, int], ...]
) -> None:
    # next_fire begins an exact interval just before `after` (not two days before it, which
    # walked 2,880 firings each time for `every 1 minutes`): it must find what a long walk finds.
    base = timeutil.resolve(dt.datetime(2026, 1, 1), zone)
    rule = model.Interval(every=minutes(every), first=timeutil.local(base + first, zone).replace(tzinfo=None))
    offsets = tuple((negative, minutes(n)) for negative, n in offset)
    moment = base + after
    shift = sum((-60 if negative else 60) * n for negative, n in offset)
    walked = next(
        instant + shift
        for _, instant in timeutil._series(rule, timeutil.local(moment - shift - 3 * 86400, zone), zone)
        if instant + shift > moment
    )
    assert timeutil.next_fire(rule, offsets, None, zone, moment) == walked


@pytest.mark.parametrize("zone", [*ZONES, ZoneInfo("Asia/Kathmandu"), ZoneInfo("America/St_Johns")], ids=str)
def test_the_cached_offset_is_the_zones_own_at_every_second_around_each_change(zone: ZoneInfo) -> None:
    # Each hour's offset is cached when it is the same at the hour's start and the next hour's:
    # the seconds on either side of a change, and the hours around it, must still be exact.
    def exact(epoch: int) -> int:
        delta = dt.datetime.fromtimestamp(epoch, zone).utcoffset()
        assert delta is not None
        return int(delta.total_seconds())

    start = int(dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp())
    changes = [t for t in range(start, start + 366 * 86400, 900) if exact(t) != exact(t + 900)]
    for coarse in changes:  # the change to the second, within its quarter hour
        change = next(t for t in range(coarse, coarse + 901) if exact(t) != exact(coarse))
        for epoch in [*range(change - 7200, change + 7200, 600), *range(change - 3, change + 3)]:
            assert timeutil.utc_offset(epoch, zone) == exact(epoch), (zone, epoch)
    assert len(changes) == (0 if zone.key in ("Asia/Shanghai", "Asia/Kathmandu") else 2)


def test_no_zone_changes_its_offset_twice_within_a_day() -> None:
    # timeutil's stable days sample a zone's offset every six hours and take equal samples for no
    # change between them. Held here against every zone of the database the tests run with: its
    # explicit changes (the pure-Python zoneinfo keeps them in `_trans_utc`), after which yearly
    # rules put months between changes.
    import importlib
    from zoneinfo import available_timezones

    pure: Any = importlib.import_module("zoneinfo._zoneinfo").ZoneInfo
    closest = min(
        (b - a, key)
        for key in available_timezones()
        for a, b in itertools.pairwise(pure.no_cache(key)._trans_utc)
    )
    assert closest[0] > 86400, closest


def test_a_stable_day_is_one_whose_offset_holds_from_the_day_before_to_the_day_after() -> None:
    for zone in (NEW_YORK, LORD_HOWE, ZoneInfo("America/St_Johns")):
        start = int(dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp())
        for epoch in range(start, start + 366 * 86400, 86400):
            day = epoch // 86400 * 86400
            offsets = {
                int(dt.datetime.fromtimestamp(t, zone).utcoffset().total_seconds())  # type: ignore[union-attr]
                for t in range(day - 86400, day + 2 * 86400, 600)
            }
            expected = next(iter(offsets)) if len(offsets) == 1 else None
            assert timeutil.stable_offset(epoch, zone) == expected, (zone, epoch)
