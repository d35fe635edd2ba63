"""Durations as people write them, in playbooks and fixtures alike: `3 小时`, `2 hours`, `1 day`.

Input: an amount with its unit word (the checker's, from the syntax tree) or one piece of text (a
fixture's field). Output: a `Duration`, or a `DurationError` that says which part is wrong and
what is accepted. The one table of unit words: the checker, the editor's vocabulary and the dry
run's fixtures all read it here, so a unit a playbook takes, a fixture takes too.
"""

from __future__ import annotations

import math
import re
from typing import Literal

from sopdsl.diagnostics import did_you_mean
from sopdsl.lang.base import Duration, Unit

# Every unit by its English name, singular and plural, and its Chinese word.
UNITS: dict[str, Unit] = {}
for _unit in Unit:
    UNITS[_unit.value] = _unit
    UNITS[_unit.value + "s"] = _unit
UNITS.update(
    {
        "分钟": Unit.MINUTE,
        "小时": Unit.HOUR,
        "天": Unit.DAY,
        "周": Unit.WEEK,
        "月": Unit.MONTH,
        "年": Unit.YEAR,
    }
)

UNITS_HINT = "units are minutes, hours, days, weeks, months, years (or 分钟, 小时, 天, 周, 月, 年)"

# The longest duration of each unit: a hundred years (longer is surely a typo, and would overflow
# dates downstream).
MAX_AMOUNT = {
    Unit.MINUTE: 100 * 366 * 24 * 60,
    Unit.HOUR: 100 * 366 * 24,
    Unit.DAY: 100 * 366,
    Unit.WEEK: 100 * 53,
    Unit.MONTH: 100 * 12,
    Unit.YEAR: 100,
}

# An amount in ASCII digits, as the grammar's NUMBER (a decimal is read, to be refused with a
# hint), then a unit word, with or without a space (any, a full-width one too) between them, as
# the grammar reads `3小时` and `3 小时` alike.
_TEXT = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([^\s0-9.]+)\s*")


class DurationError(ValueError):
    """Why a duration is not one: the message, the part it is about (`length`: its amount, which is
    longer than any use of it), and a hint."""

    def __init__(
        self, message: str, part: Literal["amount", "unit", "length"], hint: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.part = part
        self.hint = hint


def unit_of(word: str, amount: float = 2) -> Unit:
    """The unit a word names (`hours`, `小时`); DurationError with the closest word otherwise."""
    unit = UNITS.get(word)
    if unit is None:
        # `2 hourz` should suggest `hours`, `1 dya` should suggest `day`.
        words = [u for u in UNITS if u.isascii() and u.endswith("s") == (amount != 1)]
        hint = (
            did_you_mean(word.lower(), words)
            or did_you_mean(word, [u for u in UNITS if not u.isascii()])
            or UNITS_HINT
        )
        raise DurationError(f"unknown unit '{word}'", "unit", hint)
    return unit


def duration_of(amount: float, unit: Unit, amount_text: str, unit_text: str) -> Duration:
    """A duration of a whole, positive amount of at most a hundred years; DurationError otherwise
    (the texts are the amount and unit as written, for the message)."""
    if not math.isfinite(amount) or amount != int(amount):
        raise DurationError(
            f"a duration needs a whole number, not {amount_text}",
            "amount",
            "use a smaller unit: write 90 minutes instead of 1.5 hours",
        )
    if amount <= 0:
        raise DurationError(
            f"a duration of {amount_text} {unit_text} is no time at all",
            "amount",
            "durations start at 1; to act at once, leave the wait out",
        )
    if amount > MAX_AMOUNT[unit]:
        raise DurationError(
            f"{amount_text} {unit_text} is more than a hundred years", "length", "is a digit too many?"
        )
    return Duration(amount=int(amount), unit=unit)


def parse_duration(text: str) -> Duration:
    """A duration written as one piece of text (`3 小时`, `3小时`, `2 hours`, `1 day`), read as a
    playbook reads one; DurationError saying what is wrong and which units there are."""
    match = _TEXT.fullmatch(text)
    if match is None:
        raise DurationError(f"'{text}' is not a duration like 3 小时 or 2 hours", "amount", UNITS_HINT)
    amount_text, word = match.group(1, 2)
    unit = unit_of(word, float(amount_text))
    return duration_of(float(amount_text), unit, amount_text, word)
