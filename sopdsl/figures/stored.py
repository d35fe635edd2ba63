"""Live figures, as the store keeps them (per group and 15-minute slot), folded into local days:
the `Figures` a report shows, for the days asked.

The store counts what the engine took in and what executors carried out (see
`sopdsl.live.store_figures`); this module only adds slots up into the days of a zone and counts
the distinct members of each day. Per-playbook figures are not kept live: a live report shows
the per-group families, the group calendar and the day-one burst of nothing.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sopdsl.engine.records import GroupRecord
from sopdsl.figures.model import Figures, GroupDay
from sopdsl.figures.report import build_report
from sopdsl.plan import Plan, timeutil

_DISTINCT = ("posters", "buyers", "reached")


def day_bounds(first: dt.date, last: dt.date, zone: str) -> tuple[int, int]:
    """Engine times from the start of `first` to the end of `last`, local days in `zone`."""
    tz = timeutil.zone(zone)
    lo = timeutil.resolve(dt.datetime.combine(first, dt.time()), tz)
    hi = timeutil.resolve(dt.datetime.combine(last + dt.timedelta(days=1), dt.time()), tz)
    return lo, hi


def fold(
    found: tuple[list[tuple[str, int, str, float]], list[tuple[str, int, str, str]]],
    zone: str,
    first: dt.date,
    last: dt.date,
    names: dict[str, str],
    slot: int,
) -> Figures:
    """The store's rows of the days `first` to `last` as figures per group per local day (`slot`:
    the seconds of the store's time slots)."""
    tz = timeutil.zone(zone)
    days = [(first + dt.timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
    labels: dict[int, str] = {}

    def day_of(number: int) -> str:
        if number not in labels:
            labels[number] = dt.datetime.fromtimestamp(number * slot, tz).date().isoformat()
        return labels[number]

    cells: dict[tuple[str, str], dict[str, Any]] = defaultdict(lambda: defaultdict(float))
    sums, seen = found
    for group, at, figure, value in sums:
        cells[(group, day_of(at))][figure] += value
    members: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for group, at, figure, member in seen:
        members[(group, day_of(at), figure)].add(member)
    for (group, day, figure), who in members.items():
        cells[(group, day)][figure] = len(who)
    used = {group for group, _ in cells}
    groups: dict[str, dict[str, GroupDay]] = {}
    for group in [*names, *sorted(used - names.keys())]:
        groups[group] = {day: _cell(cells.get((group, day), {})) for day in days}
    return Figures(zone, days, names, groups, {})


def _cell(counts: dict[str, Any]) -> GroupDay:
    values = {name: (int(v) if name != "amount" else v) for name, v in counts.items()}
    return GroupDay(**values)


def live_report(
    plan: Plan,
    found: tuple[list[tuple[str, int, str, float]], list[tuple[str, int, str, str]]],
    first: dt.date,
    last: dt.date,
    groups: list[GroupRecord],
    title: str,
    slot: int,
) -> dict[str, Any]:
    """The report's data (as `sopdsl report` gives it) of the live figures of days `first` to `last`."""
    names = {g.id: g.name or g.id for g in groups}
    figures = fold(found, plan.declarations.timezone, first, last, names, slot)
    return build_report(plan, figures, groups, title)
