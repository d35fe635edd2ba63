"""`sopdsl check`, `sopdsl fmt` and `sopdsl explain`: the front end only (no engine, no dry run).

Imported when one of these commands runs (see `sopdsl.cli.COMMANDS`).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from sopdsl.checker import check_program
from sopdsl.cli import EXIT_FOUND, EXIT_OK, echo_diagnostics, playbook_files, root_option, root_path
from sopdsl.diagnostics import CODES, Diagnostic
from sopdsl.errors import ParseError
from sopdsl.plan.analysis import analyse
from sopdsl.plan.compiler import compile_program
from sopdsl.source import Source
from sopdsl.syntax.loader import display_path, load, read_source


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", help="Output format.")
@root_option
def check(paths: tuple[str, ...], fmt: str, root: str | None) -> None:
    """Check playbook files (folders are searched for .sop files); each file is checked with its includes."""
    files: list[tuple[Path, Path | None]] = []
    known: set[str] = set()
    for path, folder in playbook_files(paths):
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
def fmt(paths: tuple[str, ...], check_only: bool) -> None:
    """Rewrite playbook files in the canonical layout, keeping every comment."""
    from sopdsl.syntax.formatter import format_source  # only here: `check` does not need it

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
            if not check_only:
                path.write_text(result, encoding="utf-8")
    echo_diagnostics(problems)
    for shown in unformatted:
        click.echo(f"{'would reformat' if check_only else 'reformatted'} {shown}")
    if problems or (check_only and unformatted):
        sys.exit(EXIT_FOUND)
    sys.exit(EXIT_OK)
