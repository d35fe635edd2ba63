"""`sopdsl report`: a dry run's figures as one self-contained HTML page, or as JSON.

Imported when the command runs (see `sopdsl.cli.COMMANDS`).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any, NamedTuple

import click

from sopdsl import lang
from sopdsl.cli import DAY, EXIT_FOUND, echo_diagnostics, open_project, root_option, root_path, write_output
from sopdsl.cli_dryrun import _events_or_exit, _fixture_or_exit, _versions, _warn_unknown_groups, build_plan
from sopdsl.diagnostics import render
from sopdsl.dryrun.fixture_events import unknown_timeline_groups
from sopdsl.dryrun.simulate import simulate, simulate_timeline
from sopdsl.dryrun.timeline import is_jsonl, open_timeline
from sopdsl.engine.records import GroupRecord
from sopdsl.errors import FixtureError
from sopdsl.figures.collect import Collector
from sopdsl.figures.cut import WHOLE_RUN, cut, outside
from sopdsl.figures.html import render_html
from sopdsl.figures.model import NO_GROUP, Figures
from sopdsl.figures.report import build_report, day_one_burst
from sopdsl.plan import Plan
from sopdsl.project import find_project
from sopdsl.syntax.loader import display_path


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--timeline",
    type=click.Path(exists=True, dir_okay=False),
    required=True,
    help="Fixture timeline: YAML, or JSONL (.jsonl) for large generated timelines.",
)
@click.option("--format", "fmt", type=click.Choice(["html", "json"]), default="html", help="Output format.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="Where to write the report (default: standard output).",
)
@click.option("--from", "first", type=DAY, help="First day to show (YYYY-MM-DD); default: the run's first.")
@click.option(
    "--to", "last", type=DAY, help="Last day to show, included (YYYY-MM-DD); default: the run's last."
)
@root_option
def report(
    paths: tuple[str, ...],
    timeline: str,
    fmt: str,
    output: str | None,
    first: dt.date | None,
    last: dt.date | None,
    root: str | None,
) -> None:
    """Dry-run playbooks over a timeline and report its figures as one HTML page (or JSON).

    It shows per group per day reach, activity, growth and conversion, a funnel per playbook, the
    group calendar (群日历) of the period and the day-one burst, if any. With --from/--to, the
    per-day parts show those days; funnels, goals and experiments still cover the whole run."""
    plan = build_plan(paths, root_path(root))
    shown = Shown(first, last)
    data = _report_data(plan, Path(timeline), root_path(root), _attribution(paths), shown)
    text = render_html(data) if fmt == "html" else json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    if output is None:
        sys.stdout.buffer.write(text.encode("utf-8"))
        return
    write_output(output, text)
    click.echo(f"wrote {output}: {len(data['groups'])} group(s) over {len(data['days'])} day(s)", err=True)


def _attribution(paths: tuple[str, ...]) -> lang.Attribution:
    """The attribution rule of the project the first path belongs to (sopdsl.toml's `[figures]`),
    last touch without one; a broken project file exits 1 after its diagnostics."""
    first = Path(paths[0])
    found = find_project(first if first.is_dir() else first.parent)
    if found is None:
        return lang.Attribution.LAST_TOUCH
    return lang.Attribution(open_project(found).attribution)


class Shown(NamedTuple):
    """The days a report shows (`--from`, `--to`); None: the run's first or last."""

    first: dt.date | None
    last: dt.date | None

    def build(self, plan: Plan, figures: Figures, groups: list[GroupRecord], title: str) -> dict[str, Any]:
        """The report's data of these days, or a usage error when they are not the run's."""
        if self.first is None and self.last is None:
            return build_report(plan, figures, groups, title)
        if not figures.days:
            raise click.UsageError("the run has no days: --from and --to have none to show")
        first = self.first or dt.date.fromisoformat(figures.days[0])
        last = self.last or dt.date.fromisoformat(figures.days[-1])
        wrong = outside(figures, first, last)
        if wrong is not None:
            raise click.UsageError(wrong)
        data = build_report(plan, cut(figures, first, last), groups, title)
        # The day-one burst is of the run's first day against its usual day, whatever is shown.
        burst = day_one_burst(figures)
        data["burst"] = burst if burst is not None and burst["day"] in data["days"] else None
        start, end = figures.days[0], figures.days[-1]
        data["whole_run"] = {
            "parts": list(WHOLE_RUN),
            "days": [start, end],
            "text": f"剧本漏斗（流程、动作、目标转化）和实验分组统计的是整个模拟 {start} 至 {end}，"
            f"不只是所选的 {first} 至 {last}：模拟不按天统计它们。",
        }
        return data


def _report_data(
    plan: Plan, path: Path, root: Path | None, rule: lang.Attribution, shown: Shown
) -> dict[str, Any]:
    """Run the timeline with a figures collector and build the report's data (or exit 1)."""
    title = f"社群数据报告 · {path.name}"
    if not is_jsonl(path):
        fixture, source = _fixture_or_exit(path)
        versions = _versions(fixture, path, source, root)
        _events_or_exit(fixture, source, [plan, *versions.values()])
        # A group no one declared is made on the spot, without tags: a misspelt id gave its
        # figures a group of their own without a word.
        _warn_unknown_groups(fixture, source, [plan, *versions.values()])
        collector = Collector(fixture.timezone or plan.declarations.timezone, rule)
        simulate(plan, fixture, versions=versions, figures=collector)
        records = [group.record() for group in fixture.groups]
        return shown.build(plan, collector.figures(), records, fixture.description or title)
    try:
        stream = open_timeline(path, display_path(path), plan.declarations.timezone)
    except FixtureError as exc:
        echo_diagnostics([(d, None) for d in exc.diagnostics])
        sys.exit(EXIT_FOUND)
    collector = Collector(stream.header.timezone, rule)
    try:
        simulate_timeline(plan, stream, _discard, figures=collector)
    except FixtureError as exc:
        for diagnostic in exc.diagnostics:
            click.echo(render(diagnostic, None) + "\n", err=True)
        sys.exit(EXIT_FOUND)
    finally:
        stream.close()
    groups: list[GroupRecord] = list(stream.header.groups)
    figures = collector.figures()
    declared = {g.id for g in groups} | set(plan.declarations.groups) | {NO_GROUP}
    for warning in unknown_timeline_groups(path, display_path(path), figures.groups, declared):
        click.echo(render(warning, None) + "\n", err=True)
    return shown.build(plan, figures, groups, stream.header.description or title)


def _discard(action: object) -> None:
    """A sink that keeps nothing: the collector has counted the action already."""
