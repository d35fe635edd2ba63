"""An analysis's diagnostics as LSP diagnostics of the document.

Input: an `Analysis` and the agreed position units. Output: `lsprotocol` diagnostics, all on
the document: a mistake in an included file is shown on the `include` line that leads to it,
naming the file, line and column, with the exact place as related information (an editor shows
the include's own diagnostics when that file is opened itself).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import assert_never

from lsprotocol import types as lsp

from sopdsl.diagnostics import Diagnostic, Severity
from sopdsl.lsp.analysis import Analysis
from sopdsl.lsp.positions import Units, span_range
from sopdsl.source import Source, Span


def _severity(severity: Severity) -> lsp.DiagnosticSeverity:
    match severity:
        case Severity.ERROR:
            return lsp.DiagnosticSeverity.Error
        case Severity.WARNING:
            return lsp.DiagnosticSeverity.Warning
        case _:
            assert_never(severity)


def uri_of(path: str) -> str:
    """The `file:` URI of a path as diagnostics show it (relative ones are to the working folder)."""
    return Path(path).absolute().as_uri()


def _relative(path: str, document: str) -> str:
    """`path` as seen from the document's folder, as its `include` would name it."""
    try:
        return os.path.relpath(Path(path).absolute(), Path(document).absolute().parent)
    except ValueError:  # another drive on Windows
        return path


def lsp_diagnostics(analysis: Analysis, units: Units) -> list[lsp.Diagnostic]:
    """Every diagnostic of the analysis, placed in the document."""
    return [_placed(analysis, d, units) for d in analysis.diagnostics]


def _placed(analysis: Analysis, diagnostic: Diagnostic, units: Units) -> lsp.Diagnostic:
    span = diagnostic.span
    message = diagnostic.message + (f"\nhint: {diagnostic.hint}" if diagnostic.hint else "")
    related = None
    if span.path == analysis.path:
        where = span_range(analysis.source, span, units)
    else:
        elsewhere = analysis.loaded.sources.get(span.path) or Source(span.path, "")
        related = [
            lsp.DiagnosticRelatedInformation(
                location=lsp.Location(uri=uri_of(span.path), range=span_range(elsewhere, span, units)),
                message=diagnostic.message,
            )
        ]
        message = f"{_relative(span.path, analysis.path)}:{span.line}:{span.column}: {message}"
        include = analysis.include_leading_to(span.path)
        at = include.span if include is not None else Span.point(analysis.path)
        where = span_range(analysis.source, at, units)
    return lsp.Diagnostic(
        range=where,
        message=message,
        severity=_severity(diagnostic.severity),
        code=diagnostic.code,
        source="sopdsl",
        related_information=related,
    )
