"""Template checks: Jinja2 syntax in a sandbox, and the variables each template reads.

Input: template text. Output: the dotted variable paths it uses (`member.name`), or a located
diagnostic for a syntax error. The use-site check (does this send provide those variables?)
lives with the playbook checks, which know the context.
"""

from __future__ import annotations

import functools
import re
from collections import deque
from typing import TYPE_CHECKING, cast

from sopdsl.checker import model
from sopdsl.checker.template_types import mixed_arithmetic
from sopdsl.diagnostics import did_you_mean
from sopdsl.source import Span
from sopdsl.vocabulary import COUPON_FIELDS, GROUP_FIELDS, MEMBER_FIELDS

# Jinja2 (and the sandbox in `sopdsl.templating`) is imported by the functions that parse a
# template, not here: most templates take the fast paths of `variables`, and a check of files
# whose templates are all plain or simple imports no Jinja at all (tests/cli/test_startup.py).
if TYPE_CHECKING:
    from collections.abc import Iterator

    from jinja2 import nodes

    from sopdsl.checker.context import Context
    from sopdsl.source import Source


def line_span(span: Span, lineno: int, long: bool, source: Source | None = None) -> Span:
    """The span of line `lineno` (1-based) of a template written at `span`.

    A one-line string is marked whole; a line of a text block is marked from its first
    non-blank character to its end, when the source is at hand to find them."""
    if not long:
        return Span(span.path, span.start, span.start, span.line, span.column, span.line, span.end_column)
    # The block's first newline (right after the quotes) is not part of the template text.
    starts_on_next_line = source is None or source.text[span.start + 3 : span.start + 4] == "\n"
    line = min(span.line + lineno - (0 if starts_on_next_line else 1), span.end_line)
    text = source.line_text(line) if source is not None else ""
    column = len(text) - len(text.lstrip()) + 1
    return Span(span.path, span.start, span.start, line, column, line, max(len(text) + 1, column + 1))


def field_span(source: Source | None, written: Span, path: str) -> Span | None:
    """Where a variable path (`member.nmae`) is first written inside the template text at
    `written` (spaces around its dots allowed), or None if it is not written as a plain path."""
    if source is None:
        return None
    pattern = r"(?<![\w.])" + r"\s*\.\s*".join(map(re.escape, path.split("."))) + r"(?!\w)"
    found = re.compile(pattern).search(source.text, written.start, written.end)
    return None if found is None else source.span(found.start(), found.end())


def variables(ctx: Context, text: str, span: Span, long: bool, what: str) -> tuple[str, ...] | None:
    """The variable paths a template reads, or None after reporting a syntax error."""
    if "{" not in text:
        return ()  # plain text: no Jinja syntax can start without a brace
    simple = _simple_paths(text)
    if simple is not None:
        return simple
    from jinja2 import TemplateSyntaxError, nodes

    from sopdsl.templating import MAX_INT_BITS, MAX_TEXT, environment

    env = environment()
    try:
        tree = env.parse(text)
        # Jinja's own names (`range`, bounded by the sandbox) come with every message.
        undeclared = _undeclared(tree) - env.globals.keys()
        found: set[str] = set()
        for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Name)):
            path = _path(node)
            if path and path.split(".")[0] in undeclared:
                found.add(path)
        loading = next(
            iter(tree.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport))), None
        )
        unsafe = _unsafe(tree)
        unknown = [
            (node, "filter", node.name, env.filters)
            for node in tree.find_all(nodes.Filter)
            if node.name not in env.filters
        ] + [
            (node, "test", node.name, env.tests)
            for node in tree.find_all(nodes.Test)
            if node.name not in env.tests
        ]
        costly = _costly(tree)
        mixed = mixed_arithmetic(tree, lambda path: _field_type(ctx, path))
    except TemplateSyntaxError as exc:
        ctx.error(
            "SOP201",
            f"{what}{_line_of(text, exc.lineno, long)}: {_syntax_message(exc.message)}",
            line_span(span, exc.lineno or 1, long, ctx.loaded.sources.get(span.path)),
            "variables are written {{ member.name }}; blocks as {% if ... %}...{% endif %}",
        )
        return None
    except RecursionError:
        ctx.error("SOP201", f"{what} is nested too deeply", span, "split it into simpler templates")
        return None
    if loading is not None:
        # There is nothing to load templates from when a message is rendered.
        ctx.error(
            "SOP201",
            f"{what} loads another template; messages are rendered on their own",
            line_span(span, loading.lineno, long, ctx.loaded.sources.get(span.path)),
            "copy the shared text in, or send the other template as its own step",
        )
        return None
    source = ctx.loaded.sources.get(span.path)
    for used, sort, name, known in unknown:
        # Else every message fails at run time ("No filter named 'date'"), never at check.
        ctx.error(
            "SOP201",
            f"{what}{_line_of(text, used.lineno, long)}: no {sort} named '{name}'",
            line_span(span, used.lineno, long, source),
            did_you_mean(name, known) or f"{sort}s: {', '.join(sorted(known)[:12])}, ...",
        )
    if unknown:
        return None
    for place, message in unsafe:
        ctx.error(
            "SOP204",
            f"{what}{_line_of(text, place.lineno, long)}: {message}",
            line_span(span, place.lineno, long, source),
            "read fields as {{ member.name }} and format numbers with the format filter: "
            "{{ '%.1f'|format(member.points) }}",
        )
    for place, message in costly:
        ctx.error(
            "SOP205",
            f"{what}{_line_of(text, place.lineno, long)} computes too much: {message}",
            line_span(span, place.lineno, long, source),
            f"a message's texts and lists stay under {MAX_TEXT // 1024} KiB and its numbers under "
            f"{MAX_INT_BITS} bits",
        )
    for place, message in mixed:
        ctx.error(
            "SOP409",
            f"{what}{_line_of(text, place.lineno, long)}: {message}",
            line_span(span, place.lineno, long, source),
            "do arithmetic on counters and number fields: {{ 21 - member.streak }}",
        )
    if unsafe or costly or mixed:
        return None
    # Keep only the longest paths: `member.name` covers `member`.
    covered = {q.rsplit(".", i)[0] for q in found for i in range(1, q.count(".") + 1)}
    return tuple(sorted(found - covered))


def _field_type(ctx: Context, path: str) -> model.ValueType | None:
    """The type of `member.F`, `referrer.F`, `group.F` or `coupon.F` as declared or built in
    (None where unknown here: an event's fields depend on where the template is sent)."""
    root, _, name = path.partition(".")
    if root in ("member", "referrer"):
        if name in MEMBER_FIELDS:
            return MEMBER_FIELDS[name]
        if name in ctx.table("counter"):
            return model.ValueType.NUMBER
        attribute = ctx.table("attribute").get(name)
        return attribute.value.type if attribute is not None and attribute.value is not None else None
    if root == "group":
        return GROUP_FIELDS.get(name)
    return COUPON_FIELDS.get(name) if root == "coupon" else None


# `{{ member.name }}`, optionally `| int`: most templates hold nothing else, and reading them
# needs no Jinja parse (a third of the time to check a large playbook set).
_SIMPLE = re.compile(r"\{\{\s*([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)(?:\s*\|\s*[A-Za-z_]\w*)*\s*\}\}")
_JINJA_WORDS = frozenset(
    "true false none True False None and or not in is if else elif for endfor recursive".split()
)


def _simple_paths(text: str) -> tuple[str, ...] | None:
    """The variable paths of a template made only of `{{ a.b }}` expressions, or None if it has more."""
    found: set[str] = set()
    for match in _SIMPLE.finditer(text):
        if "|" in match.group(0):
            return None  # a filter: Jinja must say whether it knows it
        path = match.group(1)
        root, *fields = path.split(".")
        if root in _JINJA_WORDS or any(_unsafe_name(field, attribute=True) for field in fields):
            return None  # let the full check below say what is wrong with it
        found.add(path)
    if "{" in _SIMPLE.sub("", text):
        return None  # a block, a comment or a richer expression: Jinja must read it
    covered = {q.rsplit(".", i)[0] for q in found for i in range(1, q.count(".") + 1)}
    return tuple(sorted(found - covered))


