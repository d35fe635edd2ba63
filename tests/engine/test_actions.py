"""The action log's times: ISO 8601 local time with the offset, as `datetime.isoformat` writes it."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sopdsl.plan.timeutil import iso

# DST in spring and autumn, a half-hour DST (Lord Howe), offsets of 5:30 and 12:45, and an offset
# of -0:44:30 before 1972 (Monrovia), which plain minutes cannot write.
ZONES = [
    "Asia/Shanghai",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "Africa/Monrovia",
]


@pytest.mark.parametrize("name", ZONES)
def test_every_instant_of_a_year_reads_as_datetime_writes_it(name: str) -> None:
    tz = ZoneInfo(name)
    for start in (1_767_225_600, -100_000_000):  # 2026, and 1966 (Monrovia's odd offset)
        for epoch in range(start, start + 366 * 86400, 1_201):
            assert iso(epoch, tz) == dt.datetime.fromtimestamp(epoch, tz).isoformat(), epoch


@settings(max_examples=300, deadline=None)
@given(st.integers(-2_000_000_000, 4_000_000_000), st.sampled_from(ZONES))
def test_any_instant_reads_as_datetime_writes_it(epoch: int, name: str) -> None:
    tz = ZoneInfo(name)
    assert iso(epoch, tz) == dt.datetime.fromtimestamp(epoch, tz).isoformat()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1_700_000_000, 1_800_000_000), st.sampled_from(ZONES), st.integers(0, 3)),
        min_size=1,
        max_size=30,
    )
)
def test_instants_in_any_order_of_zones_and_repeats_read_as_datetime_writes_them(
    calls: list[tuple[int, str, int]],
) -> None:
    # `iso` keeps the last text and the last local day: a repeat, the day before, another zone.
    for epoch, name, repeats in calls:
        tz = ZoneInfo(name)
        for _ in range(repeats + 1):
            assert iso(epoch, tz) == dt.datetime.fromtimestamp(epoch, tz).isoformat()
