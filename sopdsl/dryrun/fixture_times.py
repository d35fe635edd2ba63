"""Fixture times and the limits of a dry run: the years a time may be in, the span of a run, the
nesting and aliases a YAML fixture may hold; times, zones and durations read with a message saying
exactly what is wrong. Shared by YAML fixtures (`sopdsl.dryrun.fixtures`) and JSONL timelines."""

from __future__ import annotations

import calendar
import datetime as dt
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sopdsl import lang
from sopdsl.lang import durations
from sopdsl.plan import timeutil

# Limits on what a dry run reads (see docs/testing.md): beyond them a fixture or timeline gets a
# located diagnostic naming the limit, never an overflow, a runaway run or a traceback.
FIRST_YEAR, LAST_YEAR = 1970, 2200  # the years a time in a fixture or timeline may be in
MAX_SPAN_YEARS = 20  # from the start to the end (or the last event) of one dry run
MAX_DEPTH = 100  # lists and mappings inside each other in a YAML fixture
MAX_ALIAS_VALUES = 10_000  # values YAML aliases (`*name`) may repeat, in all, in one fixture

_MONTHS = "January February March April May June July August September October November December".split()
_DATE_TIME = re.compile(r"(\d{1,4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{1,2}))?")


def _ordinal(day: int) -> str:
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _why_not(value: str) -> str:
    """What is wrong with text that is not a fixture time, as precisely as it can be said."""
    match = _DATE_TIME.match(value)
    if match is None:
        return f"'{value}' is not a time like 2026-03-01 09:00"
    year, month, day = (int(part) for part in match.group(1, 2, 3))
    if not FIRST_YEAR <= year <= LAST_YEAR:
        return _year_problem(value, year)
    if not 1 <= month <= 12:
        return f"'{value}': there is no month {month} (months are 01 to 12)"
    days = calendar.monthrange(year, month)[1]
    if not 1 <= day <= days:
        if day == 0:
            return f"'{value}': there is no day 0 (days start at 01)"
        leap = f" ({year} is not a leap year)" if month == 2 and day == 29 else ""
        return f"'{value}': {_MONTHS[month - 1]} has no {_ordinal(day)}{leap}"
    if match.group(4) is not None:
        hour, minute = int(match.group(4)), int(match.group(5))
        if hour > 23 or minute > 59:
            return f"'{value}': {match.group(4)}:{match.group(5)} is not a time of day (00:00 to 23:59)"
    return f"'{value}' is not a time like 2026-03-01 09:00"


def _year_problem(value: object, year: int) -> str:
    return f"'{value}': the year {year} is outside the years a dry run covers ({FIRST_YEAR} to {LAST_YEAR})"


def known_zone(name: object) -> bool:
    """Whether `name` is an IANA time zone name this machine knows."""
    if not isinstance(name, str):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a path
        return False
    return True


def parse_time(text: str) -> dt.datetime:
    """A fixture time: `2026-03-01 09:00`, `2026-03-01T09:00:00+08:00` or a bare date (midnight),
    in the years FIRST_YEAR to LAST_YEAR. Raises ValueError saying what is wrong."""
    value = str(text).strip()
    try:
        if len(value) == 10:
            moment = dt.datetime.combine(dt.date.fromisoformat(value), dt.time())
        else:
            moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(_why_not(value)) from None
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise ValueError(_year_problem(value, moment.year))
    return moment


def span_end(start: dt.datetime) -> dt.datetime:
    """The latest time a dry run starting at `start` may reach: MAX_SPAN_YEARS later (a 29
    February start ends on 1 March)."""
    try:
        return start.replace(year=start.year + MAX_SPAN_YEARS)
    except ValueError:
        return start.replace(year=start.year + MAX_SPAN_YEARS, month=3, day=1)


def span_problem(value: object, start: object) -> str:
    """The message for a time past the end of the span a dry run may cover."""
    return (
        f"{value} is more than {MAX_SPAN_YEARS} years after the start ({start}); "
        f"a dry run covers at most {MAX_SPAN_YEARS} years"
    )


def parse_duration(text: str) -> int:
    """A fixture duration, in seconds, written as in a playbook (`2 hours`, `3 小时`, `30分钟`,
    `1 week`: `sopdsl.lang.durations` reads both). Raises ValueError saying what is wrong and
    which units there are."""
    try:
        duration = durations.parse_duration(str(text))
    except durations.DurationError as exc:
        if exc.part == "length":
            raise ValueError(_too_long(text)) from None
        said = exc.message if exc.message.startswith(f"'{text}'") else f"'{text}': {exc.message}"
        if exc.part == "unit" and exc.hint and exc.hint != durations.UNITS_HINT:
            said += f", {exc.hint}"  # did you mean 'hours'?
        raise ValueError(f"{said} ({durations.UNITS_HINT})") from None
    if not duration.exact and duration.unit not in (lang.Unit.DAY, lang.Unit.WEEK):
        # A delay is a number of seconds after a task is made: a month has no one length.
        raise ValueError(
            f"'{text}': a delay is counted in minutes, hours, days or weeks (分钟, 小时, 天, 周)"
        )
    seconds = timeutil.seconds(duration)
    if seconds > MAX_SPAN_YEARS * 366 * 86400:
        raise ValueError(_too_long(text))
    return seconds


def _too_long(text: str) -> str:
    return f"'{text}' is longer than {MAX_SPAN_YEARS} years, the most a dry run covers"


def to_epoch(text: str, tz_name: str) -> int:
    """A fixture time as epoch seconds (naive times are local to the zone)."""
    moment = parse_time(text)
    tz = timeutil.zone(tz_name)
    if moment.tzinfo is None:
        return timeutil.resolve(moment, tz)
    return timeutil.to_epoch(moment)


def order_key(moment: dt.datetime, zone_name: str | None) -> tuple[bool, float]:
    """For ordering inside a fixture: (is an instant, seconds). Without the fixture's own zone
    (it defers to the playbook's, unknown here), a naive wall time is comparable only with
    other naive wall times; with it, every time is an instant."""
    if moment.tzinfo is None:
        if zone_name is None:
            return False, moment.replace(tzinfo=dt.UTC).timestamp()
        moment = moment.replace(tzinfo=ZoneInfo(zone_name))
    return True, moment.timestamp()


def earlier(key: tuple[bool, float], other: tuple[bool, float]) -> bool:
    """Whether `key` is certainly earlier than `other` (never, for incomparable times)."""
    return key[0] == other[0] and key[1] < other[1]