def _undeclared(tree: nodes.Template) -> set[str]:
    """Names a template reads that it does not set itself.

    Cheaper than `jinja2.meta.find_undeclared_variables`, which generates the template's Python
    code; scoping is looser (a name set anywhere counts as set), and rendering stays strict.
    """
    from jinja2 import nodes

    loaded: set[str] = set()
    stored: set[str] = set()
    for name in tree.find_all(nodes.Name):
        (loaded if name.ctx == "load" else stored).add(name.name)
    if any(True for _ in tree.find_all(nodes.For)):
        stored.add("loop")
    return loaded - stored


def _line_of(text: str, lineno: int | None, long: bool) -> str:
    # A text block is quoted at the right line; a template from a file cannot be, so say which.
    if long or "\n" not in text or not lineno:
        return ""
    return f", line {lineno}"


def _syntax_message(message: str | None) -> str:
    """Jinja's message, said plainly for the commonest mistakes."""
    text = message or "syntax error"
    unclosed = re.search(r"innermost block that needs to be closed is '(\w+)'", text)
    if text.startswith("Unexpected end of template") and unclosed:
        block = unclosed.group(1)
        return f"the template ends inside {{% {block} %}}: close it with {{% end{block} %}}"
    if text == "unexpected '}'":
        return "unexpected '}': a variable is closed with two braces, as in {{ member.name }}"
    return text


def _path(node: nodes.Node) -> str | None:
    from jinja2 import nodes

    if isinstance(node, nodes.Name):
        return node.name if node.ctx == "load" else None
    if isinstance(node, nodes.Getattr):
        inner = _path(node.node)
        return f"{inner}.{node.attr}" if inner else None
    if (
        isinstance(node, nodes.Getitem)
        and isinstance(node.arg, nodes.Const)
        and isinstance(node.arg.value, str)
    ):
        inner = _path(node.node)
        return f"{inner}.{node.arg.value}" if inner else None
    return None


# Python's internal attributes (as `jinja2.sandbox.is_internal_attribute` has them) and the
# methods of lists, dicts and sets that change them: the sandbox refuses both when rendering.
_INTERNAL = frozenset(("mro", "gi_frame", "gi_code", "cr_frame", "cr_code", "ag_code", "ag_frame"))
_KNOWN_MUTABLE: tuple[object, ...] = ([], {}, set(), deque())
# Every attribute of those: only these names need asking Jinja's sandbox (and importing it).
_METHODS = frozenset(name for value in _KNOWN_MUTABLE for name in dir(value))


@functools.cache
def _mutating() -> frozenset[str]:
    from jinja2.sandbox import modifies_known_mutable

    return frozenset(
        name for value in _KNOWN_MUTABLE for name in dir(value) if modifies_known_mutable(value, name)
    )


_FORMAT = frozenset(("format", "format_map"))

# Filters whose arguments name attributes to read from each item: filter -> (position, keyword).
_ATTRIBUTE_ARGUMENTS = {
    "map": (None, "attribute"),
    "selectattr": (0, None),
    "rejectattr": (0, None),
    "sort": (2, "attribute"),
    "unique": (1, "attribute"),
    "min": (1, "attribute"),
    "max": (1, "attribute"),
    "sum": (0, "attribute"),
    "groupby": (0, "attribute"),
    "join": (1, "attribute"),
}


def _unsafe_name(name: str, attribute: bool) -> str | None:
    """Why a template may not read `name` (an attribute, or an item if not `attribute`), or None."""
    if name.startswith("_"):
        return f"'{name}' starts with '_': templates may not read Python's internals"
    if name in _FORMAT:
        return f"'{name}' may not be used: it reads attributes by name; use the format filter"
    if attribute and name in _INTERNAL:
        return f"'{name}' is one of Python's internals, which templates may not read"
    if attribute and name in _METHODS and name in _mutating():
        return f"'.{name}' is a method that changes data, which templates may not call"
    return None


def _unsafe(tree: nodes.Template) -> list[tuple[nodes.Node, str]]:
    """Every place a template reaches past its data, found on its syntax tree (not its text).

    Attributes and constant items starting with '_', `format` and `format_map`, Python's
    internal attributes, methods that change data, and the names given to `attr` and to the
    filters that read an attribute of each item (`map(attribute=...)`, `sort`, `sum`, ...)."""
    from jinja2 import nodes

    found: list[tuple[nodes.Node, str]] = []
    for node in _inside_out(tree):
        if isinstance(node, nodes.Getattr):
            why = _unsafe_name(node.attr, attribute=True)
        elif isinstance(node, nodes.Getitem):
            arg = node.arg
            name = arg.value if isinstance(arg, nodes.Const) else None
            why = _unsafe_name(name, attribute=False) if isinstance(name, str) else None
        elif isinstance(node, nodes.Filter):
            why = _unsafe_filter(node)
        else:
            why = None
        if why is not None:
            found.append((node, why))
    return found


