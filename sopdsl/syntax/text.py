"""Syntax values written back as text: strings, lists of strings, references and values; shared by
the formatter's rows (`unparse.py`) and the nodes that write themselves (`node_actions.py`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sopdsl.enums import EventKind
from sopdsl.kinds import EVENTS
from sopdsl.syntax.node_values import CALC_BINDING, AttrRef, Bool, Calc, Date, Duration, Number, Str

if TYPE_CHECKING:
    from sopdsl.syntax.node_triggers import EventPattern

if TYPE_CHECKING:
    from collections.abc import Sequence

# `on member joins`: each event kind's phrase, from the registry of kinds.
_EVENTS = {kind: spec.phrase for kind, spec in EVENTS.items() if spec.phrase is not None}
_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t"})


def str_text(s: Str) -> str:
    """A string as written: quoted and escaped, or a long string on lines of its own."""
    if s.long:
        # Lines are indented when the row is written; see `_physical_lines`. An empty value
        # needs no line of its own: a whitespace-only last line is dropped when parsed.
        return f'"""\n{s.value}\n"""' if s.value else '"""\n"""'
    return '"' + s.value.translate(_ESCAPES) + '"'


def strs_text(values: Sequence[Str]) -> str:
    """Strings as a comma-separated list."""
    return ", ".join(str_text(s) for s in values)


def attr_text(a: AttrRef) -> str:
    """`member.points`."""
    return f"{a.root.value}.{a.field.text}"


def value_text(value: Str | Number | Bool | Date | AttrRef | Calc) -> str:
    """A literal, a reference or arithmetic as written."""
    if isinstance(value, Calc):
        return calc_text(value)
    if isinstance(value, Str):
        return str_text(value)
    if isinstance(value, Number | Date):
        return value.text
    if isinstance(value, Bool):
        return "true" if value.value else "false"
    return attr_text(value)


def calc_text(calc: Calc) -> str:
    """`member.points + 10`, with parentheses only where the grouping needs them."""
    binding = CALC_BINDING[calc.op]

    def side(operand: Number | AttrRef | Calc, right: bool) -> str:
        if not isinstance(operand, Calc):
            return value_text(operand)
        inner = CALC_BINDING[operand.op]
        # `a - (b - c)` and `a / (b * c)` keep theirs: the operators group from the left.
        grouped = inner < binding or (right and inner == binding)
        return f"({calc_text(operand)})" if grouped else calc_text(operand)

    return f"{side(calc.left, False)} {calc.op} {side(calc.right, True)}"


def duration_text(d: Duration) -> str:
    """`3 days`."""
    return f"{d.amount.text} {d.unit.text}"


def event_text(p: EventPattern) -> str:
    """An event pattern as written: `member posts`, `member is tagged "vip"`, `event paid`."""
    if p.kind is EventKind.TAGGED and p.tag is not None:
        return f"member is tagged {str_text(p.tag)}"
    if p.kind is EventKind.UNTAGGED and p.tag is not None:
        return f"member is untagged {str_text(p.tag)}"
    if p.kind is EventKind.CUSTOM and p.custom is not None:
        return f"event {p.custom.text}"
    return _EVENTS[p.kind]
