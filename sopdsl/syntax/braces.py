"""A file that does not parse, read as plain text.

Input: the text. Output: facts about a place in it (whether a word begins its line). No Lark here.
"""

from __future__ import annotations


def starts_line(text: str, offset: int) -> bool:
    """Whether only blanks stand before `offset` on its line."""
    line_start = text.rfind("\n", 0, offset) + 1
    return not text[line_start:offset].strip()