def _inside_out(node: nodes.Node) -> Iterator[nodes.Node]:
    """Every node under `node`, each after the nodes it holds: `''.__class__` before `.__mro__`."""
    for child in node.iter_child_nodes():
        yield from _inside_out(child)
        yield child


def _unsafe_filter(node: nodes.Filter) -> str | None:
    from jinja2 import nodes

    name, args = node.name, list(node.args)
    # Jinja types a filter's keyword arguments as `Pair`s; they are `Keyword`s (a name, a value).
    keywords = cast("list[nodes.Keyword]", node.kwargs)
    kwargs = {kw.key: kw.value for kw in keywords}
    if name == "map" and args and isinstance(args[0], nodes.Const) and args[0].value == "attr":
        name, args = "attr", args[1:]  # map('attr', 'name') applies attr to each item
    if name == "attr":
        arg = args[0] if args else kwargs.get("name")
        if arg is None:
            return None
        if not (isinstance(arg, nodes.Const) and isinstance(arg.value, str)):
            return "attr() needs the attribute's name written in the template, not computed"
        return _unsafe_name(arg.value, attribute=True)
    if name not in _ATTRIBUTE_ARGUMENTS:
        return None
    position, keyword = _ATTRIBUTE_ARGUMENTS[name]
    value = kwargs.get(keyword) if keyword else None
    if value is None and position is not None and len(args) > position:
        value = args[position]
    if isinstance(value, nodes.Const) and isinstance(value.value, str):
        for part in value.value.split("."):
            why = _unsafe_name(part, attribute=False)
            if why is not None:
                return f"{name}(): {why}"
    return None


class _NotConstantError(Exception):
    """The expression depends on variables (or fails for another reason): left to rendering."""


def _costly(tree: nodes.Template) -> list[tuple[nodes.Node, str]]:
    """Constant expressions that would go over a rendering bound (`{{ 'a' * 10**9 }}`).

    Each is worked out with the same bounded operators rendering uses, so this is fast: an
    operator over a bound stops before it computes anything large."""
    from jinja2 import nodes

    from sopdsl.templating import TemplateLimitError

    folded = (nodes.BinExpr, nodes.Concat, nodes.UnaryExpr)
    found: list[tuple[nodes.Node, str]] = []

    def visit(node: nodes.Node) -> None:
        if isinstance(node, folded):
            try:
                _fold(node)
                return
            except TemplateLimitError as exc:
                found.append((node, str(exc)))
                return
            except _NotConstantError:
                pass
        for child in node.iter_child_nodes():
            visit(child)

    visit(tree)
    return found


_PLAIN_BINOPS = {"-": lambda a, b: a - b, "/": lambda a, b: a / b, "//": lambda a, b: a // b}


def _fold(node: nodes.Node) -> object:
    """The value of a constant expression, or `_NotConstantError`; `TemplateLimitError` over a bound."""
    from jinja2 import nodes

    from sopdsl.templating import TemplateLimitError, binop, environment

    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, nodes.List | nodes.Tuple):
        items = [_fold(item) for item in node.items]
        return items if isinstance(node, nodes.List) else tuple(items)
    try:
        if isinstance(node, nodes.Concat):
            return environment().join_text(tuple(_fold(part) for part in node.nodes))
        if isinstance(node, nodes.BinExpr):
            left, right = _fold(node.left), _fold(node.right)
            if node.operator in _PLAIN_BINOPS:
                return _PLAIN_BINOPS[node.operator](left, right)
            return binop(node.operator, left, right)
        if isinstance(node, nodes.Neg | nodes.Pos):
            value = _fold(node.node)
            return -value if isinstance(node, nodes.Neg) else +value  # type: ignore[operator]
    except (TemplateLimitError, _NotConstantError):
        raise
    except Exception as exc:  # `1 / 0`, `'a' - 1`: rendering reports them, with the data at hand
        raise _NotConstantError from exc
    raise _NotConstantError
