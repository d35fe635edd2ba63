"""A file that does not parse, read as plain text: its open braces and where declarations start.

Input: the text (and the keywords that open a declaration, which `lark_errors` reads from the
grammar). Output: character offsets. `lark_errors` uses them to say which `{` is never closed,
`lark_lalr` to parse on after a syntax error from the next declaration. No Lark here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Braces outside strings and comments: `"{{ member.name }}"` in a template is no block.
_BRACE_OR_SKIP = re.compile(r'"""[\s\S]*?"""|"(?:[^"\\\n]|\\.)*"|#[^\n]*|[{}]')
_LONG_STRING = re.compile(r'"""[\s\S]*?"""')
_NAME = r"[^\W\d]\w*"


def starts_line(text: str, offset: int) -> bool:
    """Whether only blanks stand before `offset` on its line."""
    line_start = text.rfind("\n", 0, offset) + 1
    return not text[line_start:offset].strip()


def _indent(text: str, offset: int) -> int:
    line_start = text.rfind("\n", 0, offset) + 1
    line = text[line_start:offset]
    return len(line) - len(line.lstrip())


def unclosed_brace(text: str, end: int) -> tuple[int, int] | None:
    """The `{` most likely left open before `end`, and how many `}` are missing in all; or None.

    The parser pairs a `}` with the nearest open `{`, so a block missing its `}` takes the `}` of
    the block around it and the outer `{` is the one left open. A `}` alone on a line, indented
    less than the line of the `{` it closes, most likely belonged to an outer block: that inner
    `{` is then the one the user left open. Otherwise it is the innermost one still open.
    """
    stack: list[int] = []
    misplaced: list[int] = []
    for match in _BRACE_OR_SKIP.finditer(text, 0, end):
        char = match.group()
        if char == "{":
            stack.append(match.start())
        elif char == "}" and stack:
            opener = stack.pop()
            if starts_line(text, match.start()) and _indent(text, match.start()) < _indent(text, opener):
                misplaced.append(opener)
    if not stack:
        return None
    inside = [o for o in misplaced if o > stack[-1]]
    return (inside[0] if inside else stack[-1]), len(stack)


_STRING_OR_COMMENT = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*')
# A line that starts in column 1 with anything but a `}` or a comment: a declaration of its own,
# perhaps with a misspelt keyword, rather than a line of the one before it.
_COLUMN_ONE = re.compile(r"^[^\s}#]", re.MULTILINE)


def plain_line(line: str) -> bool:
    """Whether a line opens and closes no block and no text block (outside its strings and
    comments): blanking it leaves the blocks around it whole."""
    if '"""' in line:
        return False
    rest = _STRING_OR_COMMENT.sub("", line)
    return "{" not in rest and "}" not in rest


def lines_of_one_declaration(text: str, start: int, end: int) -> bool:
    """Whether the lines after the first one of `text[start:end]` all belong to it: none starts
    in column 1 (outside a text block) as a declaration, perhaps misspelt, would."""
    first_end = text.find("\n", start, end)
    if first_end < 0:
        return True
    blocks = [(m.start(), m.end()) for m in _LONG_STRING.finditer(text, start, end)]
    return not any(
        not any(s < m.start() < e for s, e in blocks) for m in _COLUMN_ONE.finditer(text, first_end + 1, end)
    )


def declaration_starts(text: str, keywords: Iterable[str]) -> list[int]:
    """Offsets of the lines that open a top-level declaration (a keyword in column 1), in order.

    A line of a `\"\"\"text block\"\"\"` is no declaration, even if it reads like one.
    """
    words = sorted(keywords, key=len, reverse=True)
    if not words:
        return []
    opening = re.compile(r"^(?:" + "|".join(map(re.escape, words)) + r")(?!\w)", re.MULTILINE)
    blocks = [(m.start(), m.end()) for m in _LONG_STRING.finditer(text)]
    return [m.start() for m in opening.finditer(text) if not any(s < m.start() < e for s, e in blocks)]


def declaration_named(text: str, offset: int, keywords: Iterable[str]) -> str | None:
    """The declaration `offset` lies in, as a user names it ("playbook 'welcome'", "policy")."""
    words = sorted(keywords, key=len, reverse=True)
    if not words:
        return None
    opening = re.compile(
        r"^(" + "|".join(map(re.escape, words)) + r")(?!\w)[ \t]*(" + _NAME + r")?", re.MULTILINE
    )
    found = None
    for match in opening.finditer(text, 0, offset):
        found = match
    if found is None:
        return None
    keyword, name = found.group(1), found.group(2)
    return f"{keyword} '{name}'" if name else keyword
