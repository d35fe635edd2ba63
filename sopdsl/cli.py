"""The command line: a thin shell over the staged API.

Exit codes (the same for every command):

| code | meaning |
|------|---------|
| 0 | clean: no errors (warnings may be printed) |
| 1 | diagnostics with errors were found, files need formatting, or tests failed |
| 2 | usage error: bad options or arguments, or a path that does not exist |
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING

import click
import msgspec

from sopdsl import __version__
from sopdsl.build import compile_files
from sopdsl.checker import check_program
from sopdsl.diagnostics import CODES, Diagnostic, render
from sopdsl.dryrun.fixtures import Fixture, load_fixture
from sopdsl.dryrun.simulate import CHANGE_NAMES, Reloaded, describe, describe_reload, simulate_timeline
from sopdsl.dryrun.simulate import simulate as run_simulation
from sopdsl.dryrun.testing import fixture_versions, playbook_for, run_tests
from sopdsl.dryrun.timeline import is_jsonl, open_timeline
from sopdsl.dryrun.why import explain as explain_member
from sopdsl.engine.actions import Action, iso
from sopdsl.errors import FixtureError, ParseError
from sopdsl.live.command import run_command
from sopdsl.plan import Plan, timeutil
from sopdsl.plan.agenda import agenda, to_ics
from sopdsl.plan.analysis import analyse
from sopdsl.plan.compiler import compile_program
from sopdsl.source import Source
from sopdsl.syntax.formatter import format_source
from sopdsl.syntax.loader import discover_rooted, display_path, load, read_source

if TYPE_CHECKING:
    pass

EXIT_OK = 0
EXIT_FOUND = 1
EXIT_USAGE = 2


def _exist(paths: tuple[str, ...]) -> None:
    """A usage error naming the paths given that do not exist."""
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise click.UsageError(f"no such file or folder: {', '.join(missing)}")


def _paths(paths: tuple[str, ...]) -> list[tuple[Path, Path | None]]:
    """The .sop files named or found in folders, each with the folder it was found in (or None)."""
    _exist(paths)
    files = discover_rooted(paths)
    if not files:
        raise click.UsageError(f"no .sop files found in {', '.join(paths)}")
    return files


def _root_option(command: Callable[..., None]) -> Callable[..., None]:
    """`--root DIR`: the project folder that includes and `file` templates must stay inside."""
    return click.option(
        "--root",
        type=click.Path(exists=True, file_okay=False),
        default=None,
        help="Project folder: includes and `file` templates may only name files inside it "
        "(default: the folder of each file given, or the folder given).",
    )(command)


def _root(root: str | None) -> Path | None:
    return Path(root) if root is not None else None


def _echo_diagnostics(diagnostics: list[tuple[Diagnostic, Source | None]]) -> None:
    for diagnostic, source in diagnostics:
        click.echo(render(diagnostic, source), err=False)
        click.echo("")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sopdsl")
def main() -> None:
    """sopdsl: community-operations SOPs as playbook files that are checked, compiled and dry-run."""


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", help="Output format.")
@_root_option
def check(paths: tuple[str, ...], fmt: str, root: str | None) -> None:
    """Check playbook files (folders are searched for .sop files); each file is checked with its includes."""
    files: list[tuple[Path, Path | None]] = []
    known: set[str] = set()
    for path, folder in _paths(paths):
        # A file named twice (or inside a folder also named) is checked once.
        if os.path.realpath(path) not in known:
            known.add(os.path.realpath(path))
            files.append((path, folder))
    found: list[tuple[Diagnostic, Source | None]] = []
    seen: set[tuple[str, str, int, int, str]] = set()
    for path, folder in files:
        loaded = load(path, _root(root) or folder)
        result = check_program(loaded)
        diagnostics = list(result.diagnostics)
        if result.program is not None:
            # Loops, content mix and cap overruns only show once the plan exists.
            diagnostics.extend(analyse(compile_program(result.program, relative=False), loaded.sources))
        for d in diagnostics:
            # A file included by several of the files checked is reported once, not once per includer.
            key = (d.code, d.span.path, d.span.line, d.span.column, d.message)
            if key not in seen:
                seen.add(key)
                found.append((d, loaded.sources.get(d.span.path)))
    errors = sum(d.is_error for d, _ in found)
    warnings = len(found) - errors
    if fmt == "json":
        payload = {
            "files": len(files),
            "errors": errors,
            "warnings": warnings,
            "diagnostics": [d.to_json() for d, _ in found],
        }
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
    else:
        _echo_diagnostics(found)
        summary = f"checked {len(files)} file(s): {errors} error(s), {warnings} warning(s)"
        click.echo(summary, err=True)
    sys.exit(EXIT_FOUND if errors else EXIT_OK)


@main.command()
@click.argument("code")
def explain(code: str) -> None:
    """Explain a diagnostic code, such as SOP104."""
    entry = CODES.get(code.upper())
    if entry is None:
        raise click.UsageError(f"unknown code '{code}'; codes look like SOP104")
    click.echo(f"{entry.code}: {entry.title}\n\n{entry.explanation}")


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--check", "check_only", is_flag=True, help="List files that need formatting; change nothing.")
def fmt(paths: tuple[str, ...], check_only: bool) -> None:
    """Rewrite playbook files in the canonical layout, keeping every comment."""
    files = _paths(paths)
    unformatted: list[str] = []
    problems: list[tuple[Diagnostic, Source | None]] = []
    for path, _ in files:
        shown = display_path(path)
        source = read_source(path, shown)
        if isinstance(source, Diagnostic):
            problems.append((source, None))
            continue
        try:
            result = format_source(source)
        except ParseError as exc:
            problems.extend((d, source) for d in exc.diagnostics)
            continue
        if result != source.text:
            unformatted.append(shown)
            if not check_only:
                path.write_text(result, encoding="utf-8")
    _echo_diagnostics(problems)
    for shown in unformatted:
        click.echo(f"{'would reformat' if check_only else 'reformatted'} {shown}")
    if problems or (check_only and unformatted):
        sys.exit(EXIT_FOUND)
    sys.exit(EXIT_OK)


def build_plan(paths: tuple[str, ...], root: Path | None = None) -> Plan:
    """Check and compile the given files and folders into one plan, or exit 1 after printing
    diagnostics (for commands: `sopdsl run` reads its playbooks with it too). `root`: the project
    folder, by default the folder given or each file's own."""
    files = _paths(paths)
    return _plan_of([f for f, _ in files], [], root, {f: r for f, r in files if r is not None})


