"""Syntax tree to canonical text: what `sopdsl fmt` writes.

Input: a `Source` (`format_source`) or a parsed `nodes.File` (`format_file`). Output: the same
program in one canonical layout, every comment kept. The output parses to the same syntax tree
(spans aside), and formatting it again changes nothing.

The layout:

- Four spaces per level. One declaration, setting, rule, option or step per line. A block's
  `{` ends the line that opens it and its `}` stands on its own line; `} else {` and
  `} else if C {` continue that closing line. An empty block is `{` and `}` on two lines.
- Short forms stay short: `do: STEP`, `at X: STEP` and split arms `red 50%: STEP`; a STEP
  that opens a block continues from that line.
- A template's attachments and mentions follow it one a line, one level deeper
  (`    with image "a.png"`, `    mentioning member`).
- Event and action fields and group options stay on the declaration's line, as in
  `{ a: text, b: number }` and `{ tagged "a", "b" operator "x" }`, unless comments sit between
  the braces; then one a line. Empty braces are dropped unless they hold comments.
- One space between words; `a, b` in lists; `name: type`; `x = y`; operators spaced;
  `member.field`, `[a, b]`, `call f(a = 1)`; parentheses in conditions exactly where the tree
  needs them. Numbers, times and dates are written as the user wrote them.
- One-line strings are re-escaped (`\\"`, `\\\\`, `\\n`, `\\t`). A \"\"\"text block\"\"\" opens at
  the end of its line; its lines sit at the enclosing level + 4, the closing quotes on a line of
  their own at that level, and the rest of the statement follows them.
- Comments: a comment on its own line stays before the line holding the code after it, at
  that line's indentation (before a `}` line: at the indentation inside the block). A trailing
  comment stays at the end of the line holding the code before it, two spaces after the code
  (after a block opened and closed on its line, `if C { stop }  # …`: at the end of the line
  that opens the block, the line it was on);
  the trailing comments of consecutive lines at one indentation line up two spaces after the
  longest (CJK characters count two columns). When reflowing brings several trailing comments
  onto one line, all but the last move above it. Comments after the last declaration stay at
  the end. The `\r` that ends a comment in a file with CRLF line ends is dropped.
- Blank lines: none at the start of the file, after a line ending in `{` or before a `}` line;
  a run of blank lines becomes one; elsewhere a blank line is kept where the source had one.
  At top level a playbook or policy block, with the comments before it, always has one blank
  line between it and its neighbours.
- The text ends with exactly one newline (an empty program is empty text).

This module turns declarations into rows of code (`_Printer`) and checks the result; the text
of each node is written by `unparse`, and rows become lines, with the comments, in `layout`.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from sopdsl.errors import ParseError
from sopdsl.source import Source, Span
from sopdsl.syntax import nodes as n
from sopdsl.syntax.layout import _comment_text, _Locator, _render, _Row
from sopdsl.syntax.parser import parse
from sopdsl.syntax.text import duration_text as _duration
from sopdsl.syntax.text import str_text as _str
from sopdsl.syntax.text import strs_text as _strs
from sopdsl.syntax.unparse import (
    _cal_expr,
    _cond,
    _rule,
    _setting,
    _simple_declaration,
    _simple_step,
    _template_extra,
    _title,
    platform_rule,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

_T = TypeVar("_T")

_GROUP_WORDS = {
    n.GroupOptionKind.TAGS: "tagged",
    n.GroupOptionKind.TIMEZONE: "timezone",
    n.GroupOptionKind.OPERATOR: "operator",
}


def format_source(source: Source) -> str:
    """Format one source; raise `ParseError` if it does not parse."""
    file = parse(source)
    result = format_file(file, source=source)
    _verify(file, Source(source.path, result))
    return result


def format_file(file: n.File, *, source: Source | None = None) -> str:
    """Format a parsed file; with its `source`, comments next to braces are placed exactly."""
    locator = _Locator(file, source)
    printer = _Printer(locator)
    chunks: list[tuple[int, bool]] = []
    for declaration in file.declarations:
        chunks.append(
            (len(printer.rows), isinstance(declaration, n.PlaybookDecl | n.PolicyDecl | n.PlatformDecl))
        )
        printer.declaration(declaration)
    return _render(printer.rows, chunks, locator)


# ---- lines of code --------------------------------------------------------------------------


class _Printer:
    """Turns declarations into rows, in source order."""

    def __init__(self, locator: _Locator) -> None:
        self.loc = locator
        self.rows: list[_Row] = []

    def row(
        self, indent: int, text: str, start: int, end: int, *, opens: bool = False, closes: bool = False
    ) -> None:
        self.rows.append(_Row(indent, text, start, max(start, end), opens, closes))

    def block(
        self,
        indent: int,
        head: str,
        span: Span,
        brace_from: int,
        items: Sequence[_T],
        emit: Callable[[_T, int], None],
    ) -> None:
        """`head {`, the items one level deeper, `}`; the block's `}` ends `span`."""
        brace = self.loc.find("{", brace_from, brace_from)
        self.row(indent, f"{head} {{", span.start, brace + 1, opens=True)
        for item in items:
            emit(item, indent + 1)
        self.row(indent, "}", span.end - 1, span.end, closes=True)

    def chain(self, indent: int, span: Span, parts: Sequence[_Part]) -> None:
        """`A {` steps `} B {` steps ... `}`, as in if/else and then/else."""
        after = span.start
        for i, part in enumerate(parts):
            text = part.text
            start = span.start
            if i > 0:
                start = self.loc.find("}", after, after if part.close_guess is None else part.close_guess)
                text = "} " + text
            search = part.brace_from if part.brace_from is not None else start + 1
            brace = self.loc.find("{", search, search)
            self.row(indent, text + " {", start, brace + 1, opens=True, closes=i > 0)
            after = brace + 1
            for step in part.steps:
                self.step(step, indent + 1)
                after = step.span.end
        self.row(indent, "}", span.end - 1, span.end, closes=True)

    def short(self, indent: int, head: str, start: int, step: n.Step) -> None:
        """`head: STEP`; a step that opens a block continues from this line."""
        first = len(self.rows)
        self.step(step, indent)
        row = self.rows[first]
        row.text = f"{head}: {row.text}"
        row.start = start

    # ---- declarations ----

    def declaration(self, d: n.Declaration) -> None:
        if isinstance(d, n.PlaybookDecl):
            head = f"playbook {d.name.text}{_title(d.title)}"
            self.block(0, head, d.span, _head_end(d.name, d.title), d.items, self.item)
        elif isinstance(d, n.PolicyDecl):
            self.block(0, "policy", d.span, d.span.start + len("policy"), d.rules, self.rule)
        elif isinstance(d, n.PlatformDecl):
            end = d.title.span.end if d.title is not None else d.span.start + len("platform")
            self.block(0, f"platform{_title(d.title)}", d.span, end, d.rules, self.platform_rule)
        elif isinstance(d, n.GroupDecl):
            self.group(d)
        elif isinstance(d, n.EventDecl | n.ActionDecl):
            self.fields(d)
        elif isinstance(d, n.TemplateDecl) and d.extras:
            self.row(0, _simple_declaration(d), d.span.start, d.body.span.end)
            for extra in d.extras:
                self.row(1, _template_extra(extra), extra.span.start, extra.span.end)
        else:
            self.row(0, _simple_declaration(d), d.span.start, d.span.end)

    def group(self, d: n.GroupDecl) -> None:
        options = [(f"{_GROUP_WORDS[o.kind]} {_strs(o.values)}", o.span) for o in d.options]
        self.braces(f"group {d.name.text}{_title(d.title)}", d.span, _head_end(d.name, d.title), options, "")

    def fields(self, d: n.EventDecl | n.ActionDecl) -> None:
        keyword = "event" if isinstance(d, n.EventDecl) else "action"
        fields = [(f"{f.name.text}: {f.type.text}", f.span) for f in d.fields]
        self.braces(
            f"{keyword} {d.name.text}{_title(d.title)}", d.span, _head_end(d.name, d.title), fields, ","
        )

    def braces(
        self, head: str, span: Span, head_end: int, parts: list[tuple[str, Span]], separator: str
    ) -> None:
        """A declaration with `{ a, b }` on its line, or one part a line if comments sit inside."""
        brace = self.loc.find("{", head_end, head_end, limit=span.end)
        if self.loc.within(brace, span.end):
            self.row(0, f"{head} {{", span.start, brace + 1, opens=True)
            for i, (text, part_span) in enumerate(parts):
                end = separator if i < len(parts) - 1 else ""
                self.row(1, text + end, part_span.start, part_span.end)
            self.row(0, "}", span.end - 1, span.end, closes=True)
        elif parts:
            inner = f"{separator} ".join(text for text, _ in parts)
            self.row(0, f"{head} {{ {inner} }}", span.start, span.end)
        else:
            # `{}` says nothing the tree keeps.
            self.row(0, head, span.start, span.end)

    def rule(self, rule: n.PolicyRule, indent: int) -> None:
        self.row(indent, _rule(rule), rule.span.start, rule.span.end)

    def platform_rule(self, rule: n.PlatformLimit | n.PlatformCannot, indent: int) -> None:
        self.row(indent, platform_rule(rule), rule.span.start, rule.span.end)

    # ---- playbooks ----

    def item(self, item: n.PlaybookItem, indent: int) -> None:
        if isinstance(item, n.DoSetting):
            self.stepped(indent, "do", item.span, item.span.start + len("do"), item.steps, item.braced)
        elif isinstance(item, n.AtEntry):
            head = f"at {_cal_expr(item.when)}"
            if item.for_each_member:
                head += " for each member"
            if item.cond is not None:
                head += f" when {_cond(item.cond)}"
            brace_from = item.cond.span.end if item.cond is not None else item.when.span.end
            self.stepped(indent, head, item.span, brace_from, item.steps, item.braced)
        else:
            self.row(indent, _setting(item), item.span.start, item.span.end)

    def stepped(
        self, indent: int, head: str, span: Span, brace_from: int, steps: tuple[n.Step, ...], braced: bool
    ) -> None:
        """A `head { steps }` block, or its short form `head: STEP`."""
        if braced or len(steps) != 1:
            self.block(indent, head, span, brace_from, steps, self.step)
        else:
            self.short(indent, head, span.start, steps[0])

    # ---- steps ----

    def step(self, s: n.Step, indent: int) -> None:
        if isinstance(s, n.If):
            first = s.branches[0]
            parts = [_Part(f"if {_cond(first.cond)}", first.cond.span.end, None, first.body)]
            parts.extend(
                _Part(f"else if {_cond(b.cond)}", b.cond.span.end, b.span.start, b.body)
                for b in s.branches[1:]
            )
            if s.otherwise is not None:
                parts.append(_Part("else", None, None, s.otherwise))
            self.chain(indent, s.span, parts)
        elif isinstance(s, n.Split):
            self.block(indent, "split", s.span, s.span.start + len("split"), s.arms, self.arm)
        elif isinstance(s, n.WaitFor):
            head, head_end = s.head()
            self.outcomes(indent, s, head, head_end)
        elif isinstance(s, n.Assign):
            head = f"assign {_str(s.text)} to {s.target.value} within {_duration(s.within)}"
            if s.message is not None:
                head += f" with message {s.message.text}"
            self.outcomes(indent, s, head, (s.message or s.within).span.end)
        else:
            self.row(indent, _simple_step(s), s.span.start, s.span.end)

    def outcomes(self, indent: int, s: n.WaitFor | n.Assign, head: str, head_end: int) -> None:
        """The `then { } else { }` of a wait-for or an assign."""
        parts: list[_Part] = []
        if s.then is not None:
            parts.append(_Part(f"{head} then", head_end, None, s.then))
        if s.otherwise is not None:
            if parts:
                parts.append(_Part("else", None, None, s.otherwise))
            else:
                parts.append(_Part(f"{head} else", head_end, None, s.otherwise))
        if parts:
            self.chain(indent, s.span, parts)
        else:
            self.row(indent, head, s.span.start, s.span.end)

    def arm(self, arm: n.Arm, indent: int) -> None:
        if arm.control:
            self.row(indent, f"control {arm.percent.text}%", arm.span.start, arm.span.end)
            return
        head = f"{arm.name.text} {arm.percent.text}%"
        self.stepped(indent, head, arm.span, arm.percent.span.end, arm.body, arm.braced)


