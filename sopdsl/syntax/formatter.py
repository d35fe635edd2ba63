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
  comment stays at the end of the line holding the code before it, two spaces after the code;
  the trailing comments of consecutive lines at one indentation line up two spaces after the
  longest (CJK characters count two columns). When reflowing brings several trailing comments
  onto one line, all but the last move above it. Comments after the last declaration stay at
  the end. The `\r` that ends a comment in a file with CRLF line ends is dropped.
- Blank lines: none at the start of the file, after a line ending in `{` or before a `}` line;
  a run of blank lines becomes one; elsewhere a blank line is kept where the source had one.
  At top level a playbook or policy block, with the comments before it, always has one blank
  line between it and its neighbours.
- The text ends with exactly one newline (an empty program is empty text).
"""

from __future__ import annotations

import bisect
import dataclasses
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar, assert_never

from sopdsl.errors import ParseError
from sopdsl.kinds import EVENTS
from sopdsl.source import Source, Span
from sopdsl.syntax import nodes as n
from sopdsl.syntax.parser import parse

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

INDENT = "    "

_T = TypeVar("_T")

_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t"})

# `on member joins`: each event kind's phrase, from the registry of kinds.
_EVENTS = {kind: spec.phrase for kind, spec in EVENTS.items() if spec.phrase is not None}

_GROUP_WORDS = {
    n.GroupOptionKind.TAGS: "tagged",
    n.GroupOptionKind.TIMEZONE: "timezone",
    n.GroupOptionKind.OPERATOR: "operator",
}

_TAG_TESTS = {
    n.TagTest.TAGGED: "tagged",
    n.TagTest.NOT_TAGGED: "not tagged",
    n.TagTest.ANY: "tagged any of",
    n.TagTest.ALL: "tagged all of",
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
        chunks.append((len(printer.rows), isinstance(declaration, n.PlaybookDecl | n.PolicyDecl)))
        printer.declaration(declaration)
    return _render(printer.rows, chunks, locator)


# ---- where things are in the source ---------------------------------------------------------


class _Locator:
    """Source positions: exact when the text is known, estimated from spans when it is not."""

    def __init__(self, file: n.File, source: Source | None) -> None:
        self.source = source
        self.comments = sorted(file.comments, key=lambda c: c.span.start)
        self._comment_ranges = [(c.span.start, c.span.end) for c in self.comments]
        # Without the text, lines and "is there code before this comment" come from node spans.
        known: dict[int, int] = {}
        if source is None:
            for span in _spans(file.declarations):
                known.setdefault(span.start, span.line)
                known.setdefault(span.end, span.end_line)
        self._code = sorted(known.items())
        self._code_positions = [p for p, _ in self._code]
        lines = dict(known)
        for comment in self.comments:
            lines.setdefault(comment.span.start, comment.span.line)
        self._lines = sorted(lines.items())
        self._line_positions = [p for p, _ in self._lines]

    def line(self, pos: int) -> int:
        """The 1-based line of a position."""
        if self.source is not None:
            return self.source.position(pos)[0]
        index = bisect.bisect_right(self._line_positions, pos) - 1
        return self._lines[index][1] if index >= 0 else 1

    def trailing(self, comment: n.Comment) -> bool:
        """Whether code precedes the comment on its line."""
        if self.source is not None:
            text = self.source.text
            line_start = text.rfind("\n", 0, comment.span.start) + 1
            return bool(text[line_start : comment.span.start].strip())
        index = bisect.bisect_right(self._code_positions, comment.span.start) - 1
        return index >= 0 and self._code[index][1] == comment.span.line

    def find(self, char: str, start: int, fallback: int, limit: int | None = None) -> int:
        """The first `char` at or after `start` and before `limit` outside comments, or `fallback`
        (also when the text is unknown). Callers search only stretches holding no string."""
        if self.source is None:
            return fallback
        text = self.source.text
        end = len(text) if limit is None else limit
        pos = start
        while True:
            found = text.find(char, pos, end)
            if found < 0:
                return fallback
            index = bisect.bisect_right(self._comment_ranges, (found, len(text) + 1)) - 1
            if index >= 0 and self._comment_ranges[index][0] <= found < self._comment_ranges[index][1]:
                pos = self._comment_ranges[index][1]
                continue
            return found

    def within(self, start: int, end: int) -> bool:
        """Whether a comment starts strictly between two positions."""
        return any(start < c.span.start < end for c in self.comments)


def _spans(value: object) -> Iterator[Span]:
    """Every span in a syntax tree."""
    if isinstance(value, Span):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _spans(getattr(value, f.name))
    elif isinstance(value, tuple):
        for item in value:
            yield from _spans(item)


# ---- lines of code --------------------------------------------------------------------------


@dataclass(slots=True)
class _Row:
    """One line of output code (several physical lines if it holds a text block)."""

    indent: int
    text: str
    start: int  # source position of its first token
    end: int  # source position after its last token
    opens: bool = False
    closes: bool = False
    leading: list[n.Comment] = field(default_factory=list)
    trailing: list[n.Comment] = field(default_factory=list)


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
        elif isinstance(d, n.GroupDecl):
            self.group(d)
        elif isinstance(d, n.EventDecl | n.ActionDecl):
            self.fields(d)
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
            head = f"wait {_duration(s.timeout)} for" if s.timeout is not None else "wait for"
            self.outcomes(indent, s, f"{head} {_event(s.pattern)}", s.pattern.span.end)
        elif isinstance(s, n.Assign):
            head = f"assign {_str(s.text)} to {s.target.value} within {_duration(s.within)}"
            self.outcomes(indent, s, head, s.within.span.end)
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


# ---- one-line renderings --------------------------------------------------------------------


def _str(s: n.Str) -> str:
    if s.long:
        # Lines are indented when the row is written; see `_physical_lines`. An empty value
        # needs no line of its own: a whitespace-only last line is dropped when parsed.
        return f'"""\n{s.value}\n"""' if s.value else '"""\n"""'
    return '"' + s.value.translate(_ESCAPES) + '"'


def _strs(values: Sequence[n.Str]) -> str:
    return ", ".join(_str(v) for v in values)


def _names(names: Sequence[n.Name]) -> str:
    return ", ".join(name.text for name in names)


def _title(title: n.Str | None) -> str:
    return f" {_str(title)}" if title is not None else ""


def _duration(d: n.Duration) -> str:
    return f"{d.amount.text} {d.unit.text}"


def _datetime(d: n.DateTime) -> str:
    return f"{d.date.text} {d.time.text}"


def _attr(a: n.AttrRef) -> str:
    return f"{a.root.value}.{a.field.text}"


def _value(v: n.Value) -> str:
    if isinstance(v, n.Str):
        return _str(v)
    if isinstance(v, n.Number):
        return v.text
    if isinstance(v, n.Bool):
        return "true" if v.value else "false"
    if isinstance(v, n.Date):
        return v.text
    return _attr(v)


def _bounds(bounds: Sequence[n.CalBound]) -> str:
    return "".join(f" {'until' if b.is_until else 'from'} {b.date.text}" for b in bounds)


def _times(times: Sequence[n.Time]) -> str:
    return ", ".join(t.text for t in times)


def _cal_spec(spec: n.CalSpec) -> str:
    if isinstance(spec, n.CalWeekly):
        return f"every {_names(spec.days)} at {_times(spec.times)}{_bounds(spec.bounds)}"
    if isinstance(spec, n.CalInterval):
        return f"every {_duration(spec.every)} from {_datetime(spec.start)}{_bounds(spec.bounds)}"
    if isinstance(spec, n.CalDates):
        return f"on {', '.join(d.text for d in spec.dates)} at {_times(spec.times)}"
    return f"cron {_str(spec.expression)}{_bounds(spec.bounds)}"


def _coupon_option(option: n.CouponOption) -> str:
    value = option.value
    if option.kind is n.CouponOptionKind.NOT_TRANSFERABLE:
        return "not transferable"
    if isinstance(value, n.Duration):
        return f"valid for {_duration(value)}"
    word = "worth" if option.kind is n.CouponOptionKind.WORTH else "stock"
    return f"{word} {value.text if value is not None else ''}"


def _simple_declaration(d: n.Declaration) -> str:
    if isinstance(d, n.TimezoneDecl):
        return f"timezone {_str(d.zone)}"
    if isinstance(d, n.IncludeDecl):
        return f"include {_str(d.path)}"
    if isinstance(d, n.AttributeDecl):
        return f"attribute {d.name.text}: {d.type.text}{_title(d.title)}"
    if isinstance(d, n.CounterDecl):
        return f"counter {d.name.text}{_title(d.title)}"
    if isinstance(d, n.CouponDecl):
        options = "".join(f" {_coupon_option(o)}" for o in d.options)
        return f"coupon {d.name.text}{_title(d.title)}{options}"
    if isinstance(d, n.CalendarDecl):
        return f"calendar {d.name.text}{_title(d.title)} = {_cal_spec(d.spec)}"
    if isinstance(d, n.TemplateDecl):
        tags = f" tagged {_strs(d.tags)}" if d.tags else ""
        body = f"file {_str(d.body)}" if d.from_file else _str(d.body)
        return f"template {d.name.text}{_title(d.title)}{tags} = {body}"
    raise TypeError(f"not a one-line declaration: {type(d).__name__}")


def _scope(scope: n.Scope) -> str:
    if scope.kind is n.ScopeKind.ALL:
        return "all groups"
    if scope.kind is n.ScopeKind.TAGGED:
        return f"groups tagged {_strs(scope.tags)}"
    if scope.kind is n.ScopeKind.NAMED:
        return f"groups {_names(scope.names)}"
    return "private chats"


def _rule(rule: n.PolicyRule) -> str:
    if isinstance(rule, n.QuietHours):
        return f"quiet hours {rule.start.text} - {rule.end.text}"
    if isinstance(rule, n.Cap):
        text = f"at most {rule.limit.text} {rule.noun.text}"
        text += "".join(f" per {p.text}" for p in rule.per)
        if rule.via is not None:
            text += f" via {rule.via.text}"
        if rule.overflow is not None:
            text += f" else {rule.overflow.text}"
        return text
    if isinstance(rule, n.Protect):
        return f"never kick members tagged {_strs(rule.tags)}"
    return f"at least {rule.percent.text}% of sends tagged {_str(rule.tag)} in {_scope(rule.scope)}"


def _event(p: n.EventPattern) -> str:
    if p.kind is n.EventKind.TAGGED and p.tag is not None:
        return f"member is tagged {_str(p.tag)}"
    if p.kind is n.EventKind.UNTAGGED and p.tag is not None:
        return f"member is untagged {_str(p.tag)}"
    if p.kind is n.EventKind.CUSTOM and p.custom is not None:
        return f"event {p.custom.text}"
    return _EVENTS[p.kind]


def _trigger(t: n.Trigger) -> str:
    match t:
        case n.OnEvent():
            return _event(t.pattern)
        case n.OnAbsence():
            # `member silent for` is parsed into a `message` absence whose kind has no text of its
            # own (its span is the trigger's); write it back the way the user did.
            if t.kind.text == "message" and t.kind.span == t.span:
                return f"member silent for {_duration(t.duration)}"
            return f"no {t.kind.text} for {_duration(t.duration)}"
        case n.OnDateOffset():
            at = f" at {t.at.text}" if t.at is not None else ""
            return f"{_duration(t.offset)} {'before' if t.before else 'after'} {_attr(t.attr)}{at}"
        case n.OnAnniversary():
            return f"{_attr(t.attr)} at {t.at.text}"
        case n.OnThreshold():
            return f"{_attr(t.attr)} reaches {t.threshold.text}"
        case n.OnGroupSize():
            return f"group size reaches {t.threshold.text}"
        case n.OnGroupSilent():
            return f"group silent for {_duration(t.duration)}"
        case _:
            assert_never(t)


def _cal_expr(e: n.CalExpr) -> str:
    match e:
        case n.CalRef():
            offsets = "".join(f" {'-' if o.negative else '+'} {_duration(o.duration)}" for o in e.offsets)
            at = f" at {e.at.text}" if e.at is not None else ""
            return f"{e.name.text}{offsets}{at}"
        case n.CalInline():
            return f"every {_names(e.days)} at {_times(e.times)}"
        case n.CalOnce():
            return _datetime(e.at)
        case _:
            assert_never(e)


def _setting(item: n.PlaybookItem) -> str:
    if isinstance(item, n.ScenarioSetting):
        return f"scenario {_names(item.ids)}"
    if isinstance(item, n.ScopeSetting):
        return f"in {_scope(item.scope)}"
    if isinstance(item, n.OnSetting):
        return f"on {_trigger(item.trigger)}"
    if isinstance(item, n.WhenSetting):
        return f"when {_cond(item.cond)}"
    if isinstance(item, n.RepeatSetting):
        if item.mode is n.Repeat.COOLDOWN and item.cooldown is not None:
            return f"repeat after {_duration(item.cooldown)}"
        return f"repeat {item.mode.value}"
    if isinstance(item, n.ApplySetting):
        return f"apply to {item.who.text} members"
    if isinstance(item, n.MissedSetting):
        return " ".join(["missed", *(w.text for w in item.words)])
    if isinstance(item, n.ChangeSetting):
        return f"on change {item.mode.text}"
    if isinstance(item, n.ActiveSetting):
        return f"active from {_datetime(item.start)} until {_datetime(item.end)}"
    if isinstance(item, n.VersionSetting):
        return f"version {_str(item.version)}"
    if isinstance(item, n.AuthorSetting):
        return f"author {_str(item.author)}"
    if isinstance(item, n.ReviewSetting):
        return f"reviewed by {_strs(item.reviewers)}"
    raise TypeError(f"not a one-line playbook item: {type(item).__name__}")


def _cond(c: n.Cond) -> str:
    match c:
        case n.Or():
            # `a or b and c` groups as `a or (b and c)`: only a nested `or` needs parentheses.
            return " or ".join(_operand(o, (n.Or,)) for o in c.operands)
        case n.And():
            return " and ".join(_operand(o, (n.Or, n.And)) for o in c.operands)
        case n.Not():
            return f"not {_operand(c.operand, (n.Or, n.And))}"
        case n.Paren():
            return f"({_cond(c.inner)})"
        case n.Tagged():
            tags = _str(c.tags[0]) if c.test is n.TagTest.TAGGED else _strs(c.tags)
            return f"{c.subject.value} {_TAG_TESTS[c.test]} {tags}"
        case n.Compare():
            return f"{_attr(c.left)} {c.op.value} {_value(c.right)}"
        case n.StartsWith():
            return f"{_attr(c.left)} starts with {_str(c.prefix)}"
        case n.Matches():
            return f"{_attr(c.left)} matches {_str(c.pattern)}"
        case n.InList():
            return f"{_attr(c.left)} in [{', '.join(_value(v) for v in c.values)}]"
        case n.IsSet():
            return f"{_attr(c.left)} is set"
        case n.WindowCount():
            return f"{c.kind.text} in last {_duration(c.window)} {c.op.value} {c.count.text}"
        case n.TimeBetween():
            return f"time between {c.start.text} and {c.end.text}"
        case n.WeekdayIn():
            return f"weekday in [{_names(c.days)}]"
        case n.InStock():
            return f"coupon {c.coupon.text} {'not in' if c.negated else 'in'} stock"
        case n.BoolCond():
            return "true" if c.value else "false"
        case _:
            assert_never(c)


def _operand(c: n.Cond, grouped: tuple[type, ...]) -> str:
    text = _cond(c)
    return f"({text})" if isinstance(c, grouped) else text


def _simple_step(s: n.Step) -> str:
    match s:
        case n.Send():
            via = f" via {s.via.text}" if s.via is not None else ""
            return f"send {s.template.text} to {s.target.value}{via}"
        case n.TagStep():
            return f"{'untag' if s.remove else 'tag'} {s.target.value} {_strs(s.tags)}"
        case n.Kick():
            because = f" because {_str(s.reason)}" if s.reason is not None else ""
            return f"kick {s.target.value}{because}"
        case n.Grant():
            return f"grant {s.coupon.text} to {s.target.value}"
        case n.Invite():
            return f"invite {s.target.value} to {s.group.text}"
        case n.Add():
            return f"add {'-' if s.negative else ''}{s.amount.text} to {_attr(s.attr)}"
        case n.SetStep():
            return f"set {_attr(s.attr)} = {_value(s.value)}"
        case n.Wait():
            return f"wait {_duration(s.duration)}"
        case n.Stop():
            return "stop"
        case n.Call():
            args = ", ".join(f"{a.name.text} = {_value(a.value)}" for a in s.args)
            return f"call {s.action.text}({args})"
        case n.Dissolve():
            return "dissolve group"
        case n.Assign() | n.WaitFor() | n.If() | n.Split():
            raise TypeError(f"not a one-line step: {type(s).__name__}")
        case _:
            assert_never(s)


# ---- comments, blank lines, text -----------------------------------------------------------


def _place_comments(rows: list[_Row], locator: _Locator) -> list[n.Comment]:
    """Attach each comment to a row (before it or at its end); return those left for the end."""
    starts = [row.start for row in rows]
    at_end: list[n.Comment] = []
    for comment in locator.comments:
        index = bisect.bisect_right(starts, comment.span.start) - 1
        if index >= 0 and locator.trailing(comment):
            rows[index].trailing.append(comment)
        elif index >= 0 and comment.span.start < rows[index].end:
            # Inside a line that reflowing joined: before that line.
            rows[index].leading.append(comment)
        elif index + 1 < len(rows):
            rows[index + 1].leading.append(comment)
        else:
            at_end.append(comment)
    for row in rows:
        if len(row.trailing) > 1:
            # A line ends in one comment; the others go above it, in source order.
            row.leading = sorted([*row.leading, *row.trailing[:-1]], key=lambda c: c.span.start)
            row.trailing = row.trailing[-1:]
    return at_end


@dataclass(slots=True)
class _Line:
    """A row or a comment line as written, with the source lines it came from."""

    lines: list[str]  # physical lines, indented
    first: int
    last: int
    indent: int = 0
    comment: str | None = None  # the trailing comment
    opens: bool = False
    closes: bool = False
    spacious: bool = False  # a blank line always comes before it
    blank: bool = False  # a blank line comes before it


def _comment_text(comment: n.Comment) -> str:
    # In a file with CRLF line ends the `\r` is part of the line end, not of the comment.
    return comment.text.removesuffix("\r")


def _render(rows: list[_Row], chunks: list[tuple[int, bool]], locator: _Locator) -> str:
    lines = _lines(rows, chunks, locator)
    previous: _Line | None = None
    for line in lines:
        line.blank = (
            previous is not None
            and not previous.opens
            and not line.closes
            and (line.spacious or line.first - previous.last >= 2)
        )
        previous = line
    _align(lines)
    out: list[str] = []
    for line in lines:
        if line.blank:
            out.append("")
        out.extend(line.lines)
    return "\n".join(out) + "\n" if out else ""


def _lines(rows: list[_Row], chunks: list[tuple[int, bool]], locator: _Locator) -> list[_Line]:
    at_end = _place_comments(rows, locator)
    spacious_rows = {chunks[k][0] for k in range(1, len(chunks)) if chunks[k][1] or chunks[k - 1][1]}
    lines: list[_Line] = []
    for i, row in enumerate(rows):
        spacious = i in spacious_rows
        comment_indent = INDENT * (row.indent + (1 if row.closes else 0))
        for comment in row.leading:
            line = comment.span.line
            lines.append(_Line([comment_indent + _comment_text(comment)], line, line, spacious=spacious))
            spacious = False
        last = locator.line(row.end)
        trailing = None
        if row.trailing:
            trailing = _comment_text(row.trailing[0])
            last = max(last, row.trailing[0].span.line)
        physical = _physical_lines(row)
        first = locator.line(row.start)
        lines.append(_Line(physical, first, last, row.indent, trailing, row.opens, row.closes, spacious))
    spacious = bool(chunks) and chunks[-1][1]
    for comment in at_end:
        line = comment.span.line
        lines.append(_Line([_comment_text(comment)], line, line, spacious=spacious))
        spacious = False
    return lines


def _align(lines: list[_Line]) -> None:
    """Put trailing comments at the end of their lines, lined up (two spaces after the longest
    code) within each run of consecutive one-line rows at one indentation that all have one."""
    run: list[_Line] = []
    for line in lines:
        if run and (line.comment is None or line.blank or line.indent != run[-1].indent):
            _line_up(run)
            run = []
        if line.comment is None:
            continue
        if len(line.lines) == 1:
            run.append(line)
        else:
            # After a text block's closing quotes: nothing to line up with.
            line.lines[-1] += "  " + line.comment
    _line_up(run)


def _line_up(run: list[_Line]) -> None:
    column = max((_width(line.lines[0]) for line in run), default=0) + 2
    for line in run:
        line.lines[0] += " " * (column - _width(line.lines[0])) + (line.comment or "")


def _width(text: str) -> int:
    # Editors show CJK characters two columns wide; count them so columns line up on screen.
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _physical_lines(row: _Row) -> list[str]:
    """A row's text as indented lines; lines after the first come from text blocks."""
    first, *rest = row.text.split("\n")
    inner = INDENT * (row.indent + 1)
    return [INDENT * row.indent + first, *(inner + part if part else "" for part in rest)]


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
