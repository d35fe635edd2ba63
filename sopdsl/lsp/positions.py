"""Spans to LSP positions and back.

Input: a document's text and a span (1-based line and column, in characters) or an LSP position.
Output: the other. LSP counts a line's characters in the code units the client and the server
agreed on at start-up, UTF-16 unless told otherwise, so a Chinese character counts one and an
emoji two; the front end counts code points.
"""

from __future__ import annotations

from collections.abc import Callable

from lsprotocol import types as lsp

from sopdsl.source import Source, Span

# How many of the agreed code units a string takes (pygls's `PositionCodec.client_num_units`).
Units = Callable[[str], int]


def position(source: Source, line: int, column: int, units: Units) -> lsp.Position:
    """The LSP position of a 1-based line and character column of `source`."""
    text = source.line_text(line)
    return lsp.Position(line=max(line - 1, 0), character=units(text[: max(column - 1, 0)]))


def span_range(source: Source, span: Span, units: Units) -> lsp.Range:
    """The LSP range of a span of `source`."""
    return lsp.Range(
        start=position(source, span.line, span.column, units),
        end=position(source, span.end_line, span.end_column, units),
    )


def column_of(line_text: str, character: int, units: Units) -> int:
    """The 0-based character index in `line_text` of an LSP `character` (in code units); a
    position inside a character's code units, or past the end, lands after it."""
    counted = 0
    for index, ch in enumerate(line_text):
        if counted >= character:
            return index
        counted += units(ch)
    return len(line_text)


def end_of(source: Source, units: Units) -> lsp.Position:
    """The LSP position just after the last character of `source`."""
    lines = source.text.split("\n")
    return lsp.Position(line=len(lines) - 1, character=units(lines[-1]))
