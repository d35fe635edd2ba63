"""Dates to model: holiday lists, a calendar's `except`, and the date tests of a condition.

Holiday lists are declared before anything reads them (`declare_holidays` runs ahead of the other
declarations), so a calendar may name a list declared after it or in an included file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sopdsl.checker import model, values
from sopdsl.diagnostics import did_you_mean
from sopdsl.syntax import nodes

if TYPE_CHECKING:
    import datetime as dt

    from sopdsl.checker.context import Context
    from sopdsl.source import Span


def declare_holidays(ctx: Context, files: list[nodes.File]) -> None:
    """Check and declare every holiday list of the program, under its name."""
    for file in files:
        for decl in file.declarations:
            if isinstance(decl, nodes.HolidaysDecl):
                found = [span(ctx, s) for s in decl.spans]
                checked = tuple(s for s in found if s is not None) if None not in found else None
                ctx.declare("holidays", decl.name.text, decl.name.span, checked)


def span(ctx: Context, node: nodes.DateSpan) -> model.DateSpan | None:
    """A checked span of days, or None after reporting it (a bad date, an end before its start)."""
    first = values.date(ctx, node.first)
    last = values.date(ctx, node.last) if node.last is not None else first
    if first is None or last is None:
        return None
    return _ordered(ctx, first, last, node.span)


def _ordered(ctx: Context, first: dt.date, last: dt.date, where: Span) -> model.DateSpan | None:
    if last < first:
        ctx.error(
            "SOP306",
            f"the range ends ({last}) before it starts ({first})",
            where,
            "write the earlier day first",
        )
        return None
    return model.DateSpan(first=first, last=last)


def holidays(ctx: Context, name: nodes.Name) -> tuple[model.DateSpan, ...] | None:
    """The days of a declared holiday list, or None after reporting the name unknown."""
    table = ctx.table("holidays")
    if name.text in table:
        found: tuple[model.DateSpan, ...] | None = table[name.text].value
        return found
    ctx.error(
        "SOP118",
        f"unknown holiday list '{name.text}'",
        name.span,
        did_you_mean(name.text, table) or f"declare it with `holidays {name.text} = 2026-10-01..2026-10-07`",
    )
    return None


def skipped(ctx: Context, node: nodes.CalExcept) -> tuple[model.DateSpan, ...] | None:
    """The days an `except` names, its holiday lists expanded, or None if any part is wrong."""
    found: list[model.DateSpan] = []
    ok = True
    for item in node.items:
        if isinstance(item, nodes.DateSpan):
            checked = span(ctx, item)
            ok = ok and checked is not None
            found.extend([checked] if checked is not None else [])
        else:
            days = holidays(ctx, item.name)
            ok = ok and days is not None
            found.extend(days or ())
    return tuple(found) if ok else None


def date_cond(ctx: Context, node: nodes.DateBetween | nodes.DateIn) -> model.DateCond | None:
    """`date between D1 and D2` or `date in HOLIDAYS` as a checked test of the local date."""
    if isinstance(node, nodes.DateIn):
        days = holidays(ctx, node.holidays)
        return model.DateCond(spans=days, holidays=node.holidays.text) if days is not None else None
    first, last = values.date(ctx, node.first), values.date(ctx, node.last)
    if first is None or last is None:
        return None
    checked = _ordered(ctx, first, last, node.span)
    return model.DateCond(spans=(checked,)) if checked is not None else None
