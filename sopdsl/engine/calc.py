"""Arithmetic as the engine works it out: `member.points + 10`, `event.amount * 0.1`.

Numbers are 64-bit floats, as counters and amounts are. What the language promises
(docs/language.md, "Arithmetic"):

- an operand that is unset (an attribute never set, an event field absent) makes the result
  unset: a test reading it is false, a `set` to it unsets an attribute and leaves a counter as it is;
- division by zero, and a result too large for a number (overflow to infinity), are errors of
  that member's data: the test or step that met one fails visibly (a failed `when`, `if`, `set`
  or `call` record naming it), the rest of the run goes on, and nothing is left half-written;
- a value of another type where a number is declared (a bot registered text) is such an error too.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

from sopdsl import lang
from sopdsl.engine.state import GroupState, MemberState

Getter = Callable[[MemberState | None, GroupState | None, dict[str, Any]], Any]
# How a reference is read where the arithmetic is: conditions and steps each give theirs.
Reader = Callable[[lang.Ref], Getter]

_OPS: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
}
_BINDING = {"+": 1, "-": 1, "*": 2, "/": 2}


def operand_text(operand: lang.Operand) -> str:
    """An operand as the playbook writes it: `member.points + 10` (for messages and `why`)."""
    if isinstance(operand, lang.Ref):
        return f"{operand.root}.{operand.field}"
    if isinstance(operand, lang.Calc):

        def side(inner: lang.Operand, right: bool) -> str:
            text = operand_text(inner)
            if isinstance(inner, lang.Calc) and (
                _BINDING[inner.op] < _BINDING[operand.op]
                or (right and _BINDING[inner.op] == _BINDING[operand.op])
            ):
                return f"({text})"
            return text

        return f"{side(operand.left, False)} {operand.op} {side(operand.right, True)}"
    return f"{operand:g}"


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} is {type(value).__name__} {value!r}, not a number")
    return float(value)


def compile_operand(operand: lang.Operand, read: Reader) -> Getter:
    """A function giving an operand's value (a float, or None when unset); it raises
    `ArithmeticError` or `TypeError` for the errors the module's docstring lists."""
    if isinstance(operand, lang.Ref):
        get, name = read(operand), operand_text(operand)

        def reference(m: MemberState | None, g: GroupState | None, e: dict[str, Any]) -> float | None:
            value = get(m, g, e)
            return None if value is None else _number(value, name)

        return reference
    if isinstance(operand, lang.Calc):
        left, right = compile_operand(operand.left, read), compile_operand(operand.right, read)
        apply, divides, text = _OPS[operand.op], operand.op == "/", operand_text(operand)

        def calc(m: MemberState | None, g: GroupState | None, e: dict[str, Any]) -> float | None:
            a, b = left(m, g, e), right(m, g, e)
            if a is None or b is None:
                return None
            if divides and b == 0:
                raise ZeroDivisionError(f"division by zero in {text}")
            result = apply(a, b)
            if not math.isfinite(result):
                raise OverflowError(f"{text} is too large for a number")
            return result

        return calc
    constant = float(operand)
    return lambda m, g, e: constant
