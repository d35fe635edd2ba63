"""Reading a checked program the way the corpus checks do (tests/dryrun/test_corpus.py): every step
of a playbook, nested ones included, its conditions and triggers, durations in days or hours, and
the instants a calendar names.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import TypeVar

from sopdsl.checker import model

T = TypeVar("T")
A_MONDAY = dt.date(2026, 11, 23)
_DELTAS = {
    model.Unit.MINUTE: dt.timedelta(minutes=1),
    model.Unit.HOUR: dt.timedelta(hours=1),
    model.Unit.DAY: dt.timedelta(days=1),
    model.Unit.WEEK: dt.timedelta(weeks=1),
}


def walk(steps: tuple[model.Step, ...]) -> Iterator[model.Step]:
    """Every step, nested ones included."""
    for step in steps:
        yield step
        if isinstance(step, model.IfStep):
            for branch in step.branches:
                yield from walk(branch.steps)
            yield from walk(step.otherwise)
        elif isinstance(step, model.WaitForStep | model.AssignStep):
            yield from walk(step.then)
            yield from walk(step.otherwise)
        elif isinstance(step, model.SplitStep):
            for arm in step.arms:
                yield from walk(arm.steps)


def all_steps(pb: model.Playbook) -> list[model.Step]:
    """The steps of `do` and of every calendar entry."""
    found = list(walk(pb.steps))
    for entry in pb.schedule:
        found.extend(walk(entry.steps))
    return found


def of(steps: list[model.Step] | tuple[model.Step, ...], kind: type[T]) -> list[T]:
    return [s for s in walk(tuple(steps)) if isinstance(s, kind)]


def conds(cond: model.Cond | None) -> Iterator[model.Cond]:
    """A condition and all its parts."""
    if cond is None:
        return
    yield cond
    if isinstance(cond, model.NotCond):
        yield from conds(cond.operand)
    elif isinstance(cond, model.AndCond | model.OrCond):
        for operand in cond.operands:
            yield from conds(operand)


def excluded(cond: model.Cond | None) -> set[str]:
    """Tags a condition guarantees the member does not have."""
    if isinstance(cond, model.TagCond) and cond.subject == "member" and cond.test == "not_tagged":
        return set(cond.tags)
    if isinstance(cond, model.NotCond):
        inner = cond.operand
        if isinstance(inner, model.TagCond) and inner.subject == "member" and inner.test in ("tagged", "any"):
            return set(inner.tags)
        return set()
    if isinstance(cond, model.AndCond):
        return set().union(*(excluded(c) for c in cond.operands))
    if isinstance(cond, model.OrCond):
        return set.intersection(*(excluded(c) for c in cond.operands))
    return set()


def triggers(pb: model.Playbook, kind: type[T]) -> list[T]:
    return [t for t in pb.triggers if isinstance(t, kind)]


def event_triggers(pb: model.Playbook, kind: model.EventKind) -> list[model.OnEvent]:
    return [t for t in triggers(pb, model.OnEvent) if t.pattern.kind is kind]


def only(pbs: list[model.Playbook], test: Callable[[model.Playbook], bool]) -> model.Playbook:
    found = [pb for pb in pbs if test(pb)]
    assert len(found) == 1, f"expected one matching playbook, found {[pb.name for pb in found]}"
    return found[0]


def has_join(pb: model.Playbook) -> bool:
    return bool(event_triggers(pb, model.EventKind.JOIN))


def text(program: model.Program, send: model.SendStep) -> str:
    return program.templates[send.template].source


def days(duration: model.Duration) -> float:
    per = {model.Unit.DAY: 1, model.Unit.WEEK: 7, model.Unit.MONTH: 30, model.Unit.YEAR: 365}
    if duration.unit in per:
        return duration.amount * per[duration.unit]
    return duration.amount / (24 if duration.unit is model.Unit.HOUR else 24 * 60)


def hours(duration: model.Duration) -> float:
    return days(duration) * 24


def is_ref(value: object, root: str, field: str) -> bool:
    return isinstance(value, model.Ref) and value.root == root and value.field == field


# ---- calendar arithmetic -----------------------------------------------------------------------------


def rule(program: model.Program, ref: model.CalRef) -> model.CalendarRule:
    if ref.inline is not None:
        return ref.inline
    assert ref.calendar is not None
    return program.calendars[ref.calendar].rule


def shifted(moment: dt.datetime, ref: model.CalRef) -> dt.datetime:
    """A calendar instant moved by the entry's offsets and pinned to its time of day."""
    for negative, duration in ref.offsets:
        delta = _DELTAS[duration.unit] * duration.amount
        moment = moment - delta if negative else moment + delta
    if ref.at is not None:
        moment = dt.datetime.combine(moment.date(), ref.at)
    return moment


def weekly_instants(program: model.Program, ref: model.CalRef) -> list[dt.datetime]:
    """One sample week of a weekly calendar (Monday 2026-11-23 on), shifted."""
    weekly = rule(program, ref)
    assert isinstance(weekly, model.Weekly)
    return [
        shifted(dt.datetime.combine(A_MONDAY + dt.timedelta(days=day), time), ref)
        for day in weekly.weekdays
        for time in weekly.times
    ]


def dated_instants(program: model.Program, ref: model.CalRef) -> list[dt.datetime]:
    dates = rule(program, ref)
    assert isinstance(dates, model.Dates)
    return [shifted(dt.datetime.combine(d, t), ref) for d in dates.dates for t in dates.times]


def quiet(program: model.Program, moment: dt.datetime) -> bool:
    start, end = program.policy.quiet_start, program.policy.quiet_end
    assert start is not None and end is not None
    now = moment.time()
    return (start <= now or now < end) if start > end else (start <= now < end)


# ---- the corpus as a whole ---------------------------------------------------------------------------------
