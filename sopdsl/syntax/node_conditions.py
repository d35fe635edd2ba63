"""The syntax tree's conditions.

Part of `sopdsl.syntax.nodes`, which re-exports every class here and defines the unions and the
enums; import them from there (`from sopdsl.syntax import nodes as n`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sopdsl.syntax.node_base import _Node, dataclass

if TYPE_CHECKING:
    from sopdsl.source import Span
    from sopdsl.syntax.nodes import (
        AttrRef,
        Calc,
        Comparator,
        Cond,
        Duration,
        Name,
        Number,
        Str,
        Subject,
        TagTest,
        Time,
        Value,
    )


@dataclass(frozen=True, slots=True, eq=False)
class Tagged(_Node):
    """`member tagged "core"`, `member not tagged "a", "b"`, `group tagged any of ...`."""

    subject: Subject
    test: TagTest
    tags: tuple[Str, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Compare(_Node):
    """`member.level >= 3`, `member.points + 10 >= member.goal`."""

    left: AttrRef | Calc
    op: Comparator
    right: Value
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class StartsWith(_Node):
    """`member.name starts with "AAA"`."""

    left: AttrRef
    prefix: Str
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Matches(_Node):
    """`member.nickname matches "^.+-.+$"`."""

    left: AttrRef
    pattern: Str
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class InList(_Node):
    """`member.region in ["华东", "华南"]`."""

    left: AttrRef
    values: tuple[Value, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class IsSet(_Node):
    """`member.referrer is set`."""

    left: AttrRef
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class WindowCount(_Node):
    """`messages in last 7 days >= 3`."""

    kind: Name
    window: Duration
    op: Comparator
    count: Number
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class TimeBetween(_Node):
    """`time between 12:00 and 14:00` (local time of the group)."""

    start: Time
    end: Time
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class WeekdayIn(_Node):
    """`weekday in [saturday, sunday]`."""

    days: tuple[Name, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class InStock(_Node):
    """`coupon free_scarf in stock`, or with `negated`, `coupon free_scarf not in stock`."""

    coupon: Name
    negated: bool
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class BoolCond(_Node):
    """`true` / `false` as a condition."""

    value: bool
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Not(_Node):
    """`not C`."""

    operand: Cond
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class And(_Node):
    """`A and B and ...`."""

    operands: tuple[Cond, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Or(_Node):
    """`A or B or ...`."""

    operands: tuple[Cond, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Paren(_Node):
    """`( C )`, kept so the formatter can reproduce the user's grouping."""

    inner: Cond
    span: Span
