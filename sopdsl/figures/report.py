"""The report of a dry run as data: per-group daily figures, a funnel per playbook, the group
calendar (群日历) for the period, and the day-one burst if there is one.

`sopdsl report --format json` prints this; the HTML report (`html.py`) shows exactly these values,
which the browser test checks.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Iterable
from typing import Any

from sopdsl import lang
from sopdsl.engine.agenda_policy import held_to_policy
from sopdsl.engine.records import GroupRecord
from sopdsl.figures.experiments import experiments, pilots
from sopdsl.figures.model import FAMILIES, NO_GROUP, Figures
from sopdsl.plan import Plan, timeutil
from sopdsl.plan.agenda import agenda

# The first day is a burst when it has at least this many actions and this many times the median
# of the other days: a playbook going live acts at once on everyone who already qualifies (every
# member silent for four weeks is warned on the first morning), which ops should see coming.
BURST_MIN_ACTIONS = 10
BURST_FACTOR = 3.0

NO_GROUP_NAME = "不在群里（私聊等）"  # the name the report gives `NO_GROUP`


def build_report(plan: Plan, figures: Figures, groups: Iterable[GroupRecord], title: str) -> dict[str, Any]:
    """The report's data for a run's figures (`groups`: the run's registered groups, whose
    calendar is shown)."""
    groups = list(groups)
    declared = plan.declarations.groups
    tags = {g.id: tuple(g.tags) or (declared[g.id].tags if g.id in declared else ()) for g in groups}
    return {
        "title": title,
        "zone": figures.zone,
        "plan": plan.content_hash[:12],
        "days": figures.days,
        "groups": [_group(figures, group) for group in figures.groups],
        "playbooks": _playbooks(plan, figures),
        "calendar": _calendar(plan, figures, groups),
        "burst": day_one_burst(figures),
        "experiments": experiments(figures),
        "pilots": pilots(plan, figures, tags),
    }


def _group(figures: Figures, group: str) -> dict[str, Any]:
    days = figures.groups[group]
    rows: list[dict[str, Any]] = [
        {"day": day, **{family: days[day].family(family) for family in FAMILIES}} for day in figures.days
    ]
    totals = {
        family: {
            figure: sum(row[family][figure] for row in rows)
            for figure in FAMILIES[family]
            if figure not in ("reached", "posters", "buyers")  # distinct per day: a sum over days misleads
        }
        for family in FAMILIES
    }
    # Events and sends of no group (private chats) are counted under `NO_GROUP`, whose id alone
    # ("-") says nothing to a reader.
    name = NO_GROUP_NAME if group == NO_GROUP else figures.names.get(group, group)
    return {"id": group, "name": name, "days": rows, "totals": totals}


def _playbooks(plan: Plan, figures: Figures) -> list[dict[str, Any]]:
    titles = {c.name: c.title for c in plan.playbooks}
    shown = []
    for name, f in figures.playbooks.items():
        done = sum(statuses.get("done", 0) for statuses in f.actions.values())
        total = sum(sum(statuses.values()) for statuses in f.actions.values())
        shown.append(
            {
                "name": name,
                "title": titles.get(name) or name,
                "flows": {
                    "started": f.started,
                    "completed": f.completed,
                    "exited": f.exited,
                    "running": f.running,
                },
                "funnel": [
                    {"stage": "started", "label": "开始", "count": f.started},
                    {"stage": "completed", "label": "走完", "count": f.completed},
                    # Each goal: the members it converted (see `goals.py` for how they count).
                    *(
                        {"stage": f"goal:{goal}", "label": goal, "count": counts["converted"]}
                        for goal, counts in f.goals.items()
                    ),
                ],
                "actions": f.actions,
                "goals": f.goals,
                "actions_done": done,
                "actions_total": total,
            }
        )
    return shown


def _calendar(plan: Plan, figures: Figures, groups: Iterable[GroupRecord]) -> list[dict[str, Any]]:
    if not figures.days:
        return []
    start = dt.date.fromisoformat(figures.days[0])
    end = dt.date.fromisoformat(figures.days[-1]) + dt.timedelta(days=1)
    declared = plan.declarations.groups
    chosen = [
        lang.Group(
            name=g.id,
            tags=tuple(g.tags) or (declared[g.id].tags if g.id in declared else ()),
            timezone=g.timezone,
        )
        for g in groups
    ]
    tz = timeutil.zone(figures.zone)

    def at(epoch: int) -> str:
        return dt.datetime.fromtimestamp(epoch, tz).strftime("%Y-%m-%d %H:%M")

    # Held to the engine's delivery policy as `sopdsl plan` holds it: the time a send really goes
    # out (quiet hours, caps that defer), and those a cap drops, not the calendar's own times.
    slots = held_to_policy(plan, agenda(plan, start, end, chosen))
    return [
        {
            "at": at(slot.sends_at),
            "group": slot.group,
            "playbook": slot.playbook,
            "what": slot.what,
            "words": slot.words,
            "planned": at(slot.time) if slot.moved_why else None,
            "moved_by": slot.moved_why,
            "dropped": slot.dropped,
        }
        for slot in sorted(slots, key=lambda s: (s.sends_at, s))
    ]


def day_one_burst(figures: Figures) -> dict[str, Any] | None:
    """The first day's actions when they far exceed a usual day's (see `BURST_FACTOR`), by
    playbook, or None."""
    if len(figures.days) < 2:
        return None
    totals = [sum(figures.daily_actions.get(day, {}).values()) for day in figures.days]
    first, usual = totals[0], statistics.median(totals[1:])
    if first < BURST_MIN_ACTIONS or first < BURST_FACTOR * usual:
        return None
    by_playbook = figures.daily_actions.get(figures.days[0], {})
    return {
        "day": figures.days[0],
        "actions": first,
        "usual": usual,
        "by_playbook": dict(sorted(by_playbook.items(), key=lambda item: -item[1])),
    }
