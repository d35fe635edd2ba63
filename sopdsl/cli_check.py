"""`sopdsl check`, `sopdsl fmt` and `sopdsl explain`: the front end only (no engine, no dry run).

Imported when one of these commands runs (see `sopdsl.cli.COMMANDS`).
"""

from __future__ import annotations

import difflib
import json
import os
import sys
from pathlib import Path
from typing import NoReturn

import click

from sopdsl.checker import check_program
from sopdsl.cli import (
    EXIT_FOUND,
    EXIT_OK,
    echo_diagnostics,
    playbook_files,
    project_files,
    project_of,
    root_option,
    root_path,
    write_output,
)
from sopdsl.diagnostics import CODES, Diagnostic, render
from sopdsl.errors import ParseError
from sopdsl.plan.analysis import analyse
from sopdsl.plan.compiler import compile_program
from sopdsl.source import Source
from sopdsl.syntax.loader import display_path, load, read_source
from sopdsl.textfiles import decode


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "sarif", "github"]),
    default="text",
    help="Output format: text; json for editors; sarif for code scanning; github for workflow annotations.",
)
@root_option
def check(paths: tuple[str, ...], fmt: str, root: str | None) -> None:
    """Check playbook files (folders are searched for .sop files); each file is checked with its
    includes. In a project (sopdsl.toml), its deployable set is also checked as one plan."""
    from sopdsl.build import compile_project
    from sopdsl.project import FILE_NAME

    project = project_of(paths)
    plain = tuple(p for p in paths if Path(p).name != FILE_NAME)
    listed = playbook_files(plain) if plain else []
    if project is not None and len(plain) < len(paths):
        listed += [(f, project.root) for f in project.files]
    files: list[tuple[Path, Path | None]] = []
    known: set[str] = set()
    for path, folder in listed:
        # A file named twice (or inside a folder also named) is checked once.
        if os.path.realpath(path) not in known:
            known.add(os.path.realpath(path))
            files.append((path, folder))
    found: list[tuple[Diagnostic, Source | None]] = []
    seen: set[tuple[str, str, int, int, str]] = set()
    for path, folder in files:
        loaded = load(path, root_path(root) or folder)
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
    if project is not None:
        deployed = project_files(project, paths)
        if deployed:
            # Together, files that each check clean can clash: names declared twice, a content
            # mix or a cap over every group's calendars.
            build = compile_project(project, deployed)
            for d in build.diagnostics:
                key = (d.code, d.span.path, d.span.line, d.span.column, d.message)
                if key not in seen:
                    seen.add(key)
                    found.append((d, build.sources.get(d.span.path)))
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
    elif fmt == "sarif":
        from sopdsl.reporting.sarif import to_sarif

        click.echo(json.dumps(to_sarif([d for d, _ in found], Path.cwd()), ensure_ascii=False, indent=2))
    elif fmt == "github":
        from sopdsl.reporting.annotations import workflow_commands

        for command in workflow_commands([d for d, _ in found], Path.cwd()):
            click.echo(command)
        click.echo(f"checked {len(files)} file(s): {errors} error(s), {warnings} warning(s)", err=True)
    else:
        echo_diagnostics(found)
        summary = f"checked {len(files)} file(s): {errors} error(s), {warnings} warning(s)"
        click.echo(summary, err=True)
    sys.exit(EXIT_FOUND if errors else EXIT_OK)


@click.command()
@click.argument("code")
def explain(code: str) -> None:
    """Explain a diagnostic code, such as SOP104."""
    entry = CODES.get(code.upper())
    if entry is None:
        raise click.UsageError(f"unknown code '{code}'; codes look like SOP104")
    click.echo(f"{entry.code}: {entry.title}\n\n{entry.explanation}")


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--check", "check_only", is_flag=True, help="List files that need formatting; change nothing.")
@click.option(
    "--diff", is_flag=True, help="Print what formatting would change as a unified diff; change nothing."
)
def fmt(paths: tuple[str, ...], check_only: bool, diff: bool) -> None:
    """Rewrite playbook files in the canonical layout, keeping every comment.

    `-` reads a playbook from standard input and writes it formatted to standard output.
    Exit 1 on a syntax error, or with --check or --diff when something would change."""
    from sopdsl.syntax.formatter import format_source  # only here: `check` does not need it

    if "-" in paths:
        if len(paths) > 1:
            raise click.UsageError("`-` (standard input) cannot be mixed with file names")
        _fmt_stdin(check_only, diff)
    files = playbook_files(paths)
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
            if diff:
                click.echo(unified_diff(source.text, result, shown), nl=False)
            elif not check_only:
                write_output(path, result)
    echo_diagnostics(problems)
    if not diff:
        for shown in unformatted:
            click.echo(f"{'would reformat' if check_only else 'reformatted'} {shown}")
    if problems or ((check_only or diff) and unformatted):
        sys.exit(EXIT_FOUND)
    sys.exit(EXIT_OK)


STDIN = "<stdin>"


def _fmt_stdin(check_only: bool, diff: bool) -> NoReturn:
    """`sopdsl fmt -`: standard input formatted to standard output (an editor's or a hook's
    filter), or with --check / --diff only said or shown; a mistake is located in `<stdin>`."""
    from sopdsl.syntax.formatter import format_source

    source = decode(STDIN, sys.stdin.buffer.read())
    if isinstance(source, Diagnostic):
        click.echo(render(source, None), err=True)
        sys.exit(EXIT_FOUND)
    try:
        result = format_source(source)
    except ParseError as exc:
        for d in exc.diagnostics:
            click.echo(render(d, source) + "\n", err=True)
        sys.exit(EXIT_FOUND)
    changed = result != source.text
    if diff:
        click.echo(unified_diff(source.text, result, STDIN), nl=False)
    elif check_only:
        if changed:
            click.echo(f"would reformat {STDIN}")
    else:
        click.echo(result, nl=False)
    sys.exit(EXIT_FOUND if changed and (check_only or diff) else EXIT_OK)


def unified_diff(before: str, after: str, shown: str) -> str:
    """What formatting changes in one file, as `diff -u` (and `git diff`) print it."""
    # `a/` and `b/` as git writes them, so `git apply` and `patch -p1` take it from the folder
    # the paths are relative to; an absolute path is written as it is.
    before_name, after_name = (shown, shown) if Path(shown).is_absolute() else (f"a/{shown}", f"b/{shown}")
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), before_name, after_name
    )
    # A last line without a newline would run into the next header; say so as diff does.
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )
