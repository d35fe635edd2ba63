"""The node builders: a grammar rule's children to its syntax-tree node.

Input: a rule's span and its children, already built. Output: nodes, up to `nodes.File`. Every
rule of the grammar has one method on `_Builders` building one node; both parse paths call them
(the driver as it reduces, `sopdsl.syntax.lark_lalr` inline or over Lark's tree), and this module
imports no Lark.
`_Builders` holds the terminals, lists and atoms, and is composed with one class per area
(`build_declarations`, `build_playbooks`, `build_steps`); `RULES` is read from the one class.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sopdsl.source import Span
from sopdsl.syntax import node_actions as _node_actions  # noqa: F401 - registers its builders
from sopdsl.syntax import node_steps as _node_steps  # noqa: F401 - registers its builders
from sopdsl.syntax import nodes as n
from sopdsl.syntax.build_declarations import DeclarationBuilders
from sopdsl.syntax.build_playbooks import PlaybookBuilders
from sopdsl.syntax.build_steps import StepBuilders
from sopdsl.syntax.building import _Dates, _Names, _Strs, _Times
from sopdsl.syntax.node_base import BUILDERS as NODE_BUILDERS

if TYPE_CHECKING:
    from lark import Token

_ESCAPE = re.compile(r"\\(.)")
_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}


def unescape(body: str) -> str:
    """Resolve backslash escapes of a one-line string literal."""
    return _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), body)


def long_string_value(raw: str) -> str:
    """The value of a \"\"\"text block\"\"\": first newline dropped, common indentation removed."""
    # A file saved with CRLF (Windows Notepad) must not send `\r` to members, nor a blank first line.
    body = raw[3:-3].replace("\r\n", "\n")
    if body.startswith("\n"):
        body = body[1:]
    lines = body.split("\n")
    if len(lines) > 1 and not lines[-1].strip():
        lines = lines[:-1]
    return textwrap.dedent("\n".join(lines))


class _Builders(DeclarationBuilders, PlaybookBuilders, StepBuilders):
    """One method per grammar rule (and per kept terminal), named after it.

    A rule's method takes the rule's span and its children, already built, and returns a node;
    a terminal's method takes the token text and its span. The driver (`sopdsl.syntax.driver`)
    calls these while parsing; `lark_lalr.to_file` calls them from a Lark tree. `start` is built by
    `file_node`, which also needs the path and the comments.
    """

    # ---- terminals ----

    def NAME(self, text: str, span: Span) -> n.Name:  # noqa: N802 - named after the terminal
        return n.Name(text, span)

    def NUMBER(self, text: str, span: Span) -> n.Number:  # noqa: N802
        return n.Number(float(text), text, span)

    def PERCENT(self, text: str, span: Span) -> n.Number:  # noqa: N802
        return n.Number(float(text[:-1]), text[:-1], span)

    def TIME(self, text: str, span: Span) -> n.Time:  # noqa: N802
        return n.Time(text, span)

    def DATE(self, text: str, span: Span) -> n.Date:  # noqa: N802
        return n.Date(text, span)

    def STRING(self, text: str, span: Span) -> n.Str:  # noqa: N802
        return n.Str(unescape(text[1:-1]), span)

    def LONG_STRING(self, text: str, span: Span) -> n.Str:  # noqa: N802
        return n.Str(long_string_value(text), span, long=True)

    # ---- strings and lists ----

    def string(self, span: Span, children: list[Any]) -> n.Str:
        return children[0]  # type: ignore[no-any-return]

    def title(self, span: Span, children: list[Any]) -> n.Str:
        return children[0]  # type: ignore[no-any-return]

    def string_list(self, span: Span, children: list[Any]) -> _Strs:
        return _Strs(children)

    def name_list(self, span: Span, children: list[Any]) -> _Names:
        return _Names(children)

    def time_list(self, span: Span, children: list[Any]) -> _Times:
        return _Times(children)

    def date_list(self, span: Span, children: list[Any]) -> _Dates:
        return _Dates(children)

    # ---- atoms ----

    def attr_ref(self, span: Span, children: list[Any]) -> n.AttrRef:
        return n.AttrRef(n.Root(str(children[0])), children[1], span)

    def value_string(self, span: Span, children: list[Any]) -> n.Str:
        return children[0]  # type: ignore[no-any-return]

    def value_number(self, span: Span, children: list[Any]) -> n.Number:
        negative, number = children[0]
        if negative:
            return n.Number(-number.value, "-" + number.text, span)
        return number  # type: ignore[no-any-return]

    def value_bool(self, span: Span, children: list[Any]) -> n.Bool:
        return children[0]  # type: ignore[no-any-return]

    def value_date(self, span: Span, children: list[Any]) -> n.Date:
        return children[0]  # type: ignore[no-any-return]

    def value_ref(self, span: Span, children: list[Any]) -> n.AttrRef:
        return children[0]  # type: ignore[no-any-return]

    def value_calc(self, span: Span, children: list[Any]) -> n.Calc:
        return children[0]  # type: ignore[no-any-return]

    def true(self, span: Span, children: list[Any]) -> n.Bool:
        return n.Bool(True, span)

    def false(self, span: Span, children: list[Any]) -> n.Bool:
        return n.Bool(False, span)

    def duration(self, span: Span, children: list[Any]) -> n.Duration:
        return n.Duration(children[0], children[1], span)

    def datetime(self, span: Span, children: list[Any]) -> n.DateTime:
        return n.DateTime(children[0], children[1], span)


_BUILDERS = _Builders()

# Terminals whose tokens become nodes; other kept terminals (ROOT, SIGN, COMPARATOR) stay text.
TOKENS: dict[str, Callable[[str, Span], Any]] = {
    name: getattr(_BUILDERS, name)
    for name in ("NAME", "NUMBER", "PERCENT", "TIME", "DATE", "STRING", "LONG_STRING")
}

# Rule name (or alias) to its builder; `start` is missing: see `file_node`.
RULES: dict[str, Callable[..., Any]] = {
    **{
        name: getattr(_BUILDERS, name)
        for name in dir(_Builders)
        if not name.startswith("_") and not name.isupper()
    },
    **NODE_BUILDERS,  # the rules of the nodes that build themselves
}


def file_node(path: str, span: Span, children: list[Any], comments: tuple[n.Comment, ...]) -> n.File:
    """The node of a whole file, from the children of the `start` rule."""
    return n.File(path, tuple(children), comments, span)


def token_span(path: str, token: Token) -> Span:
    """The span of a Lark token."""
    start = token.start_pos or 0
    end = token.end_pos if token.end_pos is not None else start + len(token)
    return Span(
        path,
        start,
        end,
        token.line or 1,
        token.column or 1,
        token.end_line or 1,
        token.end_column or 1,
    )
