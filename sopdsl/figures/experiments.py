"""The report's comparisons: each experiment's arms against its control (rates with their 95%
intervals, the difference and a significance test), and each pilot's groups against the rest
over the same days.

An experiment without a control arm compares its arms with its first arm. A pilot is a playbook
that names its groups (`in groups a, b`); the rest are the run's other groups that share a tag
with a pilot group (all the others if none does), over the days the playbook is active in the run.
"""

from __future__ import annotations

import sys
from typing import Any

from sopdsl.figures.model import FAMILIES, Figures, number
from sopdsl.figures.stats import compare, wilson
from sopdsl.plan import Plan

_ROUND = 4  # digits of rates, intervals and differences in the report
# A p-value keeps significant digits, not decimals: 3e-28 rounded to 4 decimals is 0.0, which a
# JSON reader takes for "impossible". One below the smallest normal float (erfc underflows for
# a z past about 38) is given as that float, an upper bound, never as 0.
_P_DIGITS = 4


def experiments(figures: Figures) -> list[dict[str, Any]]:
    """Each experiment (a split playbook and one of its goals) with the statistics of its arms."""
    shown = []
    for experiment in figures.experiments:
        arms = experiment["arms"]
        control = next((arm for arm in arms if arm["control"]), arms[0] if arms else None)
        rows = []
        # Without a goal nothing converts: 0% in every arm and p = 1 would read as measured.
        measured = experiment["goal"] is not None
        for arm in arms:
            n, x = arm["members"], arm["converted"]
            low, high = wilson(x, n)
            # An arm nobody was put in has no rate: 0% with a 0–0% interval would read as measured.
            row: dict[str, Any] = {
                **arm,
                "rate": round(x / n, _ROUND) if n and measured else None,
                "ci": [round(low, _ROUND), round(high, _ROUND)] if n and measured else None,
                "baseline": arm is control,
            }
            if control is not None and arm is not control:
                row.update(_versus(x, n, control["converted"], control["members"]) if measured else _NO_GOAL)
            rows.append(row)
        shown.append({**experiment, "arms": rows})
    return shown


_NO_GOAL = {"difference": None, "test": None, "p": None, "missing": "goal"}


def _versus(x: int, n: int, x0: int, n0: int) -> dict[str, Any]:
    """An arm (x of n) against the baseline (x0 of n0); nothing to compare when either is empty,
    said in `missing` (`arm` or `baseline`; `goal` for a playbook without one) instead of a difference and a p-value of 1."""
    if n == 0 or n0 == 0:
        return {"difference": None, "test": None, "p": None, "missing": "arm" if n == 0 else "baseline"}
    vs = compare(x, n, x0, n0)
    return {"difference": round(vs.difference, _ROUND), "test": vs.test, "p": p_value(vs.p_value)}


def p_value(p: float) -> float:
    """A p-value as the report gives it: four significant digits, and never 0."""
    return max(float(f"{p:.{_P_DIGITS}g}"), sys.float_info.min)


def pilots(plan: Plan, figures: Figures, tags: dict[str, tuple[str, ...]]) -> list[dict[str, Any]]:
    """Each playbook that names its groups, against the run's comparable other groups: the mean
    per group per day of every figure (`tags`: each group's tags in the run). One that cannot be
    compared has no figures and says why in `missing`: `pilot` (none of its groups is in the
    run), `rest` (no other group is) or `days` (it is active on none of the run's days)."""
    shown: list[dict[str, Any]] = []
    for pb in plan.playbooks:
        if pb.scope.kind != "named":
            continue
        pilot = [g for g in pb.scope.groups if g in figures.groups]
        others = [g for g in figures.groups if g not in pb.scope.groups and g in tags]
        pilot_tags = {t for g in pilot for t in tags.get(g, ())}
        rest = [g for g in others if pilot_tags & set(tags[g])] or others
        first = pb.active_from.date().isoformat() if pb.active_from else ""
        last = pb.active_until.date().isoformat() if pb.active_until else "9999"
        days = [day for day in figures.days if first <= day <= last]
        # A pilot that cannot be compared is shown with why: left out, ops would look for it.
        missing = "pilot" if not pilot else "rest" if not rest else "days" if not days else None
        if missing is not None:
            shown.append(
                {
                    "playbook": pb.name,
                    "pilot": pilot,
                    "rest": rest,
                    "days": [],
                    "figures": [],
                    "missing": missing,
                }
            )
            continue
        rows = []
        for family, names in FAMILIES.items():
            for name in names:
                mean_pilot = _mean(figures, pilot, days, family, name)
                mean_rest = _mean(figures, rest, days, family, name)
                rows.append(
                    {
                        "family": family,
                        "figure": name,
                        "pilot": mean_pilot,
                        "rest": mean_rest,
                        "difference": number(round(mean_pilot - mean_rest, _ROUND)),
                    }
                )
        shown.append(
            {"playbook": pb.name, "pilot": pilot, "rest": rest, "days": [days[0], days[-1]], "figures": rows}
        )
    return shown


def _mean(figures: Figures, groups: list[str], days: list[str], family: str, name: str) -> int | float:
    total = sum(figures.groups[g][day].family(family)[name] for g in groups for day in days)
    return number(round(total / (len(groups) * len(days)), _ROUND))
