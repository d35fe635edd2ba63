"""Spaces that are not ordinary ones: named in words, and every line indented with them found.

Input: a `Source` (or one character and its span). Output: SOP101 diagnostics that name the
character by what ops call it and its code point, and the text with the ordinary space typed in
its place. `lark_errors` names the one Lark stopped at; `recovery` finds every line indented so,
and every one in the middle of code, in one run. No Lark here.
"""

from __future__ import annotations

import re
import unicodedata

from sopdsl.diagnostics import Diagnostic, Severity
from sopdsl.source import Source, Span

# Spaces that look like the ordinary one and are not, by what ops call them. U+3000 is what a
# Chinese input method types in full-width mode; the others come with text copied from a web page,
# a document or a chat.
SPACE_NAMES = {
    "\u3000": "full-width space",
    "\u00a0": "no-break space",
    "\u202f": "narrow no-break space",
    "\u200b": "zero-width space",
    "\ufeff": "zero-width no-break space",
    "\u2060": "zero-width word joiner",
}
_COPIED = "it usually comes with text copied from a web page, a document or a chat"
_HALF_WIDTH = "switch the input method to half-width 半角, or to English"

# A line's indentation: blanks, the invisible ones included. A stray one is any the grammar does
# not skip (it skips ' ', tab, form feed and carriage return: Lark's common.WS).
_INDENTATION = re.compile(r"^(?:[^\S\n]|[\u200b\u2060\ufeff])+", re.MULTILINE)
_STRAY = re.compile(r"[^\S\n\t\f\r ]|[\u200b\u2060\ufeff]")
# Only a long string spans lines: a line that starts inside one is text, where any space is fine.
# Single strings and comments are matched too, so a `"""` inside one starts nothing.
_STRING_OR_COMMENT = re.compile(r'"""[\s\S]*?"""|"(?:[^"\\\n]|\\.)*"|#[^\n]*')
# The same, and a quote left open: a triple quote (every line after it may be text) or a `"` (which of
# its line's quotes pair up is then a guess).
_TEXT_OR_OPEN = re.compile(r'"""[\s\S]*?"""|(?P<block>""")|"(?:[^"\\\n]|\\.)*"|(?P<quote>")|#[^\n]*')
# Blanks in the middle of a line, the invisible ones included; a line's indentation is not here.
_BLANKS = re.compile(r"(?:[^\S\n]|[\u200b\u2060\ufeff])+")
_LINE_START = re.compile(r"^(?:[^\S\n]|[\u200b\u2060\ufeff])*", re.MULTILINE)


def unseen(char: str, span: Span) -> Diagnostic:
    """A character that shows as a space or as nothing, named in words with its code point:
    quoting it would show the user nothing."""
    code = f"U+{ord(char):04X}"
    name = SPACE_NAMES.get(char)
    if unicodedata.category(char) == "Cf":  # zero-width: nothing to see, so nothing to retype
        message, hint = f"invisible {name or 'character'} ({code}) in the code", f"delete it: {_COPIED}"
    elif char.isspace():
        message = f"{name or 'space of another kind'} ({code}) where the language expects an ordinary space"
        hint = f"type an ordinary space instead: {_COPIED}"
        if char == "\u3000":
            hint = f"type an ordinary space instead ({_HALF_WIDTH})"
    else:
        message, hint = f"invisible character ({code}) in the code", f"delete it: {_COPIED}"
    return Diagnostic("SOP101", Severity.ERROR, message, span, hint)


def stray_indentation(text: str) -> list[tuple[int, int]]:
    """Each line indented with a space the grammar does not skip: where its indentation starts
    and ends, outside long strings (whose lines are text)."""
    found: list[tuple[int, int]] = []
    strings = [m.span() for m in _STRING_OR_COMMENT.finditer(text) if m.group().startswith('"""')]
    index = 0
    for match in _INDENTATION.finditer(text):
        if _STRAY.search(match.group()) is None:
            continue
        start = match.start()
        while index < len(strings) and strings[index][1] <= start:
            index += 1
        if index < len(strings) and strings[index][0] < start:
            continue  # inside a long string
        found.append(match.span())
    return found


