"""Time semantics: local wall times in IANA zones to instants, duration arithmetic, calendars.

Instants are integer seconds since the Unix epoch (UTC). Rules, as documented in
docs/time.md: `N days` keeps the wall time and `N hours` is exact; a wall time inside a
spring-forward gap moves to the first instant after the gap; a wall time that happens twice
(fall back) means its first occurrence.
"""

from __future__ import annotations

import calendar as _calendar
import datetime as dt
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final
from zoneinfo import ZoneInfo

from sopdsl import lang

UTC: Final = dt.UTC
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL: Final = dt.date(1970, 1, 1).toordinal()


@functools.cache
def zone(name: str) -> ZoneInfo:
    """The ZoneInfo for an IANA name, cached."""
    return ZoneInfo(name)


def to_epoch(moment: dt.datetime) -> int:
    """An aware datetime as epoch seconds."""
    return int((moment - _EPOCH).total_seconds())


def local(epoch: int, tz: ZoneInfo) -> dt.datetime:
    """The naive local wall time of an instant in a zone."""
    return dt.datetime.fromtimestamp(epoch, tz).replace(tzinfo=None)


def wall_seconds(epoch: int, tz: ZoneInfo) -> int:
    """The local wall time of an instant as seconds since 1970-01-01 00:00 (its day: `// 86400`).

    The same wall time `local` gives, through the hourly offset cache: a datetime made in the
    zone costs about ten times more, and policies and conditions ask for it at every action."""
    return epoch + utc_offset(epoch, tz)