def _plan_of(
    files: list[Path],
    asked: list[tuple[Diagnostic, Source | None]],
    root: Path | None = None,
    roots: dict[Path, Path] | None = None,
) -> Plan:
    """Check and compile playbook files into one plan, or exit 1 after printing `asked` (what named
    the files) and their diagnostics."""
    build = compile_files(files, root, roots=roots)
    if build.plan is None:
        _echo_diagnostics([*asked, *build.located()])
        sys.exit(EXIT_FOUND)
    for d in build.analysis:  # warnings only, since the plan compiled
        click.echo(render(d, build.sources.get(d.span.path)) + "\n", err=True)
    return build.plan


def _versions(fixture: Fixture, path: Path, source: Source, root: Path | None) -> dict[tuple[str, ...], Plan]:
    """The plans a fixture's `reload` entries load, built as the main plan is (or exit 1)."""
    versions = fixture_versions(fixture, path, source, lambda files, asked: _plan_of(files, asked, root))
    assert isinstance(versions, dict)  # `_plan_of` exits on the first that does not check
    return versions


@main.command(name="compile")
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), required=True, help="Where to write plan.json."
)
@_root_option
def compile_command(paths: tuple[str, ...], output: str, root: str | None) -> None:
    """Compile playbook files into one executable plan (JSON with a format version and content hash)."""
    plan = build_plan(paths, _root(root))
    Path(output).write_text(plan.dumps(), encoding="utf-8")
    click.echo(f"wrote {output}: {len(plan.playbooks)} playbook(s), hash {plan.content_hash[:12]}")


