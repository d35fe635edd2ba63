"""The command line: a thin shell over the staged API.

Exit codes (the same for every command):

| code | meaning |
|------|---------|
| 0 | clean: no errors (warnings may be printed) |
| 1 | diagnostics with errors were found, files need formatting, or tests failed |
| 2 | usage error: bad options or arguments, or a path that does not exist |

Start-up is kept short: this module imports only click, and each command's module is imported
when that command runs (`COMMANDS`), so `sopdsl --version` loads no parser, `sopdsl check` no
engine, and `sopdsl --help` lists every command from the one-line help kept here
(tests/cli/test_startup.py checks both against the real commands).
"""

from __future__ import annotations

import datetime as dt
import gc
import importlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import click

from sopdsl import __version__

if TYPE_CHECKING:
    from sopdsl.diagnostics import Diagnostic
    from sopdsl.plan import Plan
    from sopdsl.project import Project
    from sopdsl.source import Source

EXIT_OK = 0
EXIT_FOUND = 1
EXIT_USAGE = 2


class LazyCommand(NamedTuple):
    """Where a command is (`module:attribute`) and its one-line help, shown by `sopdsl --help`."""

    target: str
    help: str


COMMANDS: dict[str, LazyCommand] = {
    "check": LazyCommand(
        "sopdsl.cli_check:check",
        "Check playbook files (folders are searched for .sop files); each file is checked with its includes.",
    ),
    "compile": LazyCommand(
        "sopdsl.cli_dryrun:compile_command",
        "Compile playbook files into one executable plan (JSON with a format version and content hash).",
    ),
    "explain": LazyCommand("sopdsl.cli_check:explain", "Explain a diagnostic code, such as SOP104."),
    "fmt": LazyCommand(
        "sopdsl.cli_check:fmt", "Rewrite playbook files in the canonical layout, keeping every comment."
    ),
    "lsp": LazyCommand(
        "sopdsl.lsp.command:lsp_command",
        "Serve the Language Server Protocol on stdin/stdout: diagnostics, completion, formatting, hover.",
    ),
    "plan": LazyCommand(
        "sopdsl.cli_plan:plan_command",
        "Print every scheduled send per group in a date range (the group calendar, 群日历), with its channel and the caps that count it.",
    ),
    "report": LazyCommand(
        "sopdsl.cli_report:report",
        "Dry-run playbooks over a timeline and report its figures as one HTML page (or JSON).",
    ),
    "run": LazyCommand(
        "sopdsl.live.command:run_command",
        "Run playbooks live: events over HTTP (POST /events) and stdin, timers, executors, /health, /metrics.",
    ),
    "schema": LazyCommand(
        "sopdsl.cli_schema:schema",
        "Print the JSON Schema of a file format: `fixture` (dry-run fixture timelines).",
    ),
    "simulate": LazyCommand(
        "sopdsl.cli_dryrun:simulate", "Dry-run playbooks over a timeline and print the action log."
    ),
    "test": LazyCommand(
        "sopdsl.cli_dryrun:test",
        "Run every fixture found and check its expectations. Exit 0 all pass, 1 failures, 2 errors.",
    ),
    "why": LazyCommand(
        "sopdsl.cli_dryrun:why", "Say why MEMBER got, or did not get, each playbook's actions in a dry run."
    ),
}


def load_command(name: str, *, freeze: bool = False) -> click.Command:
    """Import the module of one command of `COMMANDS` and return the command.

    Importing it makes tens of thousands of objects (classes, functions, tables) that live as
    long as the process; the cyclic collector, set off again and again, would walk them all each
    time, and once more as the process exits (together about 30 ms of `sopdsl check`). So it
    waits until the import is done, and with `freeze` (the command line's own process, see
    `LazyGroup.__call__`) what the import made is moved where no collection looks (`gc.freeze`).
    """
    module, _, attribute = COMMANDS[name].target.partition(":")
    collecting = gc.isenabled()
    gc.disable()
    try:
        imported = importlib.import_module(module)
        if freeze:
            gc.freeze()
    finally:
        if collecting:
            gc.enable()
    command = getattr(imported, attribute)
    assert isinstance(command, click.Command), f"{COMMANDS[name].target} is not a click command"
    return command


