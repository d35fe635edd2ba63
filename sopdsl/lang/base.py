"""The checked language's base class (`Model`), durations and spans of days."""

from __future__ import annotations

import datetime as dt
import enum

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """Base of every checked-model type: immutable, no unknown fields."""

    # Built on first use, not at import: a run builds only the models it makes (start-up time).
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class Unit(enum.Enum):
    """Duration units. Minutes and hours are exact; days and longer keep the wall time."""

    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"


class Duration(Model):
    """`28 days` (calendar: same wall time) or `672 hours` (exact)."""

    amount: int
    unit: Unit

    @property
    def exact(self) -> bool:
        """Whether this is an exact span of seconds rather than calendar arithmetic."""
        return self.unit in (Unit.MINUTE, Unit.HOUR)

    def __str__(self) -> str:
        return f"{self.amount} {self.unit.value}{'' if self.amount == 1 else 's'}"


class DateSpan(Model):
    """Local days from `first` to `last`, both included (`2026-10-01..2026-10-07`)."""

    first: dt.date
    last: dt.date


def on_any(spans: tuple[DateSpan, ...], day: dt.date) -> bool:
    """Whether a local day is in any of the spans."""
    return any(span.first <= day <= span.last for span in spans)
