"""`sopdsl compile`, `simulate`, `why`, `test` and `plan`: commands that build a plan and run it.

Imported when one of these commands runs (see `sopdsl.cli.COMMANDS`).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO

import click
import msgspec

from sopdsl.build import compile_files, compile_project
from sopdsl.cli import (
    EXIT_FOUND,
    echo_diagnostics,
    playbook_files,
    project_files,
    project_of,
    require_existing,
    root_option,
    root_path,
    write_output,
)
from sopdsl.diagnostics import Diagnostic, render
from sopdsl.dryrun.coverage import Coverage
from sopdsl.dryrun.fixture_events import event_problems, fixture_warnings
from sopdsl.dryrun.fixtures import Fixture, load_fixture
from sopdsl.dryrun.shard import simulate_sharded
from sopdsl.dryrun.simulate import CHANGE_NAMES, Reloaded, describe, describe_reload
from sopdsl.dryrun.simulate import simulate as run_simulation
from sopdsl.dryrun.testing import FixtureResult, cover_unrun, fixture_versions, playbook_for, run_tests
from sopdsl.dryrun.timeline import is_jsonl, open_timeline
from sopdsl.dryrun.why import UnknownNameError
from sopdsl.dryrun.why import explain as explain_member
from sopdsl.engine.actions import Action, json_line, json_lines
from sopdsl.errors import FixtureError
from sopdsl.plan import Plan, timeutil
from sopdsl.project import FILE_NAME, Project
from sopdsl.source import Source
from sopdsl.syntax.loader import discover_rooted, display_path


def build_plan(paths: tuple[str, ...], root: Path | None = None) -> Plan:
    """Check and compile the given files and folders into one plan, or exit 1 after printing
    diagnostics (for commands: `sopdsl run` reads its playbooks with it too). `root`: the project
    folder, by default the folder given or each file's own."""
    project = project_of(paths)
    if project is not None:
        files = project_files(project, paths)
        if not files:
            raise click.UsageError(f"no deployed .sop files of {project.source.path} in {', '.join(paths)}")
        return _plan_of(files, [], root or project.root, project=project)
    found = playbook_files(paths)
    return _plan_of([f for f, _ in found], [], root, {f: r for f, r in found if r is not None})


def _plan_of(
    files: list[Path],
    asked: list[tuple[Diagnostic, Source | None]],
    root: Path | None = None,
    roots: dict[Path, Path] | None = None,
    project: Project | None = None,
) -> Plan:
    """Check and compile playbook files into one plan, or exit 1 after printing `asked` (what named
    the files) and their diagnostics (`project`: the files are its deployable set, or part of it)."""
    build = (
        compile_project(project, files) if project is not None else compile_files(files, root, roots=roots)
    )
    if build.plan is None:
        echo_diagnostics([*asked, *build.located()])
        sys.exit(EXIT_FOUND)
    for d in build.analysis:  # warnings only, since the plan compiled
        click.echo(render(d, build.sources.get(d.span.path)) + "\n", err=True)
    return build.plan


def _versions(fixture: Fixture, path: Path, source: Source, root: Path | None) -> dict[tuple[str, ...], Plan]:
    """The plans a fixture's `reload` entries load, built as the main plan is (or exit 1)."""
    versions = fixture_versions(fixture, path, source, lambda files, asked: _plan_of(files, asked, root))
    assert isinstance(versions, dict)  # `_plan_of` exits on the first that does not check
    return versions


@click.command(name="compile")
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), required=True, help="Where to write plan.json."
)
@root_option
def compile_command(paths: tuple[str, ...], output: str, root: str | None) -> None:
    """Compile playbook files into one executable plan (JSON with a format version and content hash)."""
    plan = build_plan(paths, root_path(root))
    write_output(output, plan.dumps())
    click.echo(f"wrote {output}: {len(plan.playbooks)} playbook(s), hash {plan.content_hash[:12]}")


MAX_JOBS = 64  # processes `--jobs` may ask for


