"""The HTML report of a large community stays small enough to open and to mail: 400 groups over
30 days, every figure of every day non-zero (more than a real community, whose quiet days draw
no bar), are a few megabytes, where each folded group's charts and cells made 36 MB."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sopdsl.figures.html import UNFOLDED_GROUPS, render_html
from sopdsl.figures.model import FAMILIES

GROUPS, DAYS = 400, 30
# A bound with room over what the page is now (4.9 MB), far under what it was: a mail client
# takes 10 MB or more, and a browser opens it at once.
MAX_BYTES = 6_000_000


def community() -> dict[str, Any]:
    """A report's data (as `report.build_report` makes it) of `GROUPS` groups over `DAYS` days,
    each figure a different two- or three-digit number."""
    days = [(dt.date(2026, 3, 2) + dt.timedelta(days=d)).isoformat() for d in range(DAYS)]
    groups = []
    for g in range(GROUPS):
        rows: list[dict[str, Any]] = [
            {
                "day": day,
                **{
                    family: {f: 10 + (g * 7 + d * 13 + i * 31) % 290 for i, f in enumerate(figures)}
                    for family, figures in FAMILIES.items()
                },
            }
            for d, day in enumerate(days)
        ]
        totals = {
            family: {f: sum(row[family][f] for row in rows) for f in figures}
            for family, figures in FAMILIES.items()
        }
        groups.append({"id": f"g{g}", "name": f"第{g}城粉丝交流群", "days": rows, "totals": totals})
    return {
        "title": "社群数据报告",
        "zone": "Asia/Shanghai",
        "plan": "0123456789ab",
        "days": days,
        "groups": groups,
        "playbooks": [],
        "calendar": [],
        "burst": None,
        "experiments": [],
        "pilots": [],
    }


def test_a_report_of_400_groups_over_30_days_is_a_few_megabytes() -> None:
    data = community()
    assert len(data["groups"]) > UNFOLDED_GROUPS
    page = render_html(data).encode("utf-8")
    assert len(page) < MAX_BYTES, f"{len(page) / 1e6:.1f} MB"
    # Still every group's every figure of every day, and a chart of each of its families.
    text = page.decode("utf-8")
    assert text.count('<details class="group"') == GROUPS
    assert text.count("<td>") == GROUPS * DAYS * sum(len(f) for f in FAMILIES.values())
    assert text.count('<svg class="chart"') == GROUPS * 5  # reach, activity, growth, orders, amount
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
