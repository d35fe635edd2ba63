"""Diagnostics → GitHub Actions workflow commands (`::error file=…,line=…::message`), which a
workflow run shows as annotations on the pull request's lines.

Input: diagnostics and the folder paths are made relative to (the workspace). Output: one
command line per diagnostic, escaped as the Actions runner unescapes them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from sopdsl.diagnostics import Diagnostic
from sopdsl.reporting.sarif import relative_path


def workflow_commands(diagnostics: Sequence[Diagnostic], base: Path) -> Iterator[str]:
    """One `::error` or `::warning` command per diagnostic, its file relative to `base`."""
    for d in diagnostics:
        span = d.span
        properties = {
            "file": relative_path(span.path, base) or span.path,
            "line": str(max(span.line, 1)),
            "col": str(max(span.column, 1)),
        }
        if span.end_line > span.line:
            properties["endLine"] = str(span.end_line)
        elif span.end_line == span.line and span.end_column > span.column:
            # GitHub takes an end column only on an annotation of one line.
            properties["endColumn"] = str(span.end_column)
        properties["title"] = d.code
        text = d.message + (f"\nhint: {d.hint}" if d.hint else "")
        listed = ",".join(f"{key}={escape_property(value)}" for key, value in properties.items())
        yield f"::{d.severity.value} {listed}::{escape_data(text)}"


def escape_data(text: str) -> str:
    """A command's message as the runner reads it back: `%`, CR and LF percent-encoded."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A command's property value: as a message, and `:` and `,` too, which end a value."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")
