"""Literal values of the syntax tree to checked values: durations, times, dates, zones, cron."""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from typing import TYPE_CHECKING

from sopdsl.checker import model
from sopdsl.diagnostics import did_you_mean
from sopdsl.lang import durations
from sopdsl.vocabulary import WEEKDAYS

if TYPE_CHECKING:
    from sopdsl.checker.context import Context
    from sopdsl.syntax import nodes

# Names operators write for China's zone that are not IANA names (or not the canonical one).
_ZONE_ALIASES = dict.fromkeys(
    (
        "beijing",
        "asia/beijing",
        "china",
        "asia/china",
        "cst",
        "prc",
        "北京",
        "北京时间",
        "中国",
        "上海",
        "东八区",
    ),
    "Asia/Shanghai",
)
_WEEKDAYS_HINT = "use monday … sunday, day, weekday or weekend (or 周一 … 周日, 每天, 工作日, 周末)"

# Larger numbers are surely typos; they would also overflow dates and the plan's JSON downstream.
MAX_NUMBER = 10**12


def number(ctx: Context, node: nodes.Number, code: str = "SOP406") -> float | None:
    """A number of sensible size, or None after reporting one too large to mean anything."""
    if not math.isfinite(node.value) or abs(node.value) > MAX_NUMBER:
        shown = node.text if len(node.text) <= 20 else node.text[:17] + "..."
        ctx.error(code, f"{shown} is too large a number", node.span, f"numbers go up to {MAX_NUMBER:,}")
        return None
    return node.value


def whole(ctx: Context, node: nodes.Number, what: str, minimum: int = 0, code: str = "SOP406") -> int | None:
    """A whole number of at least `minimum`, or None after reporting why it is not one."""
    value = number(ctx, node, code)
    if value is None:
        return None
    if value != int(value) or value < minimum:
        least = f" of at least {minimum}" if minimum else ""
        ctx.error(code, f"{what} must be a whole number{least}, not {node.text}", node.span)
        return None
    return int(value)


def duration(ctx: Context, node: nodes.Duration) -> model.Duration | None:
    """A checked duration, or None after reporting why it is not one. Its unit words and rules
    are `sopdsl.lang.durations`', which reads a fixture's durations too."""
    amount = node.amount.value
    try:
        unit = durations.unit_of(node.unit.text, amount)
    except durations.DurationError as exc:
        ctx.error("SOP112", exc.message, node.unit.span, exc.hint)
        return None
    if number(ctx, node.amount, "SOP305") is None:
        return None
    try:
        return durations.duration_of(amount, unit, node.amount.text, node.unit.text)
    except durations.DurationError as exc:
        ctx.error("SOP305", exc.message, node.amount.span, exc.hint)  # the amount's, or its length's
        return None


def time(ctx: Context, node: nodes.Time) -> dt.time | None:
    """A checked local time of day."""
    hour, _, minute = node.text.partition(":")
    if int(hour) > 23 or int(minute) > 59:
        ctx.error("SOP301", f"'{node.text}' is not a time of day", node.span, "times run from 00:00 to 23:59")
        return None
    return dt.time(int(hour), int(minute))


def date(ctx: Context, node: nodes.Date) -> dt.date | None:
    """A checked calendar date."""
    try:
        return dt.date.fromisoformat(node.text)
    except ValueError:
        ctx.error("SOP302", f"'{node.text}' is not a date on the calendar", node.span, "dates are YYYY-MM-DD")
        return None


def datetime(ctx: Context, node: nodes.DateTime) -> dt.datetime | None:
    """A checked local (naive) date and time."""
    day = date(ctx, node.date)
    hour = time(ctx, node.time)
    if day is None or hour is None:
        return None
    return dt.datetime.combine(day, hour)


def zone(ctx: Context, node: nodes.Str) -> str | None:
    """A checked IANA time zone name."""
    name = node.value
    if name.startswith(("Etc/GMT", "UTC+", "UTC-", "GMT+", "GMT-", "+", "-")):
        ctx.error(
            "SOP303",
            f"'{name}' is a fixed offset, not a time zone",
            node.span,
            'use an IANA zone such as "Asia/Shanghai", which also knows daylight saving',
        )
        return None
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # OSError: `Asia`, a folder
        alias = _ZONE_ALIASES.get(name.lower())
        hint = (
            f"did you mean '{alias}'?"
            if alias
            else did_you_mean(name, sorted(zoneinfo.available_timezones()))
        )
        ctx.error("SOP303", f"unknown time zone '{name}'", node.span, hint or 'for China use "Asia/Shanghai"')
        return None
    return name


def weekdays(ctx: Context, names: tuple[nodes.Name, ...]) -> tuple[int, ...] | None:
    """Weekday numbers (0 = Monday) for weekday words, or None after reporting a bad one."""
    days: set[int] = set()
    ok = True
    for name in names:
        found = WEEKDAYS.get(name.text.lower())
        if found is None:
            ctx.error(
                "SOP112",
                f"unknown weekday '{name.text}'",
                name.span,
                did_you_mean(name.text.lower(), [w for w in WEEKDAYS if w.isascii()]) or _WEEKDAYS_HINT,
            )
            ok = False
        else:
            days.update(found)
    return tuple(sorted(days)) if ok else None


def times(ctx: Context, nodes_: tuple[nodes.Time, ...]) -> tuple[dt.time, ...] | None:
    """Checked times of day, sorted, or None if any is invalid."""
    checked = [time(ctx, t) for t in nodes_]
    if any(t is None for t in checked):
        return None
    return tuple(sorted({t for t in checked if t is not None}))


def cron(ctx: Context, node: nodes.Str) -> str | None:
    """A checked five-field cron expression."""
    from croniter import croniter  # here: croniter costs 10 ms at start-up, and few files use cron

    expression = node.value.strip()
    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        ctx.error(
            "SOP304",
            f"'{node.value}' is not a valid cron string",
            node.span,
            'five fields: minute hour day month weekday, e.g. "0 20 * * 1" for Mondays at 20:00',
        )
        return None
    try:
        # 2000 is a leap year: a day only a leap February has still fires.
        croniter(expression, dt.datetime(2000, 1, 1)).get_next(dt.datetime)
    except Exception:  # croniter's CroniterBadDateError: no date in the years it searches
        ctx.error(
            "SOP304",
            f"'{node.value}' never fires: no month it names has that day",
            node.span,
            "check the day and month fields (February has no 30th or 31st; April, June, "
            "September and November have no 31st)",
        )
        return None
    return expression
