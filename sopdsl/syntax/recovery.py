"""Parsing on after a syntax error: every broken declaration of a file reported in one run, and
the text to check the rest of it by.

Input: Lark's first `UnexpectedInput` of a file, the file and the parser (`lark_lalr`, which
sets how many errors and how many characters parsed again it allows). Output: the diagnostics,
and, when every declaration with an error is a playbook, the file with the broken ones blanked
and where those read without their broken lines are (`ParseError.partial`, `ParseError.mended`).
"""

from __future__ import annotations

import bisect
import re
from typing import TYPE_CHECKING

from lark import Token
from lark.exceptions import UnexpectedInput

from sopdsl.source import Source
from sopdsl.syntax.braces import declaration_starts, lines_of_one_declaration, plain_line
from sopdsl.syntax.expected import top_level_words
from sopdsl.syntax.lark_errors import translate
from sopdsl.syntax.spaces import (
    indentation_diagnostics,
    stray_in_code,
    stray_indentation,
    with_ordinary_spaces,
)

if TYPE_CHECKING:
    from lark import Lark

    from sopdsl.diagnostics import Diagnostic


def diagnose(
    exc: UnexpectedInput, source: Source, parser: Lark, most: int, budget: int
) -> tuple[list[Diagnostic], str | None, tuple[tuple[int, int], ...]]:
    """Every syntax error of a file that Lark stopped at (`exc`), as `_diagnose` finds them, and
    first every line indented with a space the grammar does not skip, and every such space in
    the middle of a line of code (`sopdsl.syntax.spaces`).

    Lark stops at the first such line, and parsing on past it finds the next only if the line
    opens and closes no block: an input method in full-width mode types them so. Each is
    told (the first `most`, then how many more), and the file, with ordinary spaces typed in
    their place, is parsed on for the mistakes that are not these: one of those is then the
    user's, never a spill-over of a stray space. That text, every declaration whole, is the one
    to check the rest by.
    """
    lines = sorted([*stray_indentation(source.text), *stray_in_code(source.text)])
    if not lines:
        return _diagnose(exc, source, parser, most, budget)
    told = indentation_diagnostics(source, lines, most)
    retyped = Source(source.path, with_ordinary_spaces(source.text, lines))
    try:
        parser.parse(retyped.text)
    except UnexpectedInput as again:
        # The other mistakes get their own `most`: a file indented so throughout would else hide them.
        found, cut, kept = _diagnose(again, retyped, parser, most, budget - len(retyped.text))
    else:
        found, cut, kept = [], retyped.text, ()
    return sorted([*told, *found], key=lambda d: d.span.start), cut, kept


def _diagnose(
    exc: UnexpectedInput, source: Source, parser: Lark, most: int, budget: int
) -> tuple[list[Diagnostic], str | None, tuple[tuple[int, int], ...]]:
    """The first syntax error's diagnostic, then those after it; when every declaration with one
    is a playbook, the text to check the rest by (else None), and where the playbooks in it are
    that were read with their broken lines blanked (`ParseError.mended`). At most `most`
    diagnostics, and `budget` characters parsed again in all.

    Lark's LALR parser stops at the first error. A line of statements that opens or closes no
    block is blanked (newlines kept, so every offset, line and column stays the user's) and the
    declaration parsed again, so a second mistake in one playbook shows too; if the parser then
    stops right after that line, the statement went on past it, and what it says is not another
    mistake: the declaration is left there. Each later declaration that opens a line (a keyword
    in column 1) is a safe place to start again, the text before it blanked. A file of several
    playbooks then shows every broken one at once, and the playbooks that parse are checked;
    one read whole but for its broken lines is kept in the text, the rest blanked.
    """
    found = [translate(exc, source, parser)]
    starts = declaration_starts(source.text, top_level_words(parser))
    text, at = source.text, _error_offset(exc, source.text)
    broken: list[tuple[int | None, int]] = []  # declarations left out: where each starts and ends
    mended: dict[int, int] = {}  # declarations read but for lines blanked: start to end
    stuck: int | None = None  # a declaration whose lines are no longer blanked one by one
    complete = False
    while True:
        owner = _owner(starts, at)
        line = _statement_line(text, at, owner) if owner != stuck else None
        if line is not None and owner is not None and len(text) - owner > budget:
            line = None  # short of budget: on to the next declaration, which costs less
        if line is not None:
            assert owner is not None  # a line is only blanked inside a declaration
            restart = owner
            mended[owner] = next((s for s in starts if s > owner), len(text))
            text = text[: line[0]] + _BLANK.sub(" ", text[line[0] : line[1]]) + text[line[1] :]
        else:
            after = next((s for s in starts if s >= at and (owner is None or s > owner)), None)
            broken.append((owner, len(text) if after is None else after))
            if owner is not None:
                mended.pop(owner, None)
            if after is None:
                complete = True
                break
            restart = after
        if len(found) >= most or len(text) - restart > budget:
            break
        budget -= len(text) - restart
        rest = Source(source.path, _BLANK.sub(" ", text[:restart]) + text[restart:])
        try:
            parser.parse(rest.text)
        except UnexpectedInput as again:
            next_at = _error_offset(again, rest.text)
            if line is not None and _ONLY_BLANKS.fullmatch(rest.text, line[1], next_at):
                # The statement went on past the blanked line: leave the declaration whole.
                at, stuck = line[0], owner
                continue
            # Translated against the blanked text: a `{` left open before `restart` is no longer
            # open there, so it is not blamed twice.
            found.append(translate(again, rest, parser))
            at = next_at
            continue
        complete = True
        break
    regions = [*broken, *mended.items()]
    if not complete or not all(_a_playbook(source.text, start, end) for start, end in regions):
        return found, None, ()
    cut = text  # its broken lines blanked
    for start, end in broken:
        assert start is not None  # `_a_playbook` holds
        cut = cut[:start] + _BLANK.sub(" ", cut[start:end]) + cut[end:]
    return found, cut, tuple(sorted(mended.items()))


def _owner(starts: list[int], at: int) -> int | None:
    """Where the declaration a syntax error at `at` belongs to starts (None: before any).

    An error met at a declaration's first word is the previous one's: it was still open."""
    index = bisect.bisect_left(starts, at) if at in starts else bisect.bisect_right(starts, at)
    return starts[index - 1] if index else None


def _statement_line(text: str, at: int, owner: int | None) -> tuple[int, int] | None:
    """The line of a syntax error at `at`, if it may be blanked to look further: a line after its
    declaration's first, opening and closing no block."""
    if owner is None or at >= len(text):
        return None
    start = text.rfind("\n", 0, at) + 1
    if start <= owner:
        return None
    end = text.find("\n", at)
    end = len(text) if end < 0 else end
    return (start, end) if plain_line(text[start:end]) else None


def _a_playbook(text: str, start: int | None, end: int) -> bool:
    """Whether `text[start:end]`, left out of the tree, is one playbook and nothing else."""
    if start is None or not text.startswith("playbook", start):
        return False
    return lines_of_one_declaration(text, start, end)


_ONLY_BLANKS = re.compile(r"(?:\s|#[^\n]*)*")
_BLANK = re.compile(r"[^\n]")


def _error_offset(exc: UnexpectedInput, text: str) -> int:
    """Where a parse error was met (Lark's end-of-file token borrows the last token's place)."""
    token = getattr(exc, "token", None)
    if isinstance(token, Token) and token.type == "$END":
        return len(text)
    if isinstance(token, Token) and token.start_pos is not None:
        return token.start_pos
    return exc.pos_in_stream or 0
