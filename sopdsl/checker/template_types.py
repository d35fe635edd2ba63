"""Arithmetic in templates on values of a known type: `{{ member.name - 1 }}` is refused where it
is written (SOP409), as in a playbook's own arithmetic, instead of failing each send at run time.

Input: a parsed Jinja2 template and the type of each field path a template may read. Output: the
operations that mix text into arithmetic. `+` of two texts joins them and `*` and `%` of text
repeat and format it, as Python does, so only what can never work is reported: text `-` or `/`
anything, and text `+` a number.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sopdsl.checker import model

if TYPE_CHECKING:
    from jinja2 import nodes

FieldType = Callable[[str], model.ValueType | None]
_NUMERIC_ONLY = frozenset({"-", "/", "//"})


def mixed_arithmetic(tree: nodes.Template, field_type: FieldType) -> list[tuple[nodes.Node, str]]:
    """Each arithmetic operation of the template that mixes text in, with what to say of it."""
    from jinja2 import nodes

    found: list[tuple[nodes.Node, str]] = []
    for node in tree.find_all(nodes.BinExpr):
        sides = [_kind(side, field_type) for side in (node.left, node.right)]
        kinds = {kind for kind, _ in sides}
        if model.ValueType.TEXT not in kinds:
            continue
        if node.operator in _NUMERIC_ONLY or (node.operator == "+" and model.ValueType.NUMBER in kinds):
            text = next(shown for kind, shown in sides if kind is model.ValueType.TEXT)
            found.append((node, f"{text} is text, and `{node.operator}` works on numbers"))
    return found


def _kind(node: nodes.Node, field_type: FieldType) -> tuple[model.ValueType | None, str]:
    from jinja2 import nodes

    if isinstance(node, nodes.Const):
        if isinstance(node.value, str):
            return model.ValueType.TEXT, repr(node.value)
        if isinstance(node.value, int | float) and not isinstance(node.value, bool):
            return model.ValueType.NUMBER, str(node.value)
        return None, ""
    if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
        path = f"{node.node.name}.{node.attr}"
        return field_type(path), path
    return None, ""
