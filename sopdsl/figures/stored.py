"""Live figures, as the store keeps them (per group and 15-minute slot), folded into local days:
the `Figures` a report shows, for the days asked.

The store counts what the engine took in and what executors carried out (see
`sopdsl.live.store_figures`); this module only adds slots up into the days of a zone and counts
the distinct members of each day. Per playbook, flows and actions are added up the same way, and
goal conversions and experiment arms are worked out from the stored facts (arms, touches, events
that met goals) by the dry run's own `Goals`, fed in time order: a conversion counts on the day of
its event, an arm's members are those the split assigned in the days asked.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from typing import Any

from sopdsl import lang
from sopdsl.engine.records import GroupRecord
from sopdsl.engine.tally import cents
from sopdsl.figures.collect import playbook_figures
from sopdsl.figures.goals import Goals, experiment_counts
from sopdsl.figures.model import Figures, GroupDay
from sopdsl.figures.report import build_report
from sopdsl.live.store_figures import Found, met_of
from sopdsl.plan import Plan, timeutil

_DISTINCT = ("posters", "buyers", "reached")


def day_bounds(first: dt.date, last: dt.date, zone: str) -> tuple[int, int]:
    """Engine times from the start of `first` to the end of `last`, local days in `zone`."""
    tz = timeutil.zone(zone)
    lo = timeutil.resolve(dt.datetime.combine(first, dt.time()), tz)
    hi = timeutil.resolve(dt.datetime.combine(last + dt.timedelta(days=1), dt.time()), tz)
    return lo, hi


def fold(
    found: Found,
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
    sums, seen = found[0], found[1]
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


def fold_playbooks(
    plan: Plan,
    found: Found,
    figures: Figures,
    lo: int,
    running: dict[str, int],
    rule: lang.Attribution,
    slot: int,
) -> Figures:
    """`figures` with the per-playbook figures of the store's rows (`lo`: the range's first
    instant; `running`: flows still running that began in the range, by playbook)."""
    tz = timeutil.zone(figures.zone)
    started: Counter[str] = Counter()
    completed: Counter[str] = Counter()
    actions: Counter[tuple[str, str, str]] = Counter()
    daily: dict[str, dict[str, int]] = {day: {} for day in figures.days}
    for playbook, at, figure, value in found.playbooks:
        count = int(value)
        if figure == "flows:started":
            started[playbook] += count
        elif figure == "flows:completed":
            completed[playbook] += count
        else:
            _, kind, status = figure.split(":", 2)
            actions[(playbook, kind, status)] += count
            day = dt.datetime.fromtimestamp(at * slot, tz).date().isoformat()
            daily.setdefault(day, {}).setdefault(playbook, 0)
            daily[day][playbook] += count
    goals = Goals(None, rule, tz, plan)
    goals.since = lo
    # The facts in time order, as the dry run meets them: an instant's assignments and touches
    # before its events (which they cannot convert: a conversion comes strictly after).
    facts: list[tuple[int, int, tuple[Any, ...]]] = [(t, 0, (p, m, a)) for p, m, a, t in found.arms]
    facts += [(t, 1, (p, m, a)) for p, m, t, a in found.touches]
    facts += [(hit[1], 2, hit) for hit in found.goals]
    facts.sort(key=lambda fact: fact[:2])
    for time, order, fact in facts:
        if order == 0:
            goals.assigned(fact[0], fact[1], fact[2], time)
        elif order == 1:
            goals.touched(fact[0], fact[1], time, fact[2] or None)
        else:
            member, _, met, events, amount = fact
            chosen = [g for p, name in met_of(met) if (g := goals.goal(p, name)) is not None]
            if chosen:
                goals.convert(chosen, member, time, amount, events)
    names = [c.name for c in plan.playbooks]
    flows = playbook_figures(names, started, completed, running, actions, goals.figures)
    return Figures(
        figures.zone,
        figures.days,
        figures.names,
        figures.groups,
        flows,
        daily,
        experiment_counts(goals),
    )


def _cell(counts: dict[str, Any]) -> GroupDay:
    values = {name: (int(v) if name != "amount" else cents(v)) for name, v in counts.items()}
    return GroupDay(**values)


def live_report(
    plan: Plan,
    found: Found,
    first: dt.date,
    last: dt.date,
    groups: list[GroupRecord],
    title: str,
    slot: int,
    running: dict[str, int] | None = None,
    rule: lang.Attribution = lang.Attribution.LAST_TOUCH,
) -> dict[str, Any]:
    """The report's data (as `sopdsl report` gives it) of the live figures of days `first` to `last`
    (`running`: flows running now that began in those days, by playbook; `rule`: attribution)."""
    names = {g.id: g.name or g.id for g in groups}
    figures = fold(found, plan.declarations.timezone, first, last, names, slot)
    lo, _ = day_bounds(first, last, plan.declarations.timezone)
    figures = fold_playbooks(plan, found, figures, lo, running or {}, rule, slot)
    return build_report(plan, figures, groups, title)
