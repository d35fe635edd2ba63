"""The syntax tree's atoms: names, literals, durations, times and dates, attribute references
(and the coupon's fields a `set` reads).

Part of `sopdsl.syntax.nodes`, which re-exports every class here and defines the unions and the
enums; import them from there (`from sopdsl.syntax import nodes as n`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sopdsl.syntax.node_base import _Node, builds, dataclass

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
class CouponField(_Node):
    """`coupon.expires_at` where `set` reads it: a field of the coupon the flow granted."""

    field: Name
    span: Span

    def text(self) -> str:
        """The field as written."""
        return f"coupon.{self.field.text}"


@builds("coupon_field")
def _coupon_field(span: Span, children: list[Any]) -> CouponField:
    return CouponField(children[0], span)


@dataclass(frozen=True, slots=True, eq=False)
class Bool(_Node):
    """`true` or `false`."""

    value: bool
    span: Span


# `+ - * /`, as each operator binds: `*` and `/` before `+` and `-`, each from the left.
CALC_BINDING = {"+": 1, "-": 1, "*": 2, "/": 2}


@dataclass(frozen=True, slots=True, eq=False)
class Calc(_Node):
    """`member.points + 10`: one operator over two operands, grouped as the operators bind."""

    left: Number | AttrRef | Calc
    op: str  # one of CALC_BINDING
    right: Number | AttrRef | Calc
    span: Span


def _joined(first: Span, last: Span) -> Span:
    return replace(first, end=last.end, end_line=last.end_line, end_column=last.end_column)


def _operand(child: Any) -> Number | AttrRef | Calc:
    if isinstance(child, tuple):  # a signed number: (negative, number)
        negative, number = child
        return Number(-number.value, "-" + number.text, number.span) if negative else number
    return child  # type: ignore[no-any-return]


@builds("calc")
def _calc(span: Span, children: list[Any]) -> Calc:
    """Operands and operators, in the order written, grouped: a run of `*` and `/` first, then
    `+` and `-`, each from the left; a parenthesised group arrives as one operand."""
    operands = [_operand(c) for c in children[::2]]
    ops = [str(c) for c in children[1::2]]
    terms, joins = [operands[0]], []
    for op, operand in zip(ops, operands[1:], strict=True):
        if CALC_BINDING[op] == 2:
            terms[-1] = Calc(terms[-1], op, operand, _joined(terms[-1].span, operand.span))
        else:
            joins.append(op)
            terms.append(operand)
    result = terms[0]
    for op, operand in zip(joins, terms[1:], strict=True):
        result = Calc(result, op, operand, _joined(result.span, operand.span))
    assert isinstance(result, Calc)  # the grammar gives an operator, or a group holding one
    return replace(result, span=span)


@builds("calc_group")
def _calc_group(span: Span, children: list[Any]) -> Calc:
    return children[0]  # type: ignore[no-any-return]
