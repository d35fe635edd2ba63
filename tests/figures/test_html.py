"""The HTML report in a real headless browser (Chromium from Debian, driven by Playwright): the
figures it shows equal the JSON report's, Chinese has a font to render with, and the page asks
for nothing over the network. A screenshot is kept (SOPDSL_ARTIFACTS, by default the test's
temporary folder).

Skips, saying why, only where Chromium or Playwright is missing; SOPDSL_REQUIRE_BROWSER (set by
.ci/run) turns that into a failure.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sopdsl.cli import main

HERE = Path(__file__).parent
CHROMIUM = os.environ.get("SOPDSL_CHROMIUM", "/usr/bin/chromium")


def _browser_or_skip() -> Any:
    reason = None
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium fonts-wqy-microhei)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = reason or "Playwright is not installed (pip install -e '.[dev]')"
    if reason is not None:
        if os.environ.get("SOPDSL_REQUIRE_BROWSER"):
            pytest.fail(f"{reason}, and SOPDSL_REQUIRE_BROWSER is set")
        pytest.skip(reason)
    return sync_playwright


def report(case: str, fmt: str, out: Path) -> Path:
    sop, timeline = HERE / "cases" / f"{case}.sop", HERE / "cases" / f"{case}.yaml"
    args = ["report", str(sop), "--timeline", str(timeline), "--format", fmt, "-o", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("case", ["shop", "burst"])
def test_the_report_shows_in_chromium_the_figures_of_the_json_report(case: str, tmp_path: Path) -> None:
    sync_playwright = _browser_or_skip()
    data = json.loads(report(case, "json", tmp_path / "report.json").read_text(encoding="utf-8"))
    page_file = report(case, "html", tmp_path / "report.html")
    artifacts = Path(os.environ.get("SOPDSL_ARTIFACTS") or tmp_path)
    artifacts.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            asked: list[str] = []
            page.on("request", lambda request: asked.append(request.url))
            page.goto(page_file.as_uri())
            shown = page.eval_on_selector_all(
                "td[data-figure]",
                "cells => cells.map(c => [c.dataset.group, c.dataset.day, c.dataset.figure, c.innerText])",
            )
            flows = page.eval_on_selector_all(
                "td[data-flows]",
                "cells => cells.map(c => [c.dataset.playbook, c.dataset.flows, c.innerText])",
            )
            actions = page.eval_on_selector_all(
                "td[data-action]",
                "cells => cells.map(c => [c.dataset.playbook, c.dataset.action, c.innerText])",
            )
            slots = page.locator("#calendar tr.slot").count()
            burst = page.locator("[data-burst=actions]")
            burst_shown = burst.inner_text() if burst.count() else None
            title = page.locator("h1").inner_text()
            font = page.evaluate("document.fonts.check('16px \"WenQuanYi Micro Hei\"', '骑友')")
            family = page.evaluate("getComputedStyle(document.body).fontFamily")
            page.screenshot(path=str(artifacts / f"report-{case}.png"), full_page=True)
        finally:
            browser.close()
    expected = {
        (group["id"], row["day"], f"{family}.{figure}"): value
        for group in data["groups"]
        for row in group["days"]
        for family, figures in row.items()
        if family != "day"
        for figure, value in figures.items()
    }
    assert {(g, d, f): _number(text) for g, d, f, text in shown} == expected
    assert {(pb, key): int(text) for pb, key, text in flows} == {
        (pb["name"], key): value for pb in data["playbooks"] for key, value in pb["flows"].items()
    }
    assert {(pb, key): int(text) for pb, key, text in actions} == {
        (pb["name"], f"{kind}.{status}"): count
        for pb in data["playbooks"]
        for kind, statuses in pb["actions"].items()
        for status, count in statuses.items()
    }
    assert slots == len(data["calendar"])
    assert burst_shown == (None if data["burst"] is None else str(data["burst"]["actions"]))
    assert title == data["title"]
    assert "WenQuanYi Micro Hei" in family
    assert font, "no CJK font to render the report's Chinese with (apt-get install fonts-wqy-microhei)"
    assert [url for url in asked if not url.startswith(("file:", "data:"))] == []


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() else value


def test_the_report_shows_in_chromium_each_arm_of_g5_and_the_pilot_of_g6(tmp_path: Path) -> None:
    sync_playwright = _browser_or_skip()
    playbooks = HERE.parent.parent / "playbooks"
    pages = {}
    for case in ("G5_ab_poster", "G6_pilot_groups"):
        for fmt in ("json", "html"):
            args = [
                "report",
                str(playbooks / f"{case}.sop"),
                "--timeline",
                str(playbooks / f"{case}.yaml"),
                "--format",
                fmt,
                "-o",
                str(tmp_path / f"{case}.{fmt}"),
            ]
            assert CliRunner().invoke(main, args).exit_code == 0
        pages[case] = json.loads((tmp_path / f"{case}.json").read_text(encoding="utf-8"))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto((tmp_path / "G5_ab_poster.html").as_uri())
            arms = page.eval_on_selector_all(
                "td[data-arm]", "cells => cells.map(c => [c.dataset.arm, c.dataset.measure, c.innerText])"
            )
            page.goto((tmp_path / "G6_pilot_groups.html").as_uri())
            pilot = page.eval_on_selector_all(
                "td[data-pilot]", "cells => cells.map(c => [c.dataset.measure, c.dataset.side, c.innerText])"
            )
        finally:
            browser.close()
    (experiment,) = pages["G5_ab_poster"]["experiments"]
    counts = {(arm, key): text for arm, key, text in arms if key in ("members", "reached", "converted")}
    assert counts == {
        (arm["arm"], key): str(arm[key])
        for arm in experiment["arms"]
        for key in ("members", "reached", "converted")
    }
    rates = {arm: text for arm, key, text in arms if key == "rate"}
    assert rates == {arm["arm"]: f"{arm['rate'] * 100:.1f}%" for arm in experiment["arms"]}
    (compared,) = pages["G6_pilot_groups"]["pilots"]
    assert {(measure, side): _number(text) for measure, side, text in pilot} == {
        (f"{row['family']}.{row['figure']}", side): row[side]
        for row in compared["figures"]
        for side in ("pilot", "rest", "difference")
    }