class _Jobs(click.ParamType["int | None"]):
    """`--jobs`: a number of processes (1 or more), or `auto` (None)."""

    name = "N|auto"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> int | None:
        if value is None or value == "auto":
            return None
        try:
            jobs = int(str(value))
        except ValueError:
            jobs = 0
        if jobs < 1:
            self.fail(f"{value!r} is neither a number of processes (1 or more) nor auto", param, ctx)
        if jobs > MAX_JOBS:
            # Each process reads the whole timeline: past the cores, more only cost more (and a
            # slip of the keyboard forked until the system ran out of files).
            self.fail(f"{jobs} processes: at most {MAX_JOBS} (auto takes one per core)", param, ctx)
        return jobs


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--timeline",
    type=click.Path(exists=True, dir_okay=False),
    required=True,
    help="Fixture timeline: YAML, or JSONL (.jsonl) for large generated timelines.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table", help="Output format."
)
@click.option(
    "--explain", is_flag=True, help="Say for each action which playbook line and trigger produced it."
)
@click.option(
    "--jobs",
    type=_Jobs(),
    default="auto",
    show_default=True,
    help="Processes for a JSONL timeline, its members split among them, the log the same byte for "
    "byte: a number, or auto (one per core for a timeline of 4 MB or more whose playbooks allow it, "
    "else one). Playbooks whose members interact run in one; a number asked for says why.",
)
@root_option
def simulate(
    paths: tuple[str, ...], timeline: str, fmt: str, explain: bool, jobs: int | None, root: str | None
) -> None:
    """Dry-run playbooks over a timeline and print the action log."""
    plan = build_plan(paths, root_path(root))
    out = sys.stdout.buffer
    path = Path(timeline)
    if not is_jsonl(path):
        fixture, source = _fixture_or_exit(path)
        versions = _versions(fixture, path, source, root_path(root))
        _events_or_exit(fixture, source, [plan, *versions.values()])
        _warn_unknown_groups(fixture, source, [plan, *versions.values()])
        zone_name = fixture.timezone or plan.declarations.timezone
        write = _action_writer(out, fmt, explain, zone_name, plan, *versions.values())
        write_reload = _reload_writer(out, fmt, zone_name)
        for entry in run_simulation(plan, fixture, versions=versions).log():
            if isinstance(entry, Reloaded):
                write_reload(entry)
            else:
                write(entry)
        out.flush()
        return
    shown_path = display_path(path)
    try:
        stream = open_timeline(path, shown_path, plan.declarations.timezone)
    except FixtureError as exc:
        echo_diagnostics([(d, None) for d in exc.diagnostics])
        sys.exit(EXIT_FOUND)
    zone_name = stream.header.timezone
    size = stream.size or 0
    stream.close()
    asked = jobs is not None
    if jobs is None:  # small timelines: a process of its own costs more than it saves
        jobs = (os.cpu_count() or 1) if size >= _SHARD_BYTES else 1
    # A bar only for runs long enough to wait for, and only on a terminal (click would still
    # print its label to a pipe).
    shown = size >= _PROGRESS_BYTES and sys.stderr.isatty()
    bar = click.progressbar(length=size, label="simulating", file=sys.stderr, width=30)
    done = 0

    def progress(read: int) -> None:
        nonlocal done
        bar.update(read - done)
        done = read

    def writer(to: IO[bytes]) -> Callable[[Action], None]:
        return _action_writer(to, fmt, explain, zone_name, plan)

    try:
        run = simulate_sharded(
            plan, path, shown_path, plan.declarations.timezone, writer, out, jobs, progress if shown else None
        )
    except FixtureError as exc:
        out.flush()
        if shown:
            bar.render_finish()
        # The log so far stands; the problems go to stderr so a JSONL log stays parseable.
        for diagnostic in exc.diagnostics:
            click.echo(render(diagnostic, None) + "\n", err=True)
        sys.exit(EXIT_FOUND)
    if shown:
        bar.render_finish()
    out.flush()
    if run.reason is not None and asked:
        click.echo(f"note: ran in one process, not {jobs}: {run.reason}", err=True)


_PROGRESS_BYTES = 1 << 20
# From here a timeline runs on every core by default: below it, the processes' start and the
# merge of their logs cost about what they save (docs/performance.md, "Both cores").
_SHARD_BYTES = 4 << 20


@click.command()
@click.argument("member")
@click.argument("paths", nargs=-1)
@click.option(
    "--timeline", type=click.Path(exists=True, dir_okay=False), required=True, help="Fixture timeline (YAML)."
)
@click.option("--playbook", "playbook", default=None, help="Only this playbook (by name).")
@root_option
def why(member: str, paths: tuple[str, ...], timeline: str, playbook: str | None, root: str | None) -> None:
    """Say why MEMBER got, or did not get, each playbook's actions in a dry run.

    PATHS default to the fixture's own playbook."""
    path = Path(timeline)
    if is_jsonl(path):  # read as YAML, its first event line was "invalid YAML"
        raise click.UsageError(
            f"{timeline} is a JSONL timeline; `why` reads a YAML fixture. For a JSONL timeline, "
            f"`sopdsl simulate --timeline {timeline} --explain` says which line made each action"
        )
    fixture, source = _fixture_or_exit(path)
    if not paths:
        own = playbook_for(fixture, path)
        if not own.exists():
            raise click.UsageError(
                f"{timeline} has no playbook beside it ({display_path(own)} does not exist): "
                "name the playbook files after the member, or set `playbook:` in the fixture"
            )
        paths = (str(own),)
    plan = build_plan(paths, root_path(root))
    versions = _versions(fixture, path, source, root_path(root))
    _events_or_exit(fixture, source, [plan, *versions.values()])
    try:
        lines = explain_member(plan, fixture, member, playbook, versions)
    except UnknownNameError as exc:
        click.echo(f"error: {exc}" + (f"\n  hint: {exc.hint}" if exc.hint else ""), err=True)
        sys.exit(EXIT_FOUND)
    for line in lines:
        click.echo(line)


