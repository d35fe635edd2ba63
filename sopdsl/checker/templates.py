"""Template checks: Jinja2 syntax in a sandbox, and the variables each template reads.

Input: template text. Output: the dotted variable paths it uses (`member.name`), or a located
diagnostic for a syntax error. The use-site check (does this send provide those variables?)
lives with the playbook checks, which know the context.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from jinja2 import TemplateSyntaxError, nodes

from sopdsl.source import Span
from sopdsl.templating import environment

if TYPE_CHECKING:
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


def variables(ctx: Context, text: str, span: Span, long: bool, what: str) -> tuple[str, ...] | None:
    """The variable paths a template reads, or None after reporting a syntax error."""
    if "{" not in text:
        return ()  # plain text: no Jinja syntax can start without a brace
    simple = _simple_paths(text)
    if simple is not None:
        return simple
    env = environment()
    try:
        tree = env.parse(text)
        undeclared = _undeclared(tree)
        found: set[str] = set()
        for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Name)):
            path = _path(node)
            if path and path.split(".")[0] in undeclared:
                found.add(path)
        loading = next(
            iter(tree.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport))), None
        )
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
    # Keep only the longest paths: `member.name` covers `member`.
    covered = {q.rsplit(".", i)[0] for q in found for i in range(1, q.count(".") + 1)}
    return tuple(sorted(found - covered))


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
        path = match.group(1)
        if path.split(".", 1)[0] in _JINJA_WORDS:
            return None
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
