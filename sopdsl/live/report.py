"""`GET /report?from=YYYY-MM-DD&to=YYYY-MM-DD[&format=json][&attribution=first touch]`: the report of
the live figures of those local days (the plan's zone), as the HTML page `sopdsl report` writes, or
its JSON: per group per day, per playbook (flows begun in those days, actions, goal conversions
attributed by the rule asked, last touch by default) and per experiment arm; with a `notice` of the
days that do hold figures when those asked hold none.

Input: the runtime and the query. Output: a status with a body (the page or the JSON, or what
is wrong with the query).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from typing import Any, NamedTuple

from sopdsl import lang
from sopdsl.engine.records import GroupRecord
from sopdsl.figures.html import render_html
from sopdsl.figures.stored import day_bounds, live_report
from sopdsl.live.admin_views import report_view
from sopdsl.live.runtime import Runtime
from sopdsl.live.store_figures import SLOT, Found
from sopdsl.plan import timeutil

MAX_DAYS = 366  # a longer range is refused: a report of every day since the start is not a page
# Engine times start at the epoch; near the calendar's ends the day bounds and the schedules'
# look-around (a few days either side, in the plan's zone) leave `datetime`'s years 1 to 9999.
FIRST_DAY, LAST_DAY = dt.date(1970, 1, 1), dt.date(9998, 12, 31)


def answer(runtime: Any, query: Iterable[tuple[str, str]]) -> tuple[int, str, str]:
    """The status, the body and its media type for a report request, its query as the (name,
    value) pairs sent (404 where the runtime keeps no figures: see `facts_source`)."""
    facts = facts_source(runtime)
    if facts is None:
        return HTTPStatus.NOT_FOUND, "this service keeps no live figures", "text/plain"
    asked = once_each(query)
    if isinstance(asked, str):
        return HTTPStatus.BAD_REQUEST, asked, "text/plain"
    first, last = day_of("from", asked), day_of("to", asked)
    if isinstance(first, str) or isinstance(last, str):
        return HTTPStatus.BAD_REQUEST, first if isinstance(first, str) else str(last), "text/plain"
    try:
        rule = lang.Attribution(asked.get("attribution", lang.Attribution.LAST_TOUCH.value))
    except ValueError:
        choices = " or ".join(repr(a.value) for a in lang.Attribution)
        return HTTPStatus.BAD_REQUEST, f"attribution is {choices}", "text/plain"
    fmt = asked.get("format", "html")
    if fmt not in ("html", "json"):
        return HTTPStatus.BAD_REQUEST, f"format is html or json, not {fmt!r}", "text/plain"
    # Each mistake said apart, with what to do: one sentence for both left the user to guess.
    if last < first:
        return (
            HTTPStatus.BAD_REQUEST,
            f"from must not be after to: from={first} is after to={last}; swap them",
            "text/plain",
        )
    if (last - first).days >= MAX_DAYS:
        return (
            HTTPStatus.BAD_REQUEST,
            f"the range {first} to {last} is {(last - first).days + 1} days; a report covers at most"
            f" {MAX_DAYS} days: ask for it in parts",
            "text/plain",
        )
    if first < FIRST_DAY or last > LAST_DAY:
        return (
            HTTPStatus.BAD_REQUEST,
            f"the days {first} to {last} are out of range: a report covers {FIRST_DAY} to {LAST_DAY}",
            "text/plain",
        )
    plan = runtime.plan
    lo, hi = day_bounds(first, last, plan.declarations.timezone)
    found, groups, running = facts(lo, hi)
    title = f"社群数据报告 · {first} 至 {last}"
    data = live_report(plan, found, first, last, groups, title, SLOT, running, rule)
    if not (found.sums or found.playbooks or any(running.values())):
        data["notice"] = no_figures(first, last, span_source(runtime), plan.declarations.timezone)
    if fmt == "json":
        return HTTPStatus.OK, json.dumps(data, ensure_ascii=False, indent=2) + "\n", "application/json"
    return HTTPStatus.OK, render_html(data), "text/html; charset=utf-8"


_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def once_each(query: Iterable[tuple[str, str]]) -> dict[str, str] | str:
    """The query's parameters by name, or what to say of one given more than once: which of two
    `from`s was meant cannot be told, and keeping the last hid the mistake."""
    asked: dict[str, str] = {}
    for name, value in query:
        if name in asked:
            return f"{name} is given more than once; give it once"
        asked[name] = value
    return asked


def day_of(name: str, asked: Mapping[str, str]) -> dt.date | str:
    """The day a parameter names, or what is wrong with it. Only `YYYY-MM-DD`, as documented:
    `date.fromisoformat` also takes `20260302` and week dates (`2026-W10-1`), which a reader of
    the URL would not take for the same day."""
    value = asked.get(name)
    if value is None:
        return f"the query needs {name}=YYYY-MM-DD"
    if not _DAY.fullmatch(value):
        return f"{name} is a day written YYYY-MM-DD (like 2026-03-02), not {value!r}"
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        return f"a day is written YYYY-MM-DD: {name}={value} is no day ({exc})"


class Facts(NamedTuple):
    """What a report of engine times [lo, hi) is made of: the figures kept, the groups, and the
    flows running now that began in the range, by playbook."""

    found: Found
    groups: list[GroupRecord]
    running: dict[str, int]


def facts_of(found: Found, view: Mapping[str, Any]) -> Facts:
    """The facts of the figures kept and the engine's `admin_views.report_view`."""
    groups = [GroupRecord(str(g), str(name), tuple(tags)) for g, name, tags in view["groups"]]
    return Facts(found, groups, {str(k): int(v) for k, v in view["running"].items()})


def no_figures(
    first: dt.date, last: dt.date, span: Callable[[], tuple[int, int] | None] | None, zone: str
) -> dict[str, Any]:
    """The notice of a report whose days hold no figure: which days do (`figures_from`,
    `figures_to`, local days; None when none does or, `span` None, the runtime cannot tell)."""
    kept = span() if span is not None else None
    asked = f"{first} 至 {last} 没有任何数据"
    if kept is None:
        ends = None
        text = f"{asked}。" if span is None else f"{asked}：这里还没有任何数据。"
    else:
        tz = timeutil.zone(zone)
        ends = [dt.datetime.fromtimestamp(t, tz).date().isoformat() for t in (kept[0], kept[1] - 1)]
        text = f"{asked}：有数据的日子是 {ends[0]} 至 {ends[1]}。"
    return {
        "empty": True,
        "figures_from": ends[0] if ends else None,
        "figures_to": ends[1] if ends else None,
        "text": text,
    }


def span_source(runtime: Any) -> Callable[[], tuple[int, int] | None] | None:
    """How to ask a runtime which engine times its figures span (`Store.figures_span`; a Temporal
    front's `report_span` asks the shard's workflow); None when it cannot tell."""
    if isinstance(runtime, Runtime):
        return lambda: runtime.store.figures_span(runtime.shard)
    told: Callable[[], tuple[int, int] | None] | None = getattr(runtime, "report_span", None)
    return told


def facts_source(runtime: Any) -> Callable[[int, int], Facts] | None:
    """Where a runtime's report facts come from: its store's figures and its engine, or (a
    Temporal front) its shard's workflow; None when it keeps no figures."""
    if isinstance(runtime, Runtime):

        def stored(lo: int, hi: int) -> Facts:
            view = runtime.read(lambda engine: report_view(engine, lo, hi))
            return facts_of(runtime.store.figures(runtime.shard, lo, hi), view)

        return stored
    found: Callable[[int, int], Facts] | None = getattr(runtime, "report_facts", None)
    return found
