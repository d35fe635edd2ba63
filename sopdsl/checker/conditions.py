"""Conditions to model: guards, `if` branches and calendar-entry tests, with every reference
resolved against what its place of the flow provides and every value checked against its type."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, assert_never

from sopdsl.checker import dates, model, values
from sopdsl.checker.flow import Flow, coupon_missing, where_cap
from sopdsl.diagnostics import did_you_mean
from sopdsl.syntax import nodes
from sopdsl.syntax.text import attr_text, calc_text
from sopdsl.vocabulary import COUPON_FIELDS, GROUP_FIELDS, MEMBER_FIELDS, WINDOW_KINDS

if TYPE_CHECKING:
    from sopdsl.checker.context import Context
    from sopdsl.source import Span


def member_field(ctx: Context, ref: nodes.AttrRef) -> model.ValueType | None:
    """The type of `member.NAME` (a built-in field, a declared attribute or a counter), or None, reported."""
    name = ref.field.text
    if name in MEMBER_FIELDS:
        return MEMBER_FIELDS[name]
    attribute = ctx.table("attribute").get(name)
    if attribute is not None:
        return attribute.value.type if attribute.value else None
    if name in ctx.table("counter"):
        return model.ValueType.NUMBER
    known = [*MEMBER_FIELDS, *ctx.table("attribute"), *ctx.table("counter")]
    ctx.unknown_field(
        "SOP108",
        f"member has no field '{name}'",
        ref.field.span,
        did_you_mean(name, known) or f"declare it with `attribute {name}: text` or `counter {name}`",
    )
    return None


def _ref(ctx: Context, node: nodes.AttrRef, flow: Flow) -> model.Ref | None:
    root = node.root
    if root in (nodes.Root.MEMBER, nodes.Root.REFERRER):
        if not flow.has_member:
            ctx.error(
                "SOP116",
                f"{where_cap(flow)} has no member to read '{root.value}.{node.field.text}' from",
                node.span,
                "use `for each member` in calendar entries",
            )
            return None
        kind = member_field(ctx, node)
    elif root is nodes.Root.GROUP:
        kind = GROUP_FIELDS.get(node.field.text)
        if kind is None:
            ctx.unknown_field(
                "SOP108",
                f"group has no field '{node.field.text}'",
                node.field.span,
                did_you_mean(node.field.text, GROUP_FIELDS) or "group fields: " + ", ".join(GROUP_FIELDS),
            )
    else:
        fields = flow.event_fields or {}
        kind = fields.get(node.field.text)
        if kind is None:
            if not fields:
                ctx.error(
                    "SOP108",
                    f"{flow.where} has no event fields to read 'event.{node.field.text}' from",
                    node.span,
                )
            else:
                ctx.error(
                    "SOP108",
                    f"the event has no field '{node.field.text}'",
                    node.field.span,
                    did_you_mean(node.field.text, fields) or "fields: " + ", ".join(sorted(fields)),
                )
    if kind is None:
        return None
    return model.Ref(root=root.value, field=node.field.text, type=kind)


def check_calc(ctx: Context, node: nodes.Calc, flow: Flow) -> model.Calc | None:
    """Arithmetic as a model, or None after reporting each operand that is not a number (SOP409)
    and a division by a literal zero."""
    left, right = _calc_operand(ctx, node.left, flow), _calc_operand(ctx, node.right, flow)
    if node.op == "/" and isinstance(node.right, nodes.Number) and node.right.value == 0:
        ctx.error(
            "SOP409", "division by zero", node.right.span, "divide by a number other than 0, or by a field"
        )
        return None
    if left is None or right is None:
        return None
    return model.Calc(op=node.op, left=left, right=right)  # type: ignore[arg-type]


def _calc_operand(ctx: Context, node: nodes.Value, flow: Flow) -> model.Operand | None:
    match node:
        case nodes.Calc():
            return check_calc(ctx, node, flow)
        case nodes.Number():
            return values.number(ctx, node, "SOP409")
        case nodes.AttrRef():
            ref = _ref(ctx, node, flow)
            if ref is not None and ref.type is not model.ValueType.NUMBER:
                ctx.error(
                    "SOP409",
                    f"{ref.root}.{ref.field} is {_TYPE_WORDS[ref.type]}, and arithmetic works on numbers",
                    node.span,
                    "use a counter, a number attribute or a number field of the event",
                )
                return None
            return ref
        case nodes.Str() | nodes.Bool() | nodes.Date():  # the grammar writes none there
            ctx.error("SOP409", f"{_shown(node)} is not a number", node.span)
            return None
        case _:
            assert_never(node)


def _literal(node: nodes.Value) -> tuple[Any, model.ValueType] | None:
    match node:
        case nodes.Str():
            return node.value, model.ValueType.TEXT
        case nodes.Number():
            return node.value, model.ValueType.NUMBER
        case nodes.Bool():
            return node.value, model.ValueType.BOOL
        case nodes.Date():
            return node.text, model.ValueType.DATE
        case nodes.AttrRef() | nodes.Calc():
            return None
        case _:
            assert_never(node)


_TYPE_WORDS = {
    model.ValueType.TEXT: "text",
    model.ValueType.NUMBER: "a number",
    model.ValueType.DATE: "a date",
    model.ValueType.DATETIME: "a date and time",
    model.ValueType.BOOL: "true or false",
}
# The attribute to declare for each type of a coupon's field (`coupon.expires_at` is a date and time).
_COUPON_HINTS = {
    model.ValueType.TEXT: "set an attribute declared `: text`",
    model.ValueType.NUMBER: "set an attribute declared `: number`, or a counter",
    model.ValueType.DATETIME: "set an attribute declared `: date`, e.g. `attribute coupon_due: date`",
}
_TYPE_HINTS = {
    model.ValueType.TEXT: 'text is written in double quotes, e.g. "华东"',
    model.ValueType.NUMBER: "write a number without quotes, e.g. 3",
    model.ValueType.DATE: "write a date without quotes, e.g. 2026-11-11",
    model.ValueType.DATETIME: "write a date without quotes, e.g. 2026-11-11",
    model.ValueType.BOOL: "write true or false, without quotes",
}


def check_value(
    ctx: Context, node: nodes.Value, flow: Flow, expected: model.ValueType | None, what: str = "this"
) -> tuple[Any, bool]:
    """A checked value (literal, ref or arithmetic) for `what` (e.g. "member.level") and whether it is usable."""
    if isinstance(node, nodes.Calc):
        calc = check_calc(ctx, node, flow)
        if calc is None:
            return None, False
        if expected is not None and expected is not model.ValueType.NUMBER:
            ctx.error(
                "SOP406", f"{what} is {_TYPE_WORDS[expected]}, but {calc_text(node)} is a number", node.span
            )
            return None, False
        return calc, True
    if isinstance(node, nodes.AttrRef):
        ref = _ref(ctx, node, flow)
        if ref is None:
            return None, False
        if expected is not None and not _compatible(expected, ref.type):
            ctx.error(
                "SOP406",
                f"{what} is {_TYPE_WORDS[expected]}, but {ref.root}.{ref.field} is {_TYPE_WORDS[ref.type]}",
                node.span,
            )
            return None, False
        return ref, True
    literal = _literal(node)
    assert literal is not None
    value, kind = literal
    if kind is model.ValueType.DATE:
        checked = values.date(ctx, node)  # type: ignore[arg-type]
        if checked is None:
            return None, False
        value = checked
    if isinstance(node, nodes.Number) and values.number(ctx, node) is None:
        return None, False
    if expected is not None and not _compatible(expected, kind):
        ctx.error(
            "SOP406",
            f"{what} is {_TYPE_WORDS[expected]}, but {_shown(node)} is {_TYPE_WORDS[kind]}",
            node.span,
            _TYPE_HINTS[expected],
        )
        return None, False
    return value, True


def check_coupon_field(
    ctx: Context, node: nodes.CouponField, flow: Flow, expected: model.ValueType, what: str
) -> model.CouponField | None:
    """`coupon.F` where `set` reads it for `what`, or None, reported: a field coupons have, read
    where a coupon is granted on every path (as templates read it), of the type `what` takes."""
    name = node.field.text
    kind = COUPON_FIELDS.get(name)
    if kind is None:
        ctx.error(
            "SOP108",
            f"coupons have no field '{name}'",
            node.field.span,
            did_you_mean(name, COUPON_FIELDS) or f"a coupon's fields: {', '.join(COUPON_FIELDS)}",
        )
        return None
    then = "the engine would have no coupon to read it from"
    missing = coupon_missing(flow, then, "this `set`", "this `set`")
    if missing is not None:
        message, hint = missing
        ctx.error("SOP202", f"this step reads {node.text()}, {message}", node.span, hint)
        return None
    if not _compatible(expected, kind):
        ctx.error(
            "SOP406",
            f"{what} is {_TYPE_WORDS[expected]}, but {node.text()} is {_TYPE_WORDS[kind]}",
            node.span,
            _COUPON_HINTS.get(kind),
        )
        return None
    return model.CouponField(field=name, type=kind)


def _shown(node: nodes.Value) -> str:
    match node:
        case nodes.Str():
            text = node.value if len(node.value) <= 20 else node.value[:17] + "..."
            return f'"{text}"'
        case nodes.Number() | nodes.Date():
            return node.text if len(node.text) <= 20 else node.text[:17] + "..."
        case nodes.Bool():
            return "true" if node.value else "false"
        case nodes.AttrRef():
            return "the value"
        case nodes.Calc():
            return calc_text(node)
        case _:
            assert_never(node)


def _compatible(expected: model.ValueType, actual: model.ValueType) -> bool:
    dates = {model.ValueType.DATE, model.ValueType.DATETIME}
    return expected == actual or (expected in dates and actual in dates)


def check_cond(ctx: Context, node: nodes.Cond, flow: Flow) -> model.Cond | None:
    """A condition as a model, or None if it has errors (reported), resolved against what `flow` provides."""
    match node:
        case nodes.Paren():
            return check_cond(ctx, node.inner, flow)
        case nodes.Not():
            inner = check_cond(ctx, node.operand, flow)
            return model.NotCond(operand=inner) if inner is not None else None
        case nodes.And() | nodes.Or():
            parts = [check_cond(ctx, c, flow) for c in node.operands]
            if any(p is None for p in parts):
                return None
            operands = tuple(p for p in parts if p is not None)
            if isinstance(node, nodes.And):
                return model.AndCond(operands=operands)
            return model.OrCond(operands=operands)
        case nodes.Tagged():
            if node.subject is nodes.Subject.MEMBER and not flow.has_member:
                ctx.error(
                    "SOP116",
                    f"{where_cap(flow)} has no member to test tags of",
                    node.span,
                    "use `for each member`",
                )
                return None
            if node.subject is nodes.Subject.GROUP and not flow.has_group:
                ctx.error("SOP116", "a playbook for private chats has no group to test tags of", node.span)
                return None
            test = {
                "tagged": "tagged",
                "not tagged": "not_tagged",
                "tagged any of": "any",
                "tagged all of": "all",
            }[node.test.value]
            return model.TagCond(
                subject=node.subject.value,
                test=test,  # type: ignore[arg-type]
                tags=tuple(s.value for s in node.tags),
            )
        case nodes.Compare() if isinstance(node.left, nodes.Calc) or isinstance(node.right, nodes.Calc):
            return _calc_compare(ctx, node, flow)
        case nodes.Compare():
            assert isinstance(node.left, nodes.AttrRef)  # arithmetic is the case above
            left = _ref(ctx, node.left, flow)
            if left is None:
                return None
            if node.op.value in ("<", ">", "<=", ">=") and left.type in (
                model.ValueType.TEXT,
                model.ValueType.BOOL,
            ):
                ctx.error(
                    "SOP406",
                    f"{left.root}.{left.field} is {left.type.value}; it cannot be ordered with {node.op.value}",
                    node.span,
                    "compare text with == or !=, or use starts with / matches",
                )
                return None
            right, ok = check_value(ctx, node.right, flow, left.type, f"{left.root}.{left.field}")
            return model.CompareCond(left=left, op=node.op.value, right=right) if ok else None
        case nodes.StartsWith() | nodes.Matches():
            left = _ref(ctx, node.left, flow)
            if left is not None and left.type is not model.ValueType.TEXT:
                ctx.error(
                    "SOP406", f"{left.root}.{left.field} is {left.type.value}, not text", node.left.span
                )
                return None
            if isinstance(node, nodes.StartsWith):
                return model.StartsWithCond(left=left, prefix=node.prefix.value) if left else None
            try:
                re.compile(node.pattern.value)
            except re.error as exc:
                ctx.error(
                    "SOP405",
                    f"invalid pattern: {exc.msg}",
                    _pattern_span(ctx, node.pattern, exc.pos),
                    "patterns are Python regular expressions",
                )
                return None
            except (RecursionError, OverflowError):  # groups nested too deep, a repeat count too large
                ctx.error("SOP405", "invalid pattern: too complex", node.pattern.span, "simplify the pattern")
                return None
            return model.MatchesCond(left=left, pattern=node.pattern.value) if left else None
        case nodes.InList():
            left = _ref(ctx, node.left, flow)
            if left is None:
                return None
            checked = [check_value(ctx, v, flow, left.type, f"{left.root}.{left.field}") for v in node.values]
            if not all(ok for _, ok in checked):
                return None
            if any(isinstance(v, model.Ref | model.Calc) for v, _ in checked):
                ctx.error("SOP406", "a list holds literal values only", node.span)
                return None
            return model.InCond(left=left, values=tuple(v for v, _ in checked))
        case nodes.IsSet():
            left = _ref(ctx, node.left, flow)
            return model.IsSetCond(left=left) if left else None
        case nodes.WindowCount():
            kind = _window_key(ctx, node.kind.text)
            window = values.duration(ctx, node.window)
            if kind is None:
                customs = [f"{name}s" for name in ctx.table("event")]
                ctx.error(
                    "SOP112",
                    f"cannot count '{node.kind.text}'",
                    node.kind.span,
                    did_you_mean(node.kind.text, [*WINDOW_KINDS, *customs])
                    or "count messages, orders, invites, violations, joins, leaves, or a declared event's name",
                )
            if not flow.has_member:
                ctx.error(
                    "SOP116", f"{where_cap(flow)} has no member whose {node.kind.text} to count", node.span
                )
                return None
            count = values.whole(ctx, node.count, "a count")
            if kind is None or window is None or count is None:
                return None
            return model.WindowCond(event=kind, window=window, op=node.op.value, count=count)
        case nodes.TimeBetween():
            start, end = values.time(ctx, node.start), values.time(ctx, node.end)
            return model.TimeCond(start=start, end=end) if start and end else None
        case nodes.DateBetween() | nodes.DateIn():
            return dates.date_cond(ctx, node)
        case nodes.WeekdayIn():
            days = values.weekdays(ctx, node.days)
            return model.WeekdayCond(weekdays=days) if days is not None else None
        case nodes.InStock():
            return _stock(ctx, node)
        case nodes.BoolCond():
            return model.ConstCond(value=node.value)
        case _:
            assert_never(node)


def _window_key(ctx: Context, word: str) -> str | None:
    """The event key a window counts: a built-in kind's word (`messages`), or a declared event's
    name, as declared or with an `s` (`checkins` for `event checkin`)."""
    kind = WINDOW_KINDS.get(word)
    if kind is not None:
        return kind.value
    events = ctx.table("event")
    for name in (word, word.removesuffix("s")):
        if name in events:
            return f"custom:{name}"
    return None


def _calc_compare(ctx: Context, node: nodes.Compare, flow: Flow) -> model.Cond | None:
    """A comparison with arithmetic on a side: both sides numbers."""
    left = (
        check_calc(ctx, node.left, flow)
        if isinstance(node.left, nodes.Calc)
        else _calc_operand(ctx, node.left, flow)
    )
    what = calc_text(node.left) if isinstance(node.left, nodes.Calc) else attr_text(node.left)
    right, ok = check_value(ctx, node.right, flow, model.ValueType.NUMBER, what)
    if left is None or not ok:
        return None
    return model.CalcCond(left=left, op=node.op.value, right=right)


def _stock(ctx: Context, node: nodes.InStock) -> model.Cond | None:
    name = node.coupon.text
    coupon: model.Coupon | None = ctx.lookup("coupon", "SOP107", name, node.coupon.span)
    if coupon is None:
        return None
    if coupon.stock is None:
        # Not an error: the test still reads right, it just never changes the outcome.
        ctx.warning(
            "SOP408",
            f"coupon '{name}' has no stock, so it never runs out and this test is always "
            + ("false" if node.negated else "true"),
            node.span,
            f"declare how many there are (`coupon {name} ... stock 50`), or drop the test",
        )
    return model.StockCond(coupon=name, in_stock=not node.negated)


def _pattern_span(ctx: Context, pattern: nodes.Str, pos: int | None) -> Span:
    """The character of a pattern a regex error is at, if the literal has no escapes to shift it."""
    source = ctx.loaded.sources.get(pattern.span.path)
    span = pattern.span
    if source is None or pos is None or pattern.long or span.line != span.end_line:
        return span
    if source.text[span.start + 1 : span.end - 1] != pattern.value:
        return span
    at = span.start + 1 + min(pos, max(len(pattern.value) - 1, 0))
    return source.span(at, at + 1)