def stray_in_code(text: str) -> list[tuple[int, int]]:
    """Each run of blanks in the middle of a line of code with a space the grammar does not skip
    (`send welcome` typed in full-width mode): where it starts and ends. Never inside a string, a
    text block or a comment; nowhere on a line with a quote left open, nor after a triple quote
    left open, where what is text is a guess. A zero-width character is taken only next to a
    space or at the line's end, where an ordinary space in its place separates what was separate
    anyway."""
    code = list(text)
    lines_open: set[int] = set()  # where lines with a quote left open start
    end = len(text)
    for match in _TEXT_OR_OPEN.finditer(text):
        if match.lastgroup == "block":
            end = text.rfind("\n", 0, match.start()) + 1  # its own line too
            break
        if match.lastgroup == "quote":
            lines_open.add(text.rfind("\n", 0, match.start()) + 1)
        else:  # text: kept out of the search, its newlines kept so lines stay lines
            code[match.start() : match.end()] = ["\n" if c == "\n" else "x" for c in match.group()]
    masked = "".join(code)
    found: list[tuple[int, int]] = []
    for indent in _LINE_START.finditer(masked, 0, end):
        if indent.start() in lines_open:
            continue
        line_end = masked.find("\n", indent.end(), end)
        line_end = end if line_end < 0 else line_end
        for run in _BLANKS.finditer(masked, indent.end(), line_end):
            blanks = run.group()
            if _STRAY.search(blanks) and (run.end() == line_end or any(c.isspace() for c in blanks)):
                found.append(run.span())
    return found


def with_ordinary_spaces(text: str, lines: list[tuple[int, int]]) -> str:
    """`text` with each stray space of these indentations typed as an ordinary one: one character
    for one, so every offset, line and column stays the user's."""
    parts: list[str] = []
    at = 0
    for start, end in lines:
        parts += [text[at:start], _STRAY.sub(" ", text[start:end])]
        at = end
    parts.append(text[at:])
    return "".join(parts)


def indentation_diagnostics(source: Source, lines: list[tuple[int, int]], most: int) -> list[Diagnostic]:
    """One diagnostic a place (a line's indentation, a run of blanks in code), at its first stray
    space, for the first `most` places; then one that says how many more lines have them, and
    how to mend them all at once."""
    shown: list[Diagnostic] = []
    for start, end in lines[:most]:
        match = _STRAY.search(source.text, start, end)
        assert match is not None  # `stray_indentation` found one there
        shown.append(unseen(match.group(), source.span(match.start(), match.end())))
    rest = lines[most:]
    if rest:
        shown.append(_more_lines(source, rest))
    return shown


def _more_lines(source: Source, lines: list[tuple[int, int]]) -> Diagnostic:
    """The lines past those shown one by one, told in one diagnostic at the first of them."""
    chars = sorted({c for start, end in lines for c in _STRAY.findall(source.text, start, end)})
    names = " or ".join(f"a {SPACE_NAMES.get(c, 'space of another kind')} (U+{ord(c):04X})" for c in chars)
    first, last = source.position(lines[0][0])[0], source.position(lines[-1][0])[0]
    match = _STRAY.search(source.text, *lines[0])
    assert match is not None  # `stray_indentation` or `stray_in_code` found one there
    count = len({source.position(start)[0] for start, _ in lines})
    where = f"lines {first} to {last}" if count > 1 else f"line {first}"
    # A place in the middle of a line starts after something that is not a blank.
    indented = all(start == 0 or source.text[start - 1] == "\n" for start, _ in lines)
    told = f"indented with {names}" if indented else f"with {names} in the code"
    hint = "replace them all at once with the editor's find and replace, each by an ordinary space"
    if "\u3000" in chars:
        hint += f" ({_HALF_WIDTH}, to type no more)"
    return Diagnostic(
        "SOP101",
        Severity.ERROR,
        f"and {count} more line{'s' if count > 1 else ''} {told}: {where}",
        source.span(match.start(), match.end()),
        hint,
    )