@main.command()
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
@_root_option
def simulate(paths: tuple[str, ...], timeline: str, fmt: str, explain: bool, root: str | None) -> None:
    """Dry-run playbooks over a timeline and print the action log."""
    plan = build_plan(paths, _root(root))
    out = sys.stdout.buffer
    path = Path(timeline)
    if not is_jsonl(path):
        fixture, source = _fixture_or_exit(path)
        versions = _versions(fixture, path, source, _root(root))
        zone_name = fixture.timezone or plan.program.timezone
        write = _action_writer(out, fmt, explain, zone_name, plan, *versions.values())
        write_reload = _reload_writer(out, fmt, zone_name)
        for entry in run_simulation(plan, fixture, versions=versions).log():
            if isinstance(entry, Reloaded):
                write_reload(entry)
            else:
                write(entry)
        out.flush()
        return
    try:
        stream = open_timeline(path, display_path(path), plan.program.timezone)
    except FixtureError as exc:
        _echo_diagnostics([(d, None) for d in exc.diagnostics])
        sys.exit(EXIT_FOUND)
    write = _action_writer(out, fmt, explain, stream.header.timezone, plan)
    # A bar only for runs long enough to wait for, and only on a terminal (click would still
    # print its label to a pipe).
    size = stream.size or 0
    shown = size >= _PROGRESS_BYTES and sys.stderr.isatty()
    bar = click.progressbar(length=size, label="simulating", file=sys.stderr, width=30)
    done = 0

    def progress(read: int) -> None:
        nonlocal done
        bar.update(read - done)
        done = read

    try:
        simulate_timeline(plan, stream, write, progress if shown else None)
    except FixtureError as exc:
        out.flush()
        if shown:
            bar.render_finish()
        # The log so far stands; the problems go to stderr so a JSONL log stays parseable.
        for diagnostic in exc.diagnostics:
            click.echo(render(diagnostic, None) + "\n", err=True)
        sys.exit(EXIT_FOUND)
    finally:
        stream.close()
    if shown:
        bar.render_finish()
    out.flush()


_PROGRESS_BYTES = 1 << 20


@main.command()
@click.argument("member")
@click.argument("paths", nargs=-1)
@click.option(
    "--timeline", type=click.Path(exists=True, dir_okay=False), required=True, help="Fixture timeline (YAML)."
)
@click.option("--playbook", "playbook", default=None, help="Only this playbook (by name).")
@_root_option
def why(member: str, paths: tuple[str, ...], timeline: str, playbook: str | None, root: str | None) -> None:
    """Say why MEMBER got, or did not get, each playbook's actions in a dry run.

    PATHS default to the fixture's own playbook."""
    path = Path(timeline)
    fixture, source = _fixture_or_exit(path)
    if not paths:
        own = playbook_for(fixture, path)
        if not own.exists():
            raise click.UsageError(
                f"{timeline} has no playbook beside it ({display_path(own)} does not exist): "
                "name the playbook files after the member, or set `playbook:` in the fixture"
            )
        paths = (str(own),)
    plan = build_plan(paths, _root(root))
    versions = _versions(fixture, path, source, _root(root))
    for line in explain_member(plan, fixture, member, playbook, versions):
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
        (c.playbook.name, c.playbook.loc.rpartition(":")[0]): c.playbook.version
        for each in (plan, *reloaded)
        for c in each.playbooks
        if c.playbook.version
    }

    def version_of(action: Action) -> str | None:
        return versions.get((action.playbook, action.loc.rpartition(":")[0]))

    encode = msgspec.json.Encoder(order="sorted").encode
    if fmt == "jsonl":

        def write_json(action: Action) -> None:
            data = action.to_json(tz)
            if explain:
                data["explain"] = {"line": action.loc, "trigger": action.trigger}
                if version_of(action):
                    data["explain"]["version"] = version_of(action)
            try:
                out.write(encode(data) + b"\n")
            except (msgspec.EncodeError, TypeError):  # a value msgspec does not know: stdlib's form
                out.write((json.dumps(data, ensure_ascii=False, sort_keys=True, default=str) + "\n").encode())

        return write_json

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
                "at": iso(reload.time, tz),
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


