"""`GET /report?from=YYYY-MM-DD&to=YYYY-MM-DD[&format=json][&attribution=first touch]`: the report of
the live figures of those local days (the plan's zone), as the HTML page `sopdsl report` writes, or
its JSON: per group per day, per playbook (flows begun in those days, actions, goal conversions
attributed by the rule asked, last touch by default) and per experiment arm.

Input: the runtime and the query. Output: a status with a body (the page or the JSON, or what
is wrong with the query).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Mapping
from http import HTTPStatus

from sopdsl import lang
from sopdsl.engine.engine import Engine
from sopdsl.engine.records import GroupRecord
from sopdsl.figures.html import render_html
from sopdsl.figures.stored import day_bounds, live_report
from sopdsl.live.runtime import Runtime
from sopdsl.live.store_figures import SLOT

MAX_DAYS = 366  # a longer range is refused: a report of every day since the start is not a page


def answer(runtime: Runtime, query: Mapping[str, str]) -> tuple[int, str, str]:
    """The status, the body and its media type for a report request."""
    try:
        first = dt.date.fromisoformat(query["from"])
        last = dt.date.fromisoformat(query["to"])
    except KeyError as exc:
        return HTTPStatus.BAD_REQUEST, f"the query needs {exc.args[0]}=YYYY-MM-DD", "text/plain"
    except ValueError as exc:
        return HTTPStatus.BAD_REQUEST, f"a day is written YYYY-MM-DD: {exc}", "text/plain"
    try:
        rule = lang.Attribution(query.get("attribution", lang.Attribution.LAST_TOUCH.value))
    except ValueError:
        choices = " or ".join(repr(a.value) for a in lang.Attribution)
        return HTTPStatus.BAD_REQUEST, f"attribution is {choices}", "text/plain"
    fmt = query.get("format", "html")
    if fmt not in ("html", "json"):
        return HTTPStatus.BAD_REQUEST, f"format is html or json, not {fmt!r}", "text/plain"
    if last < first or (last - first).days >= MAX_DAYS:
        return (
            HTTPStatus.BAD_REQUEST,
            f"from must not be after to, and the range at most {MAX_DAYS} days",
            "text/plain",
        )
    plan = runtime.plan
    lo, hi = day_bounds(first, last, plan.declarations.timezone)
    found = runtime.store.figures(runtime.shard, lo, hi)
    groups = runtime.read(_groups)
    running = runtime.read(lambda engine: _running(engine, lo, hi))
    title = f"社群数据报告 · {first} 至 {last}"
    data = live_report(plan, found, first, last, groups, title, SLOT, running, rule)
    if fmt == "json":
        return HTTPStatus.OK, json.dumps(data, ensure_ascii=False, indent=2) + "\n", "application/json"
    return HTTPStatus.OK, render_html(data), "text/html; charset=utf-8"


def _running(engine: Engine, lo: int, hi: int) -> dict[str, int]:
    """Flows running now that began in [lo, hi), by playbook."""
    running: Counter[str] = Counter(
        engine.compiled[f.playbook].source.name for f in engine.flows.values() if lo <= f.started < hi
    )
    return dict(running)


def _groups(engine: Engine) -> list[GroupRecord]:
    return [GroupRecord(g.id, g.name, tuple(sorted(g.tags))) for g in engine.groups.values()]
