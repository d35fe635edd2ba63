"""Source text and spans: where in which file a piece of syntax came from.

Input: a path and its text. Output: `Source` (with line lookup) and `Span` values that every
later stage carries, so a diagnostic can always point at the user's text.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

_NEWLINE = re.compile("\n")


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open character range in one source, with 1-based line and column of both ends."""

    path: str
    start: int
    end: int
    line: int
    column: int
    end_line: int
    end_column: int

    @staticmethod
    def point(path: str, line: int = 1, column: int = 1) -> Span:
        """A zero-width span, for diagnostics about a whole file or a missing thing."""
        return Span(path, 0, 0, line, column, line, column)


@dataclass(frozen=True, slots=True)
class Source:
    """One file's text, as the user wrote it."""

    path: str
    text: str
    _line_starts: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # A regex scan, not a Python loop over characters: a 5 MB file must not stall here.
        starts = [0, *(m.end() for m in _NEWLINE.finditer(self.text))]
        object.__setattr__(self, "_line_starts", tuple(starts))

    def line_text(self, line: int) -> str:
        """The text of a 1-based line, without its line ending (LF or CRLF)."""
        if not 1 <= line <= len(self._line_starts):
            return ""
        start = self._line_starts[line - 1]
        end = self.text.find("\n", start)
        return self.text[start : end if end >= 0 else len(self.text)].removesuffix("\r")

    def line_start(self, line: int) -> int:
        """The character offset where a 1-based line begins."""
        return self._line_starts[max(0, min(line, len(self._line_starts)) - 1)]

    def position(self, offset: int) -> tuple[int, int]:
        """The 1-based (line, column) of a character offset."""
        offset = max(0, min(offset, len(self.text)))
        index = bisect.bisect_right(self._line_starts, offset) - 1
        return index + 1, offset - self._line_starts[index] + 1

    def span(self, start: int, end: int) -> Span:
        """The span of a character range of this source."""
        line, column = self.position(start)
        end_line, end_column = self.position(end)
        return Span(self.path, start, end, line, column, end_line, end_column)
