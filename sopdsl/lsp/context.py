"""What kind of name belongs at the cursor, read from the text of its line before it.

Input: the part of a line before the cursor. Output: a `Wanted` (the kind of name, and where
the partly typed word starts) or None where nothing should be offered (a comment, a string that
is not a tag, the name a declaration is introducing). A cheap, line-local reading: good enough
to offer the right names while typing, including in a file that does not parse yet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

Kind = Literal["template", "calendar", "coupon", "group", "event", "action", "tag", "keyword"]

_STRING = r'"(?:[^"\\\n]|\\.)*"'
_PARTIAL = re.compile(r"\w*\Z")
_TOKEN = re.compile(r"[^\W\d]\w*|\S")
# Before a tag's opening quote: `tagged`, `untagged`, `any of`/`all of`, `tag member`,
# `untag member`, then any tags already listed (`"a", "b", `).
_BEFORE_TAG = re.compile(
    rf"(?:\b(?:un)?tagged|\b(?:un)?tag\s+\w+|\b(?:any|all)\s+of)\s*(?:{_STRING}\s*,\s*)*\Z"
)
# The words that introduce a new name at the start of a line: nothing to complete after them.
_DECLARING = {
    "template",
    "calendar",
    "coupon",
    "group",
    "event",
    "action",
    "attribute",
    "counter",
    "playbook",
}


@dataclass(frozen=True)
class Wanted:
    """The kind of name wanted at the cursor, and the index in the line where the partly
    typed word (or tag) starts, which a completion replaces."""

    kind: Kind
    start: int


def wanted(before: str) -> Wanted | None:
    """What to offer at the end of `before` (a line's text up to the cursor)."""
    opening = _open_string(before)
    if opening is not None:
        return Wanted("tag", opening + 1) if _BEFORE_TAG.search(before[:opening]) else None
    if _in_comment(before):
        return None
    partial = _PARTIAL.search(before)
    start = partial.start() if partial is not None else len(before)
    kind = _kind_after(_TOKEN.findall(before[:start]))
    return Wanted(kind, start) if kind is not None else None


def _kind_after(tokens: list[str]) -> Kind | None:
    last = tokens[-1] if tokens else ""
    if last == "send":
        return "template"
    if last == "grant":
        return "coupon"
    if last == "call":
        return "action"
    if last in _DECLARING and len(tokens) == 1:
        return None  # `coupon |` at the start of a line declares a new coupon
    if last == "coupon":
        return "coupon"  # `when coupon |`: a stock test
    if last == "event":
        return "event"  # `on event |`
    if last == "at" and len(tokens) == 1:
        return "calendar"  # a playbook's `at |` entry (`every mon at |` wants a time)
    if last == "to" and len(tokens) >= 3 and tokens[-3] == "invite":
        return "group"
    if _in_named_groups(tokens):
        return "group"
    return "keyword"


def _in_named_groups(tokens: list[str]) -> bool:
    """Whether the tokens end inside `in groups a, b, |` (a scope naming groups)."""
    for index in range(len(tokens) - 1, 0, -1):
        if tokens[index] == "groups" and tokens[index - 1] == "in":
            rest = tokens[index + 1 :]
            # Names and commas alternate, and the last is a comma (or nothing yet).
            return all((t == ",") == (i % 2 == 1) for i, t in enumerate(rest)) and len(rest) % 2 == 0
    return False


def _open_string(before: str) -> int | None:
    """The index of the quote opening a string still open at the end of `before`, or None."""
    index, opening = 0, None
    while index < len(before):
        ch = before[index]
        if opening is None and ch == "#":
            return None
        if ch == '"':
            opening = index if opening is None else None
        elif ch == "\\" and opening is not None:
            index += 1
        index += 1
    return opening


def in_text(before: str) -> bool:
    """Whether the end of `before` is inside a string or a comment, where no name is written."""
    return _open_string(before) is not None or _in_comment(before)


def _in_comment(before: str) -> bool:
    return "#" in re.sub(_STRING, "", before)


@cache
def keywords() -> tuple[str, ...]:
    """Every word of the language, read from its grammar."""
    grammar = resources.files("sopdsl.grammar").joinpath("sopdsl.lark").read_text(encoding="utf-8")
    return tuple(sorted(set(re.findall(r'"([a-z_]+)"', grammar))))
