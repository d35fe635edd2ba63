"""A dry run's figures cut to some of its days (`sopdsl report --from/--to`).

Input: the whole run's `Figures` and a range of local days. Output: `Figures` whose per-day parts
(each group's days, the actions per day, hence the calendar, the pilots and the burst) hold only
those days. Flows, goal conversions and experiment arms are counted over the whole run, not per
day, so they stay whole: `WHOLE_RUN` names them, and the report says so.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from sopdsl.figures.model import Figures

WHOLE_RUN = ("playbooks", "experiments")  # the report's parts a cut leaves whole


def cut(figures: Figures, first: dt.date, last: dt.date) -> Figures:
    """The figures of the local days `first` to `last` (both included) of a run."""

    def kept(day: str) -> bool:
        return first.isoformat() <= day <= last.isoformat()

    return dataclasses.replace(
        figures,
        days=[day for day in figures.days if kept(day)],
        groups={
            group: {d: cell for d, cell in days.items() if kept(d)} for group, days in figures.groups.items()
        },
        daily_actions={day: acts for day, acts in figures.daily_actions.items() if kept(day)},
    )


def outside(figures: Figures, first: dt.date, last: dt.date) -> str | None:
    """What is wrong with cutting the run's figures to `first`..`last`, or None: the range must
    lie within the run's days (a day it has no figures of would read as a day of zeros)."""
    if last < first:
        return f"--from {first} is after --to {last}: swap them"
    if not figures.days:
        return "the run has no days to cut"
    start, end = figures.days[0], figures.days[-1]
    if first.isoformat() < start or last.isoformat() > end:
        return f"the run covers {start} to {end}; --from {first} --to {last} is not within it"
    return None