def local_date(epoch: int, tz: ZoneInfo) -> dt.date:
    """The local date of an instant in a zone (`local(epoch, tz).date()`)."""
    return dt.date.fromordinal(_EPOCH_ORDINAL + wall_seconds(epoch, tz) // 86400)


def local_time(epoch: int, tz: ZoneInfo) -> dt.time:
    """The local time of day of an instant in a zone (`local(epoch, tz).time()`)."""
    second = wall_seconds(epoch, tz) % 86400
    return dt.time(second // 3600, second // 60 % 60, second % 60)


def aware(epoch: int, tz: ZoneInfo) -> dt.datetime:
    """The aware local datetime of an instant."""
    return dt.datetime.fromtimestamp(epoch, tz)


@functools.lru_cache(maxsize=65536)
def resolve(naive: dt.datetime, tz: ZoneInfo) -> int:
    """The instant of a local wall time: gaps move forward to their end, repeats take the first."""
    first = to_epoch(naive.replace(tzinfo=tz, fold=0))
    second = to_epoch(naive.replace(tzinfo=tz, fold=1))
    if first == second:
        return first
    if local(first, tz) == naive or local(second, tz) == naive:
        return min(first, second)  # ambiguous: the first occurrence
    # In a gap: the first valid instant after it is the transition itself.
    low, high = min(first, second), max(first, second)
    after = dt.datetime.fromtimestamp(high, tz).utcoffset()
    while high - low > 1:
        middle = (low + high) // 2
        if dt.datetime.fromtimestamp(middle, tz).utcoffset() == after:
            high = middle
        else:
            low = middle
    return high


def add_months(day: dt.date, months: int) -> dt.date:
    """A date moved by whole months, clamped to the end of shorter months."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = _calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(day.day, last))


def date_wall(trigger: lang.OnDateOffset | lang.OnAnniversary, day: dt.date) -> dt.datetime:
    """The local wall time a date trigger fires at for a member whose date (this year's, for an
    anniversary) is `day`: the engine arms it there, and `sopdsl check` judges it (SOP705)."""
    wall = dt.datetime.combine(day, trigger.at)
    if isinstance(trigger, lang.OnAnniversary):
        return wall
    amount = trigger.offset.amount
    return shift_local(wall, -amount if trigger.before else amount, trigger.offset.unit)


def shift_local(naive: dt.datetime, amount: int, unit: lang.Unit) -> dt.datetime:
    """A naive wall time moved by a calendar amount (days and longer keep the wall time)."""
    if unit is lang.Unit.DAY:
        return naive + dt.timedelta(days=amount)
    if unit is lang.Unit.WEEK:
        return naive + dt.timedelta(weeks=amount)
    if unit is lang.Unit.MONTH:
        return dt.datetime.combine(add_months(naive.date(), amount), naive.time())
    if unit is lang.Unit.YEAR:
        return dt.datetime.combine(add_months(naive.date(), 12 * amount), naive.time())
    seconds = amount * (60 if unit is lang.Unit.MINUTE else 3600)
    return naive + dt.timedelta(seconds=seconds)


_PER: Final = {
    lang.Unit.MINUTE: 60,
    lang.Unit.HOUR: 3600,
    lang.Unit.DAY: 86400,
    lang.Unit.WEEK: 604800,
    lang.Unit.MONTH: 2629746,
    lang.Unit.YEAR: 31556952,
}


def seconds(duration: lang.Duration) -> int:
    """The exact length of a minutes/hours duration (days counted as 24 h for estimates only)."""
    return duration.amount * _PER[duration.unit]


# UTC offsets by zone and hour: no zone changes its offset twice within an hour, and
# an hour is cached only when the offset is the same at its start and at the next hour's start
# (so a transition inside is computed exactly, never cached; one at the next hour's start only
# leaves the hour uncached). The offsets at hours' starts are kept apart, so that neighbouring
# hours share one.
_OFFSETS: Final[dict[ZoneInfo, dict[int, int]]] = {}
_STARTS: Final[dict[ZoneInfo, dict[int, int]]] = {}
_BUCKET: Final = 3600


def utc_offset(epoch: int, tz: ZoneInfo) -> int:
    """The zone's UTC offset (seconds) at an instant, cached by hour."""
    table = _OFFSETS.get(tz)
    if table is None:
        table = _OFFSETS[tz] = {}
    bucket = epoch // _BUCKET
    found = table.get(bucket)
    if found is not None:
        return found
    first = _hour_start(bucket, tz)
    if first == _hour_start(bucket + 1, tz):
        if len(table) > 200_000:
            table.clear()
        table[bucket] = first
        return first
    return _offset(epoch, tz)


def _hour_start(bucket: int, tz: ZoneInfo) -> int:
    """The zone's UTC offset at the start of an hour (`bucket`: hours since the epoch)."""
    starts = _STARTS.get(tz)
    if starts is None:
        starts = _STARTS[tz] = {}
    found = starts.get(bucket)
    if found is None:
        if len(starts) > 200_000:
            starts.clear()
        found = starts[bucket] = _offset(bucket * _BUCKET, tz)
    return found


def _offset(epoch: int, tz: ZoneInfo) -> int:
    delta = dt.datetime.fromtimestamp(epoch, tz).utcoffset()
    return int(delta.total_seconds()) if delta is not None else 0


_MINUTE: Final = lang.Unit.MINUTE
_HOUR: Final = lang.Unit.HOUR
_DAY: Final = lang.Unit.DAY
_WEEK: Final = lang.Unit.WEEK
# By zone and UTC day: the offset if it holds from the day before to the day after, else None.
_STABLE: Final[dict[ZoneInfo, dict[int, int | None]]] = {}
_UNKNOWN: Final = -1 << 40  # no offset: a day `_stable` has not looked at yet


def _stable(day: int, tz: ZoneInfo) -> int | None:
    table = _STABLE.get(tz)
    if table is None:
        table = _STABLE[tz] = {}
    if day in table:
        return table[day]
    # The offsets every six hours from the first day's start to the third day's end (a change at
    # that end leaves the days unstable, which is only slower): no zone changes its offset and
    # changes it back within six hours. In the zone database changes are days apart at the
    # closest (tests/plan/test_timeutil.py holds it to that); a new day costs four zone lookups.
    first = (day - 1) * 24
    offset: int | None = _hour_start(first, tz)
    for hour in range(6, 73, 6):
        if _hour_start(first + hour, tz) != offset:
            offset = None
            break
    if len(table) > 100_000:
        table.clear()
    table[day] = offset
    return offset


def stable_offset(epoch: int, tz: ZoneInfo) -> int | None:
    """The zone's UTC offset at an instant if it holds from a day before to a day after (so over
    the whole local day around it), else None."""
    table = _STABLE.get(tz)
    if table is not None:
        offset = table.get(epoch // 86400, _UNKNOWN)
        if offset != _UNKNOWN:
            return offset
    return _stable(epoch // 86400, tz)


@dataclass(frozen=True, slots=True)
class Span:
    """A duration's amount and unit as plain values, for `add`: the engine keeps the durations it
    adds per timer armed as these (reading a pydantic model's field goes through its `__getattr__`
    hook, a few times dearer than a slot)."""

    amount: int
    unit: lang.Unit


def span(duration: lang.Duration) -> Span:
    """A duration as a `Span`."""
    return Span(duration.amount, duration.unit)


def add(epoch: int, duration: lang.Duration | Span, tz: ZoneInfo, sign: int = 1) -> int:
    """An instant moved by a duration: exact for minutes and hours, wall-time for days and longer."""
    unit = duration.unit
    # Units compared by identity: an Enum's hash is Python code, and this runs per timer armed.
    if unit is _MINUTE or unit is _HOUR:
        return epoch + sign * duration.amount * (60 if unit is _MINUTE else 3600)
    span = 86400 if unit is _DAY else 7 * 86400 if unit is _WEEK else None
    if span is not None:
        # Days and weeks keep the wall time. When the offset is the same from a day before the
        # start to a day after the target, the target's wall time exists once and is simply the
        # same number of seconds later. (Both days are looked up in `_stable`'s table first.)
        guess = epoch + sign * duration.amount * span
        table = _STABLE.get(tz)
        if table is not None:
            offset = table.get(epoch // 86400, _UNKNOWN)
            if offset is not None and offset == table.get(guess // 86400, _UNKNOWN) != _UNKNOWN:
                return guess
        offset = _stable(epoch // 86400, tz)
        if offset is not None and _stable(guess // 86400, tz) == offset:
            return guess
    return resolve(shift_local(local(epoch, tz), sign * duration.amount, duration.unit), tz)


# ---- the action log's times -------------------------------------------------------------------


class _Recent:
    """What `iso` wrote last, and the local day it last worked out, in native fields (compiled:
    an instant compared unboxed, where a list's item would box it for every action logged). Each
    is one tuple, replaced whole: a thread never reads one part of a pair with another's."""

    def __init__(self) -> None:
        # Actions come in bursts at one instant (a join's welcome): the last one's text.
        self.last: tuple[int, ZoneInfo | None, str] = (-1, None, "")
        # The local day of the last text written on the arithmetic path: its zone, its first and
        # last instant (end excluded), and the parts around the time of day.
        self.day: tuple[ZoneInfo | None, int, int, str, str] = (None, 0, 0, "", "")


_RECENT: Final = _Recent()
# By zone and local day: the day's text before the time ("2026-03-01T") and the offset after it
# ("+08:00"), for days in a stretch of one UTC offset (see `stable_offset`).
_DAYS: Final[dict[tuple[ZoneInfo, int], tuple[str, str]]] = {}
# "HH:MM:" by minute of the day and "SS" by second: joined, not formatted, per action logged.
_CLOCK: Final = [f"{minute // 60:02d}:{minute % 60:02d}:" for minute in range(1440)]
_SECONDS: Final = [f"{second:02d}" for second in range(60)]


def iso(epoch: int, tz: ZoneInfo) -> str:
    """An instant as ISO 8601 local time with its offset."""
    recent = _RECENT
    last = recent.last
    if epoch == last[0] and tz is last[1]:
        return last[2]
    zone, start, end, before, after = recent.day
    if zone is tz and start <= epoch < end:
        # The local day of the last text (one offset all day): only the time of day to write.
        since = epoch - start
        text = f"{before}{_CLOCK[since // 60]}{_SECONDS[since % 60]}{after}"
    else:
        text = _iso_anew(epoch, tz, recent)
    recent.last = (epoch, tz, text)
    return text


def _iso_anew(epoch: int, tz: ZoneInfo, recent: _Recent) -> str:
    """`iso` outside the local day of the text before; that day becomes this one's where one
    offset holds all day."""
    offset = stable_offset(epoch, tz)
    if offset is None or offset % 60:
        return dt.datetime.fromtimestamp(epoch, tz).isoformat()
    # One offset all day: the day's text once, then the time of day in plain arithmetic.
    day, second = divmod(epoch + offset, 86400)
    parts = _DAYS.get((tz, day))
    if parts is None:
        whole = dt.datetime.fromtimestamp(day * 86400 - offset, tz).isoformat()
        if len(_DAYS) > 10_000:
            _DAYS.clear()
        parts = _DAYS[(tz, day)] = (whole[:11], whole[19:])
    # The offset holds from a UTC day before to a day after `epoch` (`stable_offset`), so over
    # the whole local day around it.
    start = day * 86400 - offset
    recent.day = (tz, start, start + 86400, parts[0], parts[1])
    return f"{parts[0]}{_CLOCK[second // 60]}{_SECONDS[second % 60]}{parts[1]}"


# ---- calendars --------------------------------------------------------------------------------


def occurrences(rule: lang.CalendarRule, start: dt.datetime) -> Iterator[dt.datetime]:
    """Naive local wall times of a calendar rule at or after `start`, ascending."""
    if isinstance(rule, lang.Weekly):
        day = max(start.date(), rule.start) if rule.start else start.date()
        while rule.until is None or day <= rule.until:
            if day.weekday() in rule.weekdays:
                for moment in rule.times:
                    wall = dt.datetime.combine(day, moment)
                    if wall >= start:
                        yield wall
            day += dt.timedelta(days=1)
    elif isinstance(rule, lang.Dates):
        for day in rule.dates:
            for moment in rule.times:
                wall = dt.datetime.combine(day, moment)
                if wall >= start:
                    yield wall
    elif isinstance(rule, lang.Interval):
        yield from _interval(rule, start)
    else:
        yield from _cron(rule, start)


def _interval(rule: lang.Interval, start: dt.datetime) -> Iterator[dt.datetime]:
    wall = rule.first
    step = rule.every
    if step.exact and wall < start:
        span = seconds(step)
        skip = int((start - wall).total_seconds()) // span
        wall += dt.timedelta(seconds=skip * span)
    count = 0
    while True:
        if rule.until is not None and wall.date() > rule.until:
            return
        if wall >= start and (rule.start is None or wall.date() >= rule.start):
            yield wall
        count += 1
        wall = (
            shift_local(rule.first, count * step.amount, step.unit)
            if not step.exact
            else wall + dt.timedelta(seconds=seconds(step))
        )


def _cron(rule: lang.Cron, start: dt.datetime) -> Iterator[dt.datetime]:
    from croniter import croniter  # here: croniter costs 10 ms at start-up, and few files use cron

    begin = start - dt.timedelta(minutes=1)
    if rule.start is not None:
        begin = max(begin, dt.datetime.combine(rule.start, dt.time()) - dt.timedelta(minutes=1))
    series = croniter(rule.expression, begin)
    while True:
        try:
            wall = series.get_next(dt.datetime)
        except Exception:  # CroniterBadDateError: it never fires (the checker refuses such a plan)
            return
        if rule.until is not None and wall.date() > rule.until:
            return
        if wall >= start:
            yield wall


def next_fire(
    rule: lang.CalendarRule,
    offsets: tuple[tuple[bool, lang.Duration], ...],
    at: dt.time | None,
    tz: ZoneInfo,
    after: int,
) -> int | None:
    """The first instant strictly after `after` of a calendar shifted by offsets, in a zone."""
    back = sum(seconds(d) for negative, d in offsets if not negative)
    start = local(after, tz) - dt.timedelta(seconds=back + 2 * 86400)
    # Only calendar offsets (days and longer) and `at` work on the wall time; without them an
    # occurrence keeps its instant, so an exact series survives a repeated hour intact.
    on_wall = at is not None or any(not duration.exact for _, duration in offsets)
    if not on_wall and isinstance(rule, lang.Interval) and rule.every.exact:
        # Its firings are instants: begin one step before the first that can come after `after`,
        # not two days before (2,880 firings walked each time for `every 1 minutes`).
        shift = sum((-1 if negative else 1) * seconds(d) for negative, d in offsets)
        # (An hour more: a wall time in a repeated hour resolves to its first instant.)
        start = min(
            start + dt.timedelta(seconds=2 * 86400), local(after - shift - seconds(rule.every) - 3600, tz)
        )
    limit = 0
    for wall, instant in _series(rule, start, tz):
        shifted = wall
        exact = 0
        for negative, duration in offsets:
            sign = -1 if negative else 1
            if duration.exact:
                exact += sign * seconds(duration)
            else:
                shifted = shift_local(shifted, sign * duration.amount, duration.unit)
        if at is not None:
            shifted = dt.datetime.combine(shifted.date(), at)
        fire = (resolve(shifted, tz) if on_wall else instant) + exact
        if fire > after:
            return fire
        limit += 1
        if limit > 100_000:
            return None
    return None


def _series(rule: lang.CalendarRule, start: dt.datetime, tz: ZoneInfo) -> Iterator[tuple[dt.datetime, int]]:
    """A calendar's occurrences at or after the wall time `start`, as (wall time, instant) pairs.

    `every N minutes|hours` is exact: it steps in real time from its first instant, so it keeps
    its rhythm through a DST change (the repeated hour of a fall-back night has its firings too).
    Every other rule is a series of wall times, each resolved in the zone. The days of a rule's
    `except` are left out, so an offset entry (`at class - 1 day`) goes with its occurrence.
    """
    skip = () if isinstance(rule, lang.Dates) else rule.skip
    series = _all_series(rule, start, tz)
    if not skip:
        yield from series
        return
    for wall, instant in series:
        if not lang.on_any(skip, wall.date()):
            yield wall, instant


def _all_series(
    rule: lang.CalendarRule, start: dt.datetime, tz: ZoneInfo
) -> Iterator[tuple[dt.datetime, int]]:
    if isinstance(rule, lang.Interval) and rule.every.exact:
        span = seconds(rule.every)
        first = resolve(rule.first, tz)
        begin = resolve(start, tz)
        count = max(0, -(-(begin - first) // span))
        while True:
            instant = first + count * span
            wall = local(instant, tz)
            if rule.until is not None and wall.date() > rule.until:
                return
            if rule.start is None or wall.date() >= rule.start:
                yield wall, instant
            count += 1
    else:
        for wall in occurrences(rule, start):
            yield wall, resolve(wall, tz)
