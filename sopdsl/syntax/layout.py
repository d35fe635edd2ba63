"""The formatter's rows of code made into text: source positions, comments, blank lines, alignment."""

from __future__ import annotations

import bisect
import dataclasses
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sopdsl.source import Source, Span
from sopdsl.syntax import nodes as n

if TYPE_CHECKING:
    from collections.abc import Iterator

INDENT = "    "


# ---- where things are in the source ---------------------------------------------------------


class _Locator:
    """Source positions: exact when the text is known, estimated from spans when it is not."""

    def __init__(self, file: n.File, source: Source | None) -> None:
        self.source = source
        self.comments = sorted(file.comments, key=lambda c: c.span.start)
        self._comment_ranges = [(c.span.start, c.span.end) for c in self.comments]
        # Without the text, lines and "is there code before this comment" come from node spans.
        known: dict[int, int] = {}
        if source is None:
            for span in _spans(file.declarations):
                known.setdefault(span.start, span.line)
                known.setdefault(span.end, span.end_line)
        self._code = sorted(known.items())
        self._code_positions = [p for p, _ in self._code]
        lines = dict(known)
        for comment in self.comments:
            lines.setdefault(comment.span.start, comment.span.line)
        self._lines = sorted(lines.items())
        self._line_positions = [p for p, _ in self._lines]

    def line(self, pos: int) -> int:
        """The 1-based line of a position."""
        if self.source is not None:
            return self.source.position(pos)[0]
        index = bisect.bisect_right(self._line_positions, pos) - 1
        return self._lines[index][1] if index >= 0 else 1

    def trailing(self, comment: n.Comment) -> bool:
        """Whether code precedes the comment on its line."""
        if self.source is not None:
            text = self.source.text
            line_start = text.rfind("\n", 0, comment.span.start) + 1
            return bool(text[line_start : comment.span.start].strip())
        index = bisect.bisect_right(self._code_positions, comment.span.start) - 1
        return index >= 0 and self._code[index][1] == comment.span.line

    def find(self, char: str, start: int, fallback: int, limit: int | None = None) -> int:
        """The first `char` at or after `start` and before `limit` outside comments, or `fallback`
        (also when the text is unknown). Callers search only stretches holding no string."""
        if self.source is None:
            return fallback
        text = self.source.text
        end = len(text) if limit is None else limit
        pos = start
        while True:
            found = text.find(char, pos, end)
            if found < 0:
                return fallback
            index = bisect.bisect_right(self._comment_ranges, (found, len(text) + 1)) - 1
            if index >= 0 and self._comment_ranges[index][0] <= found < self._comment_ranges[index][1]:
                pos = self._comment_ranges[index][1]
                continue
            return found

    def within(self, start: int, end: int) -> bool:
        """Whether a comment starts strictly between two positions."""
        return any(start < c.span.start < end for c in self.comments)


def _spans(value: object) -> Iterator[Span]:
    """Every span in a syntax tree."""
    if isinstance(value, Span):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _spans(getattr(value, f.name))
    elif isinstance(value, tuple):
        for item in value:
            yield from _spans(item)


# ---- lines of code --------------------------------------------------------------------------


@dataclass(slots=True)
class _Row:
    """One line of output code (several physical lines if it holds a text block)."""

    indent: int
    text: str
    start: int  # source position of its first token
    end: int  # source position after its last token
    opens: bool = False
    closes: bool = False
    leading: list[n.Comment] = field(default_factory=list)
    trailing: list[n.Comment] = field(default_factory=list)


# ---- comments, blank lines, text -----------------------------------------------------------


def _place_comments(rows: list[_Row], locator: _Locator) -> list[n.Comment]:
    """Attach each comment to a row (before it or at its end); return those left for the end."""
    starts = [row.start for row in rows]
    opener = _openers(rows)
    at_end: list[n.Comment] = []
    for comment in locator.comments:
        index = bisect.bisect_right(starts, comment.span.start) - 1
        if index >= 0 and locator.trailing(comment):
            # After a block opened and closed on its line (`if … { stop }  # …`), the comment
            # stays on that line: the row that opens the block, not the `}` a line of its own.
            line = comment.span.line
            while index in opener and locator.line(rows[opener[index]].start) == line:
                index = opener[index]
            rows[index].trailing.append(comment)
        elif index >= 0 and comment.span.start < rows[index].end:
            # Inside a line that reflowing joined: before that line.
            rows[index].leading.append(comment)
        elif index + 1 < len(rows):
            rows[index + 1].leading.append(comment)
        else:
            at_end.append(comment)
    for row in rows:
        if len(row.trailing) > 1:
            # A line ends in one comment; the others go above it, in source order.
            row.leading = sorted([*row.leading, *row.trailing[:-1]], key=lambda c: c.span.start)
            row.trailing = row.trailing[-1:]
    return at_end