class LazyGroup(click.Group):
    """A group whose commands (`COMMANDS`) are imported by name when first used."""

    # Whether this group runs as the whole process (`sopdsl`, `python -m sopdsl`), which call it,
    # rather than inside another program (click's CliRunner calls `main`): then what a command's
    # import makes is frozen for the collector (see `load_command`).
    whole_process = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.whole_process = True
        return super().__call__(*args, **kwargs)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            self.add_command(load_command(cmd_name, freeze=self.whole_process), cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of `--help`, from the one-line help in `COMMANDS` (nothing imported)."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            loaded = self.commands.get(name)
            command = loaded or click.Command(name, help=COMMANDS[name].help)
            if not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sopdsl")
def main() -> None:
    """sopdsl: community-operations SOPs as playbook files that are checked, compiled and dry-run."""


# ---- helpers shared by the commands -------------------------------------------------------------


def write_output(path: str | Path, data: str | bytes) -> None:
    """Write a command's output file (UTF-8 text, or bytes); one it cannot write is a usage
    error naming the file and why (a missing folder, no permission), not a traceback."""
    target = Path(path)
    try:
        if isinstance(data, bytes):
            target.write_bytes(data)
        else:
            target.write_text(data, encoding="utf-8")
    except OSError as exc:
        raise click.UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


def require_existing(paths: tuple[str, ...]) -> None:
    """A usage error naming the paths given that do not exist."""
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise click.UsageError(f"no such file or folder: {', '.join(missing)}")


def playbook_files(paths: tuple[str, ...]) -> list[tuple[Path, Path | None]]:
    """The .sop files named or found in folders, each with the folder it was found in (or None)."""
    from sopdsl.syntax.loader import discover_rooted

    require_existing(paths)
    files = discover_rooted(paths)
    if not files:
        raise click.UsageError(f"no .sop files found in {', '.join(paths)}")
    return files


def project_of(paths: tuple[str, ...]) -> Project | None:
    """The project (sopdsl.toml) the folders given belong to, or the project file given itself;
    None when only files are named or no folder is in a project. A broken project file exits 1
    after its diagnostics."""
    from sopdsl.project import FILE_NAME, find_project
    from sopdsl.syntax.loader import display_path

    places = [Path(p) for p in paths if Path(p).is_dir() or Path(p).name == FILE_NAME]
    found = {find_project(p if p.is_dir() else p.parent) for p in places} - {None}
    if not found:
        return None
    if len(found) > 1:
        shown = ", ".join(sorted(display_path(p) for p in found if p is not None))
        raise click.UsageError(f"the folders given belong to different projects: {shown}")
    path = found.pop()
    assert path is not None
    return open_project(path)


def open_project(path: Path) -> Project:
    """Read a project file, or exit 1 after its diagnostics."""
    import sys

    from sopdsl.project import ProjectError, load_project
    from sopdsl.source import Source
    from sopdsl.syntax.loader import display_path

    try:
        return load_project(path, display_path(path))
    except ProjectError as exc:
        text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
        echo_diagnostics([(d, Source(display_path(path), text)) for d in exc.diagnostics])
        sys.exit(EXIT_FOUND)


def project_files(project: Project, paths: tuple[str, ...]) -> list[Path]:
    """The playbook files a command reads in a project: the deployable set inside the folders
    given (all of it for the project file), and any .sop file named."""
    folders = [Path(p) if Path(p).is_dir() else project.root for p in paths if not p.endswith(".sop")]
    named = [Path(p) for p in paths if p.endswith(".sop") and Path(p).is_file()]
    chosen = project.within(folders)
    return [*chosen, *(f for f in named if f.resolve() not in chosen)]


def root_option(command: Callable[..., None]) -> Callable[..., None]:
    """`--root DIR`: the project folder that includes and `file` templates must stay inside."""
    return click.option(
        "--root",
        type=click.Path(exists=True, file_okay=False),
        default=None,
        help="Project folder: includes and `file` templates may only name files inside it "
        "(default: the folder of each file given, or the folder given).",
    )(command)


class Day(click.ParamType[dt.date]):
    """A day written YYYY-MM-DD and only so, for every command's day options (`date.fromisoformat`
    also reads `20260302` and week dates such as `2026-W10-1`, which an operator never means)."""

    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dt.date:
        """The day, or a usage error saying in words why `value` is none."""
        if isinstance(value, dt.date):
            return value
        text = str(value).strip()
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
            self.fail(f"'{text}' is not a day: write it YYYY-MM-DD, like 2026-03-01", param, ctx)
        try:
            return dt.date.fromisoformat(text)
        except ValueError as exc:
            self.fail(f"'{text}' is not a day: no such day ({exc})", param, ctx)


DAY = Day()


def root_path(root: str | None) -> Path | None:
    return Path(root) if root is not None else None


def echo_diagnostics(diagnostics: list[tuple[Diagnostic, Source | None]]) -> None:
    from sopdsl.diagnostics import render

    for diagnostic, source in diagnostics:
        click.echo(render(diagnostic, source), err=False)
        click.echo("")


def build_plan(paths: tuple[str, ...], root: Path | None = None) -> Plan:
    """Check and compile the given files and folders into one plan, or exit 1 after printing
    diagnostics (for commands: `sopdsl run` reads its playbooks with it too). `root`: the project
    folder, by default the folder given or each file's own."""
    from sopdsl.cli_dryrun import build_plan as build

    return build(paths, root)