def _fixture_or_exit(path: Path) -> tuple[Fixture, Source]:
    try:
        fixture, source = load_fixture(path, display_path(path))
    except FixtureError as exc:
        source = Source(display_path(path), path.read_text(encoding="utf-8", errors="replace"))
        _echo_diagnostics([(d, source) for d in exc.diagnostics])
        sys.exit(EXIT_FOUND)
    return fixture, source


def find_fixtures(paths: tuple[str, ...]) -> list[Path]:
    """Fixture files (`*.yaml`, `*.yml`) in the given folders, or beside the given `.sop` files."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*.y*ml") if p.suffix in (".yaml", ".yml")))
        elif path.suffix == ".sop":
            found.extend(sorted(p for p in path.parent.glob(path.stem + "*.y*ml")))
        elif path.suffix in (".yaml", ".yml"):
            found.append(path)
    return sorted(set(found))


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", help="Output format.")
@click.option("--junit", type=click.Path(dir_okay=False), help="Also write a JUnit XML report here.")
@_root_option
def test(paths: tuple[str, ...], fmt: str, junit: str | None, root: str | None) -> None:
    """Run every fixture found and check its expectations. Exit 0 all pass, 1 failures, 2 errors."""
    _exist(paths)
    fixtures = find_fixtures(paths)
    if not fixtures:
        raise click.UsageError(f"no fixture timelines (*.yaml) found in {', '.join(paths)}")
    report = run_tests(fixtures, _root(root))
    if fmt == "json":
        click.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        for line in report.lines():
            click.echo(line)
    if junit:
        Path(junit).write_text(report.junit(), encoding="utf-8")
    sys.exit(report.exit_code)


@main.command(name="plan")
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--from",
    "start",
    required=True,
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="First day (YYYY-MM-DD).",
)
@click.option(
    "--to",
    "end",
    required=True,
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Day after the last (YYYY-MM-DD).",
)
@click.option("--ics", type=click.Path(dir_okay=False), help="Also write the calendar as an iCalendar file.")
@_root_option
def plan_command(
    paths: tuple[str, ...], start: dt.datetime, end: dt.datetime, ics: str | None, root: str | None
) -> None:
    """Print every scheduled send per declared group in a date range (the group calendar, 群日历)."""
    if end <= start:
        raise click.UsageError("--to must be after --from")
    plan = build_plan(paths, _root(root))
    slots = agenda(plan, start.date(), end.date())
    zones = {g.name: timeutil.zone(g.timezone or plan.program.timezone) for g in plan.program.groups.values()}
    for slot in slots:
        when = dt.datetime.fromtimestamp(slot.time, zones[slot.group]).strftime("%Y-%m-%d %a %H:%M")
        click.echo(f"{when}  {slot.group:<16} {slot.playbook:<20} {slot.what}")
    if not slots:
        click.echo("no scheduled entries for the declared groups in this range", err=True)
    if ics:
        Path(ics).write_text(to_ics(slots, plan), encoding="utf-8", newline="")
        click.echo(f"wrote {ics}: {len(slots)} event(s)", err=True)


main.add_command(run_command)  # `sopdsl run`: the engine as a service (sopdsl/live/service.py)
