"""The syntax tree's dates: holiday lists, a calendar's `except`, and the date tests of a condition.

Part of `sopdsl.syntax.nodes`, which re-exports every class here. Like the action nodes, each
node here carries its own rules: its builder (registered with `builds`) and its text, so the
formatter and the builders read one definition.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sopdsl.syntax.node_base import _Node, builds, dataclass
from sopdsl.syntax.node_values import Date, Name, Str
from sopdsl.syntax.text import str_text

if TYPE_CHECKING:
    from sopdsl.source import Span


@dataclass(frozen=True, slots=True, eq=False)
class DateSpan(_Node):
    """`2026-10-01` or `2026-10-01..2026-10-07` (both days included)."""

    first: Date
    last: Date | None
    span: Span

    def text(self) -> str:
        """The span as the formatter writes it."""
        return self.first.text + (f"..{self.last.text}" if self.last is not None else "")


@dataclass(frozen=True, slots=True, eq=False)
class HolidaysRef(_Node):
    """A holiday list named in an `except`: `except national`."""

    name: Name
    span: Span


ExceptItem = DateSpan | HolidaysRef


@dataclass(frozen=True, slots=True, eq=False)
class CalExcept(_Node):
    """`except 2026-10-01..2026-10-07, national` after a calendar rule: days it does not fire on."""

    items: tuple[ExceptItem, ...]
    span: Span

    def text(self) -> str:
        """The exception as the formatter writes it, with its leading space."""
        shown = (i.text() if isinstance(i, DateSpan) else i.name.text for i in self.items)
        return " except " + ", ".join(shown)


@dataclass(frozen=True, slots=True, eq=False)
class HolidaysDecl(_Node):
    """`holidays national "法定节假日" = 2026-10-01..2026-10-07, 2027-01-01`."""

    name: Name
    title: Str | None
    spans: tuple[DateSpan, ...]
    span: Span

    def text(self) -> str:
        """The declaration as the formatter writes it."""
        title = f" {str_text(self.title)}" if self.title is not None else ""
        return f"holidays {self.name.text}{title} = " + ", ".join(s.text() for s in self.spans)


@dataclass(frozen=True, slots=True, eq=False)
class DateBetween(_Node):
    """`date between 2026-10-01 and 2026-10-07` (the group's local date; both days included)."""

    first: Date
    last: Date
    span: Span

    def text(self) -> str:
        """The test as the formatter writes it."""
        return f"date between {self.first.text} and {self.last.text}"


@dataclass(frozen=True, slots=True, eq=False)
class DateIn(_Node):
    """`date in national`: the group's local date is one of a holiday list's days."""

    holidays: Name
    span: Span

    def text(self) -> str:
        """The test as the formatter writes it."""
        return f"date in {self.holidays.text}"


@builds("date_span")
def _date_span(span: Span, children: list[Any]) -> DateSpan:
    return DateSpan(children[0], children[1] if len(children) > 1 else None, span)


@builds("except_holidays")
def _except_holidays(span: Span, children: list[Any]) -> HolidaysRef:
    return HolidaysRef(children[0], span)


@builds("cal_except")
def _cal_except(span: Span, children: list[Any]) -> CalExcept:
    return CalExcept(tuple(children), span)


@builds("holidays_decl")
def _holidays_decl(span: Span, children: list[Any]) -> HolidaysDecl:
    title = children[1] if isinstance(children[1], Str) else None
    return HolidaysDecl(children[0], title, tuple(c for c in children if isinstance(c, DateSpan)), span)


@builds("date_between")
def _date_between(span: Span, children: list[Any]) -> DateBetween:
    return DateBetween(children[0], children[1], span)


@builds("date_in")
def _date_in(span: Span, children: list[Any]) -> DateIn:
    return DateIn(children[0], span)
