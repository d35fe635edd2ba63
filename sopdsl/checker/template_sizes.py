"""How long a template's text is once rendered, in UTF-8 bytes: what the platform check holds
against WeCom's limits (`platform.py`, SOP208).

Input: a template's text, and the type of each field it may read (`member.points`). Output: a
`Size`: the bytes every rendering has (its fixed text, less what an `{% if %}` may leave out),
and the most any rendering has, or None where that has no bound (a text field such as
`member.name`, a loop, a filter). Plain text and `{{ a.b }}` placeholders are measured without
Jinja, as the checker reads them (`templates.variables`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sopdsl.enums import ValueType

if TYPE_CHECKING:
    from jinja2 import nodes

# The longest a value of each type is written in a message: a number as the engine writes it (a
# whole one below 10^16 as an int, any other as Python's float repr), a date, an ISO time, a bool.
WRITTEN: dict[ValueType, int | None] = {
    ValueType.TEXT: None,
    ValueType.NUMBER: 24,
    ValueType.DATE: 10,
    ValueType.DATETIME: 32,
    ValueType.BOOL: 5,
}
assert set(WRITTEN) == set(ValueType), "WRITTEN gives every value type its longest written form"
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*\}\}")


@dataclass(frozen=True, slots=True)
class Size:
    """The UTF-8 bytes of a template's renderings: at least `least`, at most `most` (None: no bound)."""

    least: int
    most: int | None


FieldType = Callable[[str], ValueType | None]  # a dotted path's type, None when unknown


def size(text: str, field_type: FieldType) -> Size | None:
    """How long `text` renders, in UTF-8 bytes; None if it is not a template Jinja can read."""
    if "{" not in text:
        exact = len(text.encode())
        return Size(exact, exact)
    fixed = _PLACEHOLDER.sub("", text)
    if "{" not in fixed:  # only `{{ a.b }}` placeholders: no need to parse it
        least = len(fixed.encode())
        return Size(
            least, _plus(least, *(_written(m.group(1), field_type) for m in _PLACEHOLDER.finditer(text)))
        )
    return _parsed(text, field_type)


def _written(path: str, field_type: FieldType) -> int | None:
    kind = field_type(path)
    return None if kind is None else WRITTEN[kind]


def _plus(*sizes: int | None) -> int | None:
    total = 0
    for one in sizes:
        if one is None:
            return None
        total += one
    return total


def _parsed(text: str, field_type: FieldType) -> Size | None:
    from jinja2 import TemplateSyntaxError

    from sopdsl.templating import environment

    try:
        tree = environment().parse(text)
    except TemplateSyntaxError:
        return None  # SOP201, where the template is declared
    least, most = _body(tree.body, field_type)
    return Size(least, most)


def _body(body: Sequence[nodes.Node], field_type: FieldType) -> tuple[int, int | None]:
    least, most = 0, 0
    bounded = True
    for node in body:
        low, high = _statement(node, field_type)
        least += low
        bounded = bounded and high is not None
        most += high or 0
    return least, most if bounded else None


def _statement(node: nodes.Node, field_type: FieldType) -> tuple[int, int | None]:
    from jinja2 import nodes

    if isinstance(node, nodes.Output):
        sizes = [_expression(child, field_type) for child in node.nodes]
        return sum(low for low, _ in sizes), _plus(*(high for _, high in sizes))
    if isinstance(node, nodes.If):
        # One branch is taken: at least the shortest (nothing, without an `else`), at most the longest.
        branches = [node.body, *(e.body for e in node.elif_), node.else_]
        sizes = [_body(b, field_type) for b in branches]
        highs = [high for _, high in sizes]
        return min(low for low, _ in sizes), None if None in highs else max(h for h in highs if h is not None)
    if isinstance(node, nodes.Assign):
        return 0, 0  # `{% set %}` writes nothing
    return 0, None  # a loop, a macro, a block: how much it writes is not known here


def _expression(node: nodes.Node, field_type: FieldType) -> tuple[int, int | None]:
    from jinja2 import nodes

    if isinstance(node, nodes.TemplateData):
        written = len(node.data.encode())
        return written, written
    if isinstance(node, nodes.Const):
        written = len(str(node.value).encode())
        return written, written
    path = _path(node)
    return 0, None if path is None else _written(path, field_type)


def _path(node: nodes.Node) -> str | None:
    """`member.points` of a plain attribute read, None for anything else."""
    from jinja2 import nodes

    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        root = _path(node.node)
        return None if root is None else f"{root}.{node.attr}"
    return None