@dataclass(frozen=True, slots=True)
class _Part:
    """One `text { steps }` of a chain; `brace_from` None: its `{` follows the `}` before it."""

    text: str
    brace_from: int | None
    close_guess: int | None  # where the `}` before it is, when the text is unknown
    steps: tuple[n.Step, ...]


def _head_end(name: n.Name, title: n.Str | None) -> int:
    return title.span.end if title is not None else name.span.end


# ---- the safety net -------------------------------------------------------------------------


def _shape(value: object) -> object:
    """A node as nested tuples, without spans, for comparing trees."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (
            type(value).__name__,
            *(_shape(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name != "span"),
        )
    if isinstance(value, tuple):
        return tuple(_shape(item) for item in value)
    return value


def _verify(before: n.File, after: Source) -> None:
    # Like black's safe mode: `fmt` rewrites files in place, so never write a changed program.
    try:
        reparsed = parse(after)
    except ParseError:
        reparsed = None
    same = reparsed is not None and _shape(reparsed.declarations) == _shape(before.declarations)
    kept = reparsed is not None and Counter(_comment_text(c) for c in before.comments) == Counter(
        c.text for c in reparsed.comments
    )
    if not (same and kept):
        raise RuntimeError(
            f"{before.path}: the formatter changed the program or lost a comment; "
            "the file is left as it was (this is a bug in sopdsl fmt, please report it)"
        )