def _openers(rows: list[_Row]) -> dict[int, int]:
    """For each row that closes a block (`}`, `} else {`), the row that opened it."""
    opener: dict[int, int] = {}
    stack: list[int] = []
    for index, row in enumerate(rows):
        if row.closes and stack:
            opener[index] = stack.pop()
        if row.opens:
            stack.append(index)
    return opener


@dataclass(slots=True)
class _Line:
    """A row or a comment line as written, with the source lines it came from."""

    lines: list[str]  # physical lines, indented
    first: int
    last: int
    indent: int = 0
    comment: str | None = None  # the trailing comment
    opens: bool = False
    closes: bool = False
    spacious: bool = False  # a blank line always comes before it
    blank: bool = False  # a blank line comes before it


def _comment_text(comment: n.Comment) -> str:
    # In a file with CRLF line ends the `\r` is part of the line end, not of the comment.
    return comment.text.removesuffix("\r")


def _render(rows: list[_Row], chunks: list[tuple[int, bool]], locator: _Locator) -> str:
    lines = _lines(rows, chunks, locator)
    previous: _Line | None = None
    for line in lines:
        line.blank = (
            previous is not None
            and not previous.opens
            and not line.closes
            and (line.spacious or line.first - previous.last >= 2)
        )
        previous = line
    _align(lines)
    out: list[str] = []
    for line in lines:
        if line.blank:
            out.append("")
        out.extend(line.lines)
    return "\n".join(out) + "\n" if out else ""


def _lines(rows: list[_Row], chunks: list[tuple[int, bool]], locator: _Locator) -> list[_Line]:
    at_end = _place_comments(rows, locator)
    spacious_rows = {chunks[k][0] for k in range(1, len(chunks)) if chunks[k][1] or chunks[k - 1][1]}
    lines: list[_Line] = []
    for i, row in enumerate(rows):
        spacious = i in spacious_rows
        comment_indent = INDENT * (row.indent + (1 if row.closes else 0))
        for comment in row.leading:
            line = comment.span.line
            lines.append(_Line([comment_indent + _comment_text(comment)], line, line, spacious=spacious))
            spacious = False
        last = locator.line(row.end)
        trailing = None
        if row.trailing:
            trailing = _comment_text(row.trailing[0])
            last = max(last, row.trailing[0].span.line)
        physical = _physical_lines(row)
        first = locator.line(row.start)
        lines.append(_Line(physical, first, last, row.indent, trailing, row.opens, row.closes, spacious))
    spacious = bool(chunks) and chunks[-1][1]
    for comment in at_end:
        line = comment.span.line
        lines.append(_Line([_comment_text(comment)], line, line, spacious=spacious))
        spacious = False
    return lines


def _align(lines: list[_Line]) -> None:
    """Put trailing comments at the end of their lines, lined up (two spaces after the longest
    code) within each run of consecutive one-line rows at one indentation that all have one."""
    run: list[_Line] = []
    for line in lines:
        if run and (line.comment is None or line.blank or line.indent != run[-1].indent):
            _line_up(run)
            run = []
        if line.comment is None:
            continue
        if len(line.lines) == 1:
            run.append(line)
        else:
            # After a text block's closing quotes: nothing to line up with.
            line.lines[-1] += "  " + line.comment
    _line_up(run)


def _line_up(run: list[_Line]) -> None:
    column = max((_width(line.lines[0]) for line in run), default=0) + 2
    for line in run:
        line.lines[0] += " " * (column - _width(line.lines[0])) + (line.comment or "")


def _width(text: str) -> int:
    # Editors show CJK characters two columns wide; count them so columns line up on screen.
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _physical_lines(row: _Row) -> list[str]:
    """A row's text as indented lines; lines after the first come from text blocks."""
    first, *rest = row.text.split("\n")
    inner = INDENT * (row.indent + 1)
    return [INDENT * row.indent + first, *(inner + part if part else "" for part in rest)]