def _action_writer(
    out: IO[bytes], fmt: str, explain: bool, zone_name: str, plan: Plan, *reloaded: Plan
) -> Callable[[Action], None]:
    """A function writing one action to `out` as a JSONL record or a table line (`reloaded`: the
    plans a timeline loads later)."""
    tz = timeutil.zone(zone_name)
    # `--explain` names the playbook's version, so a reviewer sees which revision of an SOP acted:
    # the one in the file the action's step is in, since a reload may leave flows on an older one.
    versions = {
        (c.name, c.loc.rpartition(":")[0]): c.version
        for each in (plan, *reloaded)
        for c in each.playbooks
        if c.version
    }

    def version_of(action: Action) -> str | None:
        return versions.get((action.playbook, action.loc.rpartition(":")[0]))

    if fmt == "jsonl" and not explain:
        return json_lines(out.write, tz)
    if fmt == "jsonl":

        def write_explained(action: Action) -> None:
            data = action.to_json(tz)
            data["explain"] = {"line": action.loc, "trigger": action.trigger}
            version = version_of(action)
            if version:
                data["explain"]["version"] = version
            out.write(json_line(data))

        return write_explained

    def write_line(action: Action) -> None:
        line = describe(action, zone_name)
        if explain:
            version = f" v{version_of(action)}" if version_of(action) else ""
            line += f"    ({action.playbook}{version}: {action.loc}, triggered at {action.trigger})"
        out.write((line + "\n").encode())

    return write_line


def _reload_writer(out: IO[bytes], fmt: str, zone_name: str) -> Callable[[Reloaded], None]:
    """A function writing a reload of a timeline to `out`: a JSONL record (`"kind": "reload"`,
    its plan changes listed in it) or table lines in the form `sopdsl test` shows them."""
    tz = timeutil.zone(zone_name)
    encode = msgspec.json.Encoder(order="sorted").encode

    def write(reload: Reloaded) -> None:
        if fmt == "jsonl":
            changes = [
                {
                    "playbook": c.playbook,
                    "member": c.member,
                    "group": c.group,
                    "outcome": CHANGE_NAMES[c.outcome],
                    "from": c.old,
                    "to": c.new,
                    "step": c.at,
                }
                for c in reload.changes
            ]
            record = {
                "at": timeutil.iso(reload.time, tz),
                "kind": "reload",
                "files": list(reload.files),
                "from": reload.previous[:12],  # short, as everywhere a plan is shown
                "plan": reload.plan[:12],
                "changes": changes,
                "unrecorded_windows": list(reload.unrecorded),
            }
            out.write(encode(record) + b"\n")
        else:
            out.write("".join(line + "\n" for line in describe_reload(reload, zone_name)).encode())

    return write


def _events_or_exit(fixture: Fixture, source: Source, plans: list[Plan]) -> None:
    """Exit 1 after the diagnostics if the live service would refuse any of the fixture's events."""
    refused = event_problems(fixture, plans, source.path)
    if refused:
        echo_diagnostics([(d, source) for d in refused])
        sys.exit(EXIT_FOUND)


def _warn_unknown_groups(fixture: Fixture, source: Source, plans: list[Plan]) -> None:
    """Warn on stderr (stdout may be the log or the report) of what the fixture gives the run that
    looks like a slip: a group nobody declares, a value no playbook reads, a misspelt member."""
    for warning in fixture_warnings(fixture, plans, source.path):
        click.echo(render(warning, source) + "\n", err=True)


def _fixture_or_exit(path: Path) -> tuple[Fixture, Source]:
    try:
        fixture, source = load_fixture(path, display_path(path))
    except FixtureError as exc:
        source = Source(display_path(path), path.read_text(encoding="utf-8", errors="replace"))
        echo_diagnostics([(d, source) for d in exc.diagnostics])
        sys.exit(EXIT_FOUND)
    return fixture, source


