"""The syntax tree's atoms: names, literals, durations, times and dates, attribute references.

Part of `sopdsl.syntax.nodes`, which re-exports every class here and defines the unions and the
enums; import them from there (`from sopdsl.syntax import nodes as n`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sopdsl.syntax.node_base import _Node, dataclass

if TYPE_CHECKING:
    from sopdsl.source import Span
    from sopdsl.syntax.nodes import Root


@dataclass(frozen=True, slots=True, eq=False)
class Name(_Node):
    """An identifier as written."""

    text: str
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Str(_Node):
    """A string literal, unescaped; `long` if written with triple quotes."""

    value: str
    span: Span
    long: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class Number(_Node):
    """A numeric literal, as written (`text`) and as a value."""

    value: float
    text: str
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Duration(_Node):
    """`28 days`: an amount and a unit word (checked later)."""

    amount: Number
    unit: Name
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Time(_Node):
    """`20:00` as written; validity is checked later."""

    text: str
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Date(_Node):
    """`2026-11-11` as written; validity is checked later."""

    text: str
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class DateTime(_Node):
    """`2026-11-11 10:00`."""

    date: Date
    time: Time
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class AttrRef(_Node):
    """`member.region`, `event.channel`, `referrer.invites`."""

    root: Root
    field: Name
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Bool(_Node):
    """`true` or `false`."""

    value: bool
    span: Span