def find_fixtures(paths: tuple[str, ...]) -> list[Path]:
    """Fixture files (`*.yaml`, `*.yml`) in the given folders, or beside the given `.sop` files.
    In a folder, a YAML file that is not a fixture (an executors file, a CI config) is left out."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(
                sorted(
                    p for p in path.rglob("*.y*ml") if p.suffix in (".yaml", ".yml") and looks_like_fixture(p)
                )
            )
        elif path.suffix == ".sop":
            found.extend(sorted(p for p in path.parent.glob(path.stem + "*.y*ml")))
        elif path.suffix in (".yaml", ".yml"):
            found.append(path)
    return sorted(set(found))


# A fixture's own top-level keys: a YAML file with none of them, and no playbook beside it, is
# something else.
_FIXTURE_KEY = re.compile(r"^(start|events|expect|members|groups|playbook)\s*:", re.MULTILINE)


def looks_like_fixture(path: Path) -> bool:
    """Whether a YAML file found in a folder is a fixture: a playbook shares its stem, or it has a
    fixture's top-level keys (so a fixture whose playbook is missing is still reported)."""
    if (path.parent / (path.name.split(".")[0] + ".sop")).exists():
        return True
    try:
        with path.open(encoding="utf-8", errors="replace") as file:
            head = file.read(1 << 16)
    except OSError:
        return True  # let the fixture reader say what is wrong with it
    return _FIXTURE_KEY.search(head) is not None


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", help="Output format.")
@click.option("--junit", type=click.Path(dir_okay=False), help="Also write a JUnit XML report here.")
@click.option(
    "--coverage",
    "show_coverage",
    is_flag=True,
    help="Report which playbooks, triggers, steps and branches no fixture exercises, per file.",
)
@click.option(
    "--coverage-file",
    type=click.Path(dir_okay=False),
    help="Also write the coverage here: Cobertura XML for a .xml name, JSON otherwise (implies --coverage).",
)
@click.option(
    "--min-coverage",
    type=click.FloatRange(0, 100),
    help="Fail (exit 1) when less than this percentage is covered (implies --coverage).",
)
@root_option
def test(
    paths: tuple[str, ...],
    fmt: str,
    junit: str | None,
    show_coverage: bool,
    coverage_file: str | None,
    min_coverage: float | None,
    root: str | None,
) -> None:
    """Run every fixture found and check its expectations. Exit 0 all pass, 1 failures, 2 errors."""
    require_existing(paths)
    project = project_of(paths)
    if project is not None:  # the project file given stands for the folders of its deployed files
        folders = sorted({str(f.parent) for f in project.files})
        paths = tuple(
            dict.fromkeys(q for p in paths for q in (folders if Path(p).name == FILE_NAME else [p]))
        )
    fixtures = find_fixtures(paths)
    if not fixtures:
        raise click.UsageError(f"no fixture timelines (*.yaml) found in {', '.join(paths)}")
    covering = show_coverage or coverage_file is not None or min_coverage is not None
    coverage = Coverage() if covering else None
    report = run_tests(fixtures, root_path(root), coverage)
    if project is not None and (deployed := project_files(project, paths)):
        # Each fixture runs its own playbook; the files deployed together must also compile together.
        built = compile_project(project, deployed)
        if built.plan is None:
            problems = [render(d, where) for d, where in built.located(errors_only=True)]
            report.results.insert(
                0, FixtureResult(f"{project.source.path} (the deployable set)", errors=problems)
            )
    code = report.exit_code
    covered = None
    if coverage is not None:
        sop = [f for f, _ in discover_rooted(paths)] if any(Path(p).is_dir() for p in paths) else []
        cover_unrun(coverage, sop, root_path(root))
        covered = coverage.report()
        if min_coverage is not None and covered.percent < min_coverage and code == 0:
            code = 1
    if fmt == "json":
        data = report.to_json()
        if covered is not None:
            data["coverage"] = covered.to_json()
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        for line in report.lines():
            click.echo(line)
        if covered is not None:
            for line in covered.lines():
                click.echo(line)
            if min_coverage is not None and covered.percent < min_coverage:
                click.echo(f"coverage {covered.percent:.1f}% is below --min-coverage {min_coverage:g}%")
    if junit:
        from sopdsl.reporting.junit import to_junit

        write_output(junit, to_junit(report))
    if coverage_file and covered is not None:
        text = (
            covered.cobertura()
            if coverage_file.endswith(".xml")
            else json.dumps(covered.to_json(), ensure_ascii=False, indent=2) + "\n"
        )
        write_output(coverage_file, text)
    sys.exit(code)
