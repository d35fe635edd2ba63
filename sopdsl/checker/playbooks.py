"""Playbooks to model: settings, triggers, conditions and steps, with every name resolved, every
template use checked against what its place provides, and the flow checks (waits without a
timeout, unreachable steps, kicks that could hit protected members)."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sopdsl.checker import model, templates, values
from sopdsl.checker.context import Context, loc
from sopdsl.checker.declarations import calendar_rule, scope
from sopdsl.diagnostics import did_you_mean
from sopdsl.syntax import nodes
from sopdsl.vocabulary import (
    ABSENCE_KINDS,
    BUILTIN_COUNTERS,
    COUPON_FIELDS,
    EVENT_FIELDS,
    GROUP_FIELDS,
    MEMBER_FIELDS,
    WINDOW_KINDS,
)

if TYPE_CHECKING:
    from sopdsl.source import Span

_MEMBER_TARGETS = {nodes.Target.MEMBER, nodes.Target.REFERRER}


@dataclass(frozen=True)
class Flow:
    """What a place in a playbook provides: a member, a group, an event's fields, coupons."""

    has_member: bool
    has_group: bool
    event_fields: dict[str, model.ValueType] | None
    grants: bool
    excluded: frozenset[str]
    where: str


def check_playbook(ctx: Context, decl: nodes.PlaybookDecl, policy: model.Policy) -> model.Playbook | None:
    """Check one playbook and build its model, or None if it has errors."""
    before = sum(d.is_error for d in ctx.diagnostics)
    fields: dict[str, Any] = {"name": decl.name.text, "title": decl.title.value if decl.title else None}
    seen: dict[type, nodes.PlaybookItem] = {}
    triggers: list[model.Trigger] = []
    trigger_nodes: list[nodes.Trigger] = []
    do: nodes.DoSetting | None = None
    when: nodes.WhenSetting | None = None
    entries: list[nodes.AtEntry] = []
    for item in decl.items:
        if not isinstance(item, nodes.OnSetting | nodes.AtEntry):
            if type(item) in seen:
                ctx.error(
                    "SOP114",
                    f"this playbook already has a '{_setting_word(item)}' setting",
                    item.span,
                    f"the first one is at line {seen[type(item)].span.line}; keep one",
                )
                continue
            seen[type(item)] = item
        if isinstance(item, nodes.ScenarioSetting):
            fields["scenarios"] = tuple(n.text for n in item.ids)
        elif isinstance(item, nodes.ScopeSetting):
            fields["scope"] = scope(ctx, item.scope)
        elif isinstance(item, nodes.OnSetting):
            trigger = _trigger(ctx, item.trigger)
            trigger_nodes.append(item.trigger)
            if trigger is not None:
                triggers.append(trigger)
        elif isinstance(item, nodes.WhenSetting):
            when = item
        elif isinstance(item, nodes.RepeatSetting):
            _repeat(ctx, item, fields)
        elif isinstance(item, nodes.ApplySetting):
            _choice(
                ctx,
                item.who,
                {"new": False, "all": True},
                "apply_to_existing",
                fields,
                "apply to new|all members",
            )
        elif isinstance(item, nodes.MissedSetting):
            word = " ".join(n.text for n in item.words)
            options = {"skip": model.Missed.SKIP, "run latest": model.Missed.RUN_LATEST}
            if word in options:
                fields["missed"] = options[word]
            else:
                ctx.error(
                    "SOP112",
                    f"unknown missed-firing policy '{word}'",
                    item.span,
                    "write `missed skip` or `missed run latest`",
                )
        elif isinstance(item, nodes.ChangeSetting):
            options_change = {"finish": model.OnChange.FINISH, "migrate": model.OnChange.MIGRATE}
            _choice(ctx, item.mode, options_change, "on_change", fields, "on change finish|migrate")
        elif isinstance(item, nodes.ActiveSetting):
            start, end = values.datetime(ctx, item.start), values.datetime(ctx, item.end)
            if start is not None and end is not None and end <= start:
                ctx.error("SOP306", "the playbook's active window ends before it starts", item.span)
            fields["active_from"], fields["active_until"] = start, end
        elif isinstance(item, nodes.VersionSetting | nodes.AuthorSetting | nodes.ReviewSetting):
            _metadata(ctx, item, fields)
        elif isinstance(item, nodes.DoSetting):
            do = item
        else:
            entries.append(item)

    if trigger_nodes and do is None:
        ctx.error(
            "SOP115",
            f"playbook '{decl.name.text}' has a trigger but no steps",
            decl.name.span,
            "add do { ... } with the steps to run",
        )
    if do is not None and not trigger_nodes:
        ctx.error(
            "SOP115",
            f"playbook '{decl.name.text}' has steps but no trigger",
            do.span,
            "add `on ...` (for example `on member joins`) before `do`",
        )
    if not trigger_nodes and not entries and do is None:
        ctx.error(
            "SOP115",
            f"playbook '{decl.name.text}' does nothing",
            decl.name.span,
            "add `on TRIGGER do { ... }` or `at CALENDAR: STEP`",
        )

    pb_scope: model.Scope = fields.get("scope", model.Scope())
    has_group = pb_scope.kind != "private"
    grants = _any_step(decl, nodes.Grant)
    trigger_flow = _trigger_flow(ctx, trigger_nodes, has_group, grants)
    guard_flow = (
        trigger_flow
        if trigger_nodes
        else Flow(
            bool(entries) and all(e.for_each_member for e in entries),
            has_group,
            None,
            grants,
            frozenset(),
            "this playbook",
        )
    )
    if when is not None:
        fields["guard"] = _cond(ctx, when.cond, guard_flow)
        excluded = _excluded(when.cond)
        trigger_flow = dataclasses.replace(trigger_flow, excluded=excluded)
    else:
        excluded = frozenset()
    if do is not None:
        fields["steps"] = _block(ctx, do.steps, trigger_flow, policy)
    fields["schedule"] = tuple(
        e
        for e in (_entry(ctx, entry, has_group, grants, excluded, policy) for entry in entries)
        if e is not None
    )
    fields["triggers"] = tuple(triggers)
    fields["loc"] = loc(decl.span)
    _review_check(ctx, decl, fields)
    if sum(d.is_error for d in ctx.diagnostics) > before:
        return None
    return model.Playbook.model_validate(fields)


def _setting_word(item: nodes.PlaybookItem) -> str:
    words = {
        nodes.ScenarioSetting: "scenario",
        nodes.ScopeSetting: "in",
        nodes.WhenSetting: "when",
        nodes.RepeatSetting: "repeat",
        nodes.ApplySetting: "apply to",
        nodes.MissedSetting: "missed",
        nodes.ChangeSetting: "on change",
        nodes.ActiveSetting: "active",
        nodes.VersionSetting: "version",
        nodes.AuthorSetting: "author",
        nodes.ReviewSetting: "reviewed by",
        nodes.DoSetting: "do",
    }
    return words.get(type(item), "setting")


def _metadata(
    ctx: Context,
    item: nodes.VersionSetting | nodes.AuthorSetting | nodes.ReviewSetting,
    fields: dict[str, Any],
) -> None:
    """`version`, `author`, `reviewed by`: shown in plans and logs, so each must say something."""
    if isinstance(item, nodes.VersionSetting):
        if _blank_or_multiline(ctx, item.version, "the version", 'write the revision, e.g. `version "1.2"`'):
            fields["version"] = item.version.value.strip()
        return
    if isinstance(item, nodes.AuthorSetting):
        if _blank_or_multiline(ctx, item.author, "the author", 'write who wrote it, e.g. `author "小美"`'):
            fields["author"] = item.author.value.strip()
        return
    names: list[str] = []
    for reviewer in item.reviewers:
        if _blank_or_multiline(
            ctx, reviewer, "a reviewer", 'write who reviewed it, e.g. `reviewed by "阿峰"`'
        ):
            name = reviewer.value.strip()
            if name in names:
                ctx.error("SOP117", f"'{name}' is named twice as a reviewer", reviewer.span)
            names.append(name)
    fields["reviewers"] = tuple(dict.fromkeys(names))


def _blank_or_multiline(ctx: Context, text: nodes.Str, what: str, hint: str) -> bool:
    """Whether a metadata string is usable: not empty and on one line (plans and logs show it)."""
    if not text.value.strip():
        ctx.error("SOP117", f"{what} is empty", text.span, hint)
        return False
    if "\n" in text.value:
        ctx.error("SOP117", f"{what} spans several lines", text.span, "write it on one line")
        return False
    return True


def _review_check(ctx: Context, decl: nodes.PlaybookDecl, fields: dict[str, Any]) -> None:
    """A revision reviewed only by the person who wrote it has had no second pair of eyes."""
    author = fields.get("author")
    reviewers = fields.get("reviewers", ())
    if author is not None and reviewers and all(r == author for r in reviewers):
        span = next(i.span for i in decl.items if isinstance(i, nodes.ReviewSetting))
        ctx.warning(
            "SOP117",
            f"this playbook is reviewed only by its author '{author}'",
            span,
            "have someone else review it before it goes live, and name them here",
        )


def _choice(
    ctx: Context, word: nodes.Name, options: dict[str, Any], key: str, fields: dict[str, Any], form: str
) -> None:
    if word.text in options:
        fields[key] = options[word.text]
    else:
        ctx.error(
            "SOP112",
            f"unknown option '{word.text}'",
            word.span,
            did_you_mean(word.text, options) or f"write `{form}`",
        )


def _repeat(ctx: Context, item: nodes.RepeatSetting, fields: dict[str, Any]) -> None:
    if item.mode is nodes.Repeat.ONCE:
        fields["repeat"] = model.Repeat.ONCE
    elif item.mode is nodes.Repeat.ALWAYS:
        fields["repeat"] = model.Repeat.ALWAYS
    elif item.cooldown is not None:
        fields["repeat"] = model.Repeat.COOLDOWN
        fields["cooldown"] = values.duration(ctx, item.cooldown)


def _any_step(decl: nodes.PlaybookDecl, kind: type) -> bool:
    stack: list[Any] = list(decl.items)
    while stack:
        item = stack.pop()
        if isinstance(item, kind):
            return True
        if isinstance(item, nodes.DoSetting | nodes.AtEntry):
            stack.extend(item.steps)
        elif isinstance(item, nodes.If):
            stack.extend(s for b in item.branches for s in b.body)
            stack.extend(item.otherwise or ())
        elif isinstance(item, nodes.WaitFor | nodes.Assign):
            stack.extend(item.then or ())
            stack.extend(item.otherwise or ())
        elif isinstance(item, nodes.Split):
            stack.extend(s for a in item.arms for s in a.body)
    return False


# ---- triggers -------------------------------------------------------------------------------------


def _pattern(ctx: Context, node: nodes.EventPattern) -> model.EventPattern | None:
    kind = node.kind
    if node.kind is nodes.EventKind.CUSTOM and node.custom is not None:
        if ctx.lookup("event", "SOP109", node.custom.text, node.custom.span) is None:
            return None
        return model.EventPattern(kind=kind, custom=node.custom.text)
    return model.EventPattern(kind=kind, tag=node.tag.value if node.tag is not None else None)


def _pattern_fields(ctx: Context, pattern: model.EventPattern) -> dict[str, model.ValueType]:
    if pattern.kind is model.EventKind.CUSTOM and pattern.custom is not None:
        declared = ctx.table("event").get(pattern.custom)
        return dict(declared.value.fields) if declared and declared.value else {}
    return dict(EVENT_FIELDS[pattern.kind])


def _member_field(ctx: Context, ref: nodes.AttrRef) -> model.ValueType | None:
    name = ref.field.text
    if name in MEMBER_FIELDS:
        return MEMBER_FIELDS[name]
    attribute = ctx.table("attribute").get(name)
    if attribute is not None:
        return attribute.value.type if attribute.value else None
    if name in ctx.table("counter"):
        return model.ValueType.NUMBER
    known = [*MEMBER_FIELDS, *ctx.table("attribute"), *ctx.table("counter")]
    ctx.error(
        "SOP108",
        f"member has no field '{name}'",
        ref.field.span,
        did_you_mean(name, known) or f"declare it with `attribute {name}: text` or `counter {name}`",
    )
    return None


def _trigger(ctx: Context, node: nodes.Trigger) -> model.Trigger | None:
    where = loc(node.span)
    if isinstance(node, nodes.OnEvent):
        pattern = _pattern(ctx, node.pattern)
        return model.OnEvent(pattern=pattern, loc=where) if pattern else None
    if isinstance(node, nodes.OnAbsence):
        kind = ABSENCE_KINDS.get(node.kind.text)
        duration = values.duration(ctx, node.duration)
        if kind is None:
            ctx.error(
                "SOP112",
                f"cannot watch for absence of '{node.kind.text}'",
                node.kind.span,
                did_you_mean(node.kind.text, ABSENCE_KINDS)
                or "write `no order for ...` or `member silent for ...`",
            )
        if kind is None or duration is None:
            return None
        return model.OnAbsence(event=kind, duration=duration, loc=where)
    if isinstance(node, nodes.OnDateOffset | nodes.OnAnniversary):
        kind_ = _date_attribute(ctx, node.attr)
        at = values.time(ctx, node.at) if node.at is not None else None
        if isinstance(node, nodes.OnAnniversary):
            return (
                model.OnAnniversary(attribute=node.attr.field.text, at=at, loc=where)
                if kind_ and at
                else None
            )
        offset = values.duration(ctx, node.offset)
        if not kind_ or offset is None or at is None:
            return None
        return model.OnDateOffset(
            attribute=node.attr.field.text, offset=offset, before=node.before, at=at, loc=where
        )
    if isinstance(node, nodes.OnThreshold):
        if node.attr.root is not nodes.Root.MEMBER:
            ctx.error(
                "SOP116",
                "a threshold trigger watches a member counter",
                node.attr.span,
                "write member.NAME reaches N",
            )
            return None
        name = node.attr.field.text
        if name not in BUILTIN_COUNTERS and name not in ctx.table("counter"):
            known = [*BUILTIN_COUNTERS, *ctx.table("counter")]
            ctx.error(
                "SOP108",
                f"'{name}' is not a counter",
                node.attr.field.span,
                did_you_mean(name, known) or f"declare it with `counter {name}`",
            )
            return None
        threshold = values.number(ctx, node.threshold)
        return (
            model.OnThreshold(counter=name, threshold=threshold, loc=where) if threshold is not None else None
        )
    if isinstance(node, nodes.OnGroupSize):
        size = values.whole(ctx, node.threshold, "a group size", minimum=1)
        return model.OnGroupSize(threshold=size, loc=where) if size is not None else None
    duration = values.duration(ctx, node.duration)
    return model.OnGroupSilent(duration=duration, loc=where) if duration else None


def _date_attribute(ctx: Context, ref: nodes.AttrRef) -> bool:
    if ref.root is not nodes.Root.MEMBER:
        ctx.error(
            "SOP116",
            "date triggers read a member's date",
            ref.span,
            "write member.joined_at or a declared date attribute",
        )
        return False
    kind = _member_field(ctx, ref)
    if kind is None:
        return False
    if kind not in (model.ValueType.DATE, model.ValueType.DATETIME):
        ctx.error("SOP406", f"member.{ref.field.text} is {kind.value}, not a date", ref.span)
        return False
    return True


def _trigger_flow(ctx: Context, triggers: list[nodes.Trigger], has_group: bool, grants: bool) -> Flow:
    event_fields: dict[str, model.ValueType] | None = None
    has_member = True
    for node in triggers:
        fields: dict[str, model.ValueType] = {}
        if isinstance(node, nodes.OnEvent):
            # Silent (errors were reported once already), but with the real symbol tables so that
            # a custom event resolves and its payload fields reach the steps.
            pattern = _pattern(dataclasses.replace(ctx, diagnostics=[]), node.pattern)
            fields = _pattern_fields(ctx, pattern) if pattern else {}
        if isinstance(node, nodes.OnGroupSilent):
            has_member = False
        # `event.x` is available only where every trigger of the playbook provides it.
        event_fields = (
            fields if event_fields is None else {k: v for k, v in event_fields.items() if fields.get(k) == v}
        )
    return Flow(has_member, has_group, event_fields or {}, grants, frozenset(), "this playbook's trigger")


# ---- conditions -----------------------------------------------------------------------------------


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
        kind = _member_field(ctx, node)
    elif root is nodes.Root.GROUP:
        kind = GROUP_FIELDS.get(node.field.text)
        if kind is None:
            ctx.error(
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


def where_cap(flow: Flow) -> str:
    """The flow's description where a message starts with it (kept lower case, as every message is)."""
    return flow.where


def _literal(node: nodes.Value) -> tuple[Any, model.ValueType] | None:
    if isinstance(node, nodes.Str):
        return node.value, model.ValueType.TEXT
    if isinstance(node, nodes.Number):
        return node.value, model.ValueType.NUMBER
    if isinstance(node, nodes.Bool):
        return node.value, model.ValueType.BOOL
    if isinstance(node, nodes.Date):
        return node.text, model.ValueType.DATE
    return None


_TYPE_WORDS = {
    model.ValueType.TEXT: "text",
    model.ValueType.NUMBER: "a number",
    model.ValueType.DATE: "a date",
    model.ValueType.DATETIME: "a date and time",
    model.ValueType.BOOL: "true or false",
}
_TYPE_HINTS = {
    model.ValueType.TEXT: 'text is written in double quotes, e.g. "华东"',
    model.ValueType.NUMBER: "write a number without quotes, e.g. 3",
    model.ValueType.DATE: "write a date without quotes, e.g. 2026-11-11",
    model.ValueType.DATETIME: "write a date without quotes, e.g. 2026-11-11",
    model.ValueType.BOOL: "write true or false, without quotes",
}


def _value(
    ctx: Context, node: nodes.Value, flow: Flow, expected: model.ValueType | None, what: str = "this"
) -> tuple[Any, bool]:
    """A checked value (literal or ref) for `what` (e.g. "member.level") and whether it is usable."""
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


def _shown(node: nodes.Value) -> str:
    if isinstance(node, nodes.Str):
        text = node.value if len(node.value) <= 20 else node.value[:17] + "..."
        return f'"{text}"'
    if isinstance(node, nodes.Number | nodes.Date):
        return node.text if len(node.text) <= 20 else node.text[:17] + "..."
    if isinstance(node, nodes.Bool):
        return "true" if node.value else "false"
    return "the value"


def _compatible(expected: model.ValueType, actual: model.ValueType) -> bool:
    dates = {model.ValueType.DATE, model.ValueType.DATETIME}
    return expected == actual or (expected in dates and actual in dates)


def _cond(ctx: Context, node: nodes.Cond, flow: Flow) -> model.Cond | None:
    if isinstance(node, nodes.Paren):
        return _cond(ctx, node.inner, flow)
    if isinstance(node, nodes.Not):
        inner = _cond(ctx, node.operand, flow)
        return model.NotCond(operand=inner) if inner is not None else None
    if isinstance(node, nodes.And | nodes.Or):
        parts = [_cond(ctx, c, flow) for c in node.operands]
        if any(p is None for p in parts):
            return None
        operands = tuple(p for p in parts if p is not None)
        if isinstance(node, nodes.And):
            return model.AndCond(operands=operands)
        return model.OrCond(operands=operands)
    if isinstance(node, nodes.Tagged):
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
        return model.TagCond(subject=node.subject.value, test=test, tags=tuple(s.value for s in node.tags))  # type: ignore[arg-type]
    if isinstance(node, nodes.Compare):
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
        right, ok = _value(ctx, node.right, flow, left.type, f"{left.root}.{left.field}")
        return model.CompareCond(left=left, op=node.op.value, right=right) if ok else None
    if isinstance(node, nodes.StartsWith | nodes.Matches):
        left = _ref(ctx, node.left, flow)
        if left is not None and left.type is not model.ValueType.TEXT:
            ctx.error("SOP406", f"{left.root}.{left.field} is {left.type.value}, not text", node.left.span)
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
    if isinstance(node, nodes.InList):
        left = _ref(ctx, node.left, flow)
        if left is None:
            return None
        checked = [_value(ctx, v, flow, left.type, f"{left.root}.{left.field}") for v in node.values]
        if not all(ok for _, ok in checked):
            return None
        if any(isinstance(v, model.Ref) for v, _ in checked):
            ctx.error("SOP406", "a list holds literal values only", node.span)
            return None
        return model.InCond(left=left, values=tuple(v for v, _ in checked))
    if isinstance(node, nodes.IsSet):
        left = _ref(ctx, node.left, flow)
        return model.IsSetCond(left=left) if left else None
    if isinstance(node, nodes.WindowCount):
        kind = WINDOW_KINDS.get(node.kind.text)
        window = values.duration(ctx, node.window)
        if kind is None:
            ctx.error(
                "SOP112",
                f"cannot count '{node.kind.text}'",
                node.kind.span,
                did_you_mean(node.kind.text, WINDOW_KINDS) or "count messages, orders, invites or violations",
            )
        if not flow.has_member:
            ctx.error("SOP116", f"{where_cap(flow)} has no member whose {node.kind.text} to count", node.span)
            return None
        count = values.whole(ctx, node.count, "a count")
        if kind is None or window is None or count is None:
            return None
        return model.WindowCond(event=kind, window=window, op=node.op.value, count=count)
    if isinstance(node, nodes.TimeBetween):
        start, end = values.time(ctx, node.start), values.time(ctx, node.end)
        return model.TimeCond(start=start, end=end) if start and end else None
    if isinstance(node, nodes.WeekdayIn):
        days = values.weekdays(ctx, node.days)
        return model.WeekdayCond(weekdays=days) if days is not None else None
    if isinstance(node, nodes.InStock):
        return _stock(ctx, node)
    return model.ConstCond(value=node.value)


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


def _excluded(node: nodes.Cond) -> frozenset[str]:
    """Tags a condition guarantees the member does not have (for the protected-kick check)."""
    if isinstance(node, nodes.Paren):
        return _excluded(node.inner)
    if (
        isinstance(node, nodes.Tagged)
        and node.subject is nodes.Subject.MEMBER
        and node.test is nodes.TagTest.NOT_TAGGED
    ):
        return frozenset(s.value for s in node.tags)
    if isinstance(node, nodes.Not):
        inner = node.operand.inner if isinstance(node.operand, nodes.Paren) else node.operand
        if (
            isinstance(inner, nodes.Tagged)
            and inner.subject is nodes.Subject.MEMBER
            and inner.test in (nodes.TagTest.TAGGED, nodes.TagTest.ANY)
        ):
            return frozenset(s.value for s in inner.tags)
        return frozenset()
    if isinstance(node, nodes.And):
        return frozenset().union(*(_excluded(c) for c in node.operands))
    if isinstance(node, nodes.Or):
        sets = [_excluded(c) for c in node.operands]
        return frozenset.intersection(*sets) if sets else frozenset()
    return frozenset()


# ---- steps ----------------------------------------------------------------------------------------


def _entry(
    ctx: Context,
    entry: nodes.AtEntry,
    has_group: bool,
    grants: bool,
    excluded: frozenset[str],
    policy: model.Policy,
) -> model.ScheduleEntry | None:
    flow = Flow(
        entry.for_each_member,
        has_group,
        {},
        grants,
        excluded,
        "a calendar entry for each member" if entry.for_each_member else "a group calendar entry",
    )
    if not has_group and not entry.for_each_member:
        ctx.error("SOP116", "a calendar entry for private chats must say `for each member`", entry.span)
        return None
    when = _cal_expr(ctx, entry.when)
    cond = _cond(ctx, entry.cond, flow) if entry.cond is not None else None
    if entry.cond is not None:
        flow = dataclasses.replace(flow, excluded=flow.excluded | _excluded(entry.cond))
    steps = _block(ctx, entry.steps, flow, policy)
    if when is None or (entry.cond is not None and cond is None):
        return None
    return model.ScheduleEntry(
        when=when, for_each_member=entry.for_each_member, cond=cond, steps=steps, loc=loc(entry.span)
    )


def _cal_expr(ctx: Context, node: nodes.CalExpr) -> model.CalRef | None:
    if isinstance(node, nodes.CalRef):
        calendar = ctx.lookup("calendar", "SOP105", node.name.text, node.name.span)
        offsets = [(o.negative, values.duration(ctx, o.duration)) for o in node.offsets]
        at = values.time(ctx, node.at) if node.at is not None else None
        if calendar is None or any(d is None for _, d in offsets) or (node.at is not None and at is None):
            return None
        return model.CalRef(
            calendar=node.name.text, offsets=tuple((neg, d) for neg, d in offsets if d), at=at
        )
    if isinstance(node, nodes.CalInline):
        rule = calendar_rule(ctx, nodes.CalWeekly(node.days, node.times, (), node.span))
        return model.CalRef(inline=rule) if rule is not None else None
    first = values.datetime(ctx, node.at)
    if first is None:
        return None
    return model.CalRef(inline=model.Dates(dates=(first.date(),), times=(first.time(),)))


def _block(
    ctx: Context, steps: tuple[nodes.Step, ...], flow: Flow, policy: model.Policy
) -> tuple[model.Step, ...]:
    checked: list[model.Step] = []
    stopped: nodes.Stop | None = None
    kicked: nodes.Kick | None = None
    for step in steps:
        if stopped is not None:
            ctx.error(
                "SOP402",
                "this step can never run: the flow stops before it",
                step.span,
                f"`stop` at line {stopped.span.line} ends the flow; remove or move it",
            )
            break
        if kicked is not None and _aims_at_member(step):
            ctx.error(
                "SOP402",
                "this step can never run: the member was kicked before it",
                step.span,
                f"`kick` at line {kicked.span.line} removes the member first",
            )
            break
        result = _step(ctx, step, flow, policy)
        if result is not None:
            checked.append(result)
        if isinstance(step, nodes.Stop) or _always_stops(step):
            stopped = step if isinstance(step, nodes.Stop) else nodes.Stop(step.span)
        if isinstance(step, nodes.Kick) and step.target is nodes.Target.MEMBER:
            kicked = step
    return tuple(checked)


def _always_stops(step: nodes.Step) -> bool:
    if isinstance(step, nodes.If) and step.otherwise is not None:
        return all(_ends(b.body) for b in step.branches) and _ends(step.otherwise)
    return False


def _ends(steps: tuple[nodes.Step, ...]) -> bool:
    return bool(steps) and (isinstance(steps[-1], nodes.Stop) or _always_stops(steps[-1]))


def _aims_at_member(step: nodes.Step) -> bool:
    if isinstance(step, nodes.Send | nodes.TagStep | nodes.Kick | nodes.Grant | nodes.Invite):
        return step.target is nodes.Target.MEMBER
    if isinstance(step, nodes.Add | nodes.SetStep):
        return step.attr.root is nodes.Root.MEMBER
    return isinstance(step, nodes.WaitFor)


def _target(
    ctx: Context, target: nodes.Target, allowed: set[nodes.Target], flow: Flow, span: Span, verb: str
) -> bool:
    if target not in allowed:
        ctx.error(
            "SOP116",
            f"cannot {verb} {target.value}",
            span,
            "it can be aimed at " + " or ".join(sorted(t.value for t in allowed)),
        )
        return False
    if target in _MEMBER_TARGETS and not flow.has_member:
        ctx.error(
            "SOP116",
            f"{where_cap(flow)} has no member to {verb}",
            span,
            "write `at CALENDAR for each member: ...` to run it once for each member of the group",
        )
        return False
    if target is nodes.Target.GROUP and not flow.has_group:
        ctx.error("SOP116", f"a playbook for private chats has no group to {verb}", span)
        return False
    return True


def _template_use(ctx: Context, text_vars: tuple[str, ...], flow: Flow, span: Span, what: str) -> None:
    for path in text_vars:
        root, _, rest = path.partition(".")
        field = rest.split(".")[0] if rest else None
        problem = _provides(ctx, root, field, flow)
        if problem is not None:
            message, hint = problem
            ctx.error("SOP202", f"{what} uses {{{{ {path} }}}}, {message}", span, hint)


def _provides(ctx: Context, root: str, field: str | None, flow: Flow) -> tuple[str, str | None] | None:
    roots = ["member", "group", "event", "coupon", "operator", "referrer", "now"]
    if root in ("member", "referrer"):
        if not flow.has_member:
            return (
                f"but {flow.where} has no member",
                "write `at CALENDAR for each member: ...` to send it to each member, "
                "or use a template without member fields",
            )
        known = [*MEMBER_FIELDS, *ctx.table("attribute"), *ctx.table("counter")]
        if field is not None and field not in known:
            return f"but members have no field '{field}'", did_you_mean(field, known)
        return None
    if root == "group":
        if not flow.has_group:
            return "but a private chat has no group", None
        if field is not None and field not in GROUP_FIELDS:
            return f"but groups have no field '{field}'", did_you_mean(field, GROUP_FIELDS)
        return None
    if root == "event":
        fields = flow.event_fields or {}
        if field is None or field not in fields:
            if not fields:
                return f"but {flow.where} provides no event fields", _event_field_hint(field)
            have = ", ".join(sorted(fields))
            return f"which {flow.where} never provides (event fields here: {have})", did_you_mean(
                field or "", fields
            ) or _event_field_hint(field)
        return None
    if root == "coupon":
        if not flow.grants:
            return "but this playbook grants no coupon", "grant the coupon before sending this template"
        if field is not None and field not in COUPON_FIELDS:
            return f"but coupons have no field '{field}'", did_you_mean(field, COUPON_FIELDS)
        return None
    if root in ("operator", "now"):
        return None
    return f"which no context provides (known: {', '.join(roots)})", did_you_mean(root, roots)


_TRIGGER_WORDS = {
    model.EventKind.JOIN: "on member joins",
    model.EventKind.MESSAGE: "on member posts",
    model.EventKind.ORDER: "on member orders",
    model.EventKind.INVITE: "on member invites",
    model.EventKind.REPORT: "on member is reported",
    model.EventKind.TAGGED: 'on member is tagged "..."',
    model.EventKind.UNTAGGED: 'on member is untagged "..."',
    model.EventKind.RENAME: "on member renames",
}


def _event_field_hint(field: str | None) -> str | None:
    """Where `event.FIELD` would come from, or the member field it was likely meant to be."""
    if field is None:
        return None
    if field in MEMBER_FIELDS:
        return f"did you mean {{{{ member.{field} }}}}?"
    sources = [word for kind, word in _TRIGGER_WORDS.items() if field in EVENT_FIELDS[kind]]
    if sources:
        return f"event.{field} exists only in a playbook started by `{sources[0]}`"
    return None


def _step(ctx: Context, step: nodes.Step, flow: Flow, policy: model.Policy) -> model.Step | None:
    where = loc(step.span)
    everyone = {nodes.Target.MEMBER, nodes.Target.GROUP, nodes.Target.OPERATOR, nodes.Target.REFERRER}
    members = {nodes.Target.MEMBER, nodes.Target.REFERRER}
    if isinstance(step, nodes.Send):
        ok = _target(ctx, step.target, everyone, flow, step.span, "send to")
        template = ctx.lookup("template", "SOP104", step.template.text, step.template.span)
        if template is None or not ok:
            return None
        _template_use(ctx, template.variables, flow, step.span, f"template '{template.name}'")
        return model.SendStep(
            template=template.name,
            target=step.target.value,
            channel=step.via.text if step.via else None,
            loc=where,
        )
    if isinstance(step, nodes.TagStep):
        verb = "untag" if step.remove else "tag"
        if not _target(
            ctx,
            step.target,
            {nodes.Target.MEMBER, nodes.Target.GROUP, nodes.Target.REFERRER},
            flow,
            step.span,
            verb,
        ):
            return None
        return model.TagStep(
            target=step.target.value, tags=tuple(s.value for s in step.tags), remove=step.remove, loc=where
        )
    if isinstance(step, nodes.Kick):
        if not _target(ctx, step.target, {nodes.Target.MEMBER}, flow, step.span, "kick"):
            return None
        exposed = [t for t in policy.protected_tags if t not in flow.excluded]
        if exposed:
            tags = ", ".join(f'"{t}"' for t in exposed)
            ctx.warning(
                "SOP403",
                f"this kick may hit members tagged {tags}, which the policy protects",
                step.span,
                f"the engine will refuse those kicks; say so in the guard: `when member not tagged {tags}`",
            )
        return model.KickStep(target="member", reason=step.reason.value if step.reason else None, loc=where)
    if isinstance(step, nodes.Grant):
        ok = _target(ctx, step.target, members, flow, step.span, "grant a coupon to")
        if ctx.lookup("coupon", "SOP107", step.coupon.text, step.coupon.span) is None or not ok:
            return None
        return model.GrantStep(coupon=step.coupon.text, target=step.target.value, loc=where)
    if isinstance(step, nodes.Invite):
        ok = _target(ctx, step.target, members, flow, step.span, "invite")
        if ctx.lookup("group", "SOP106", step.group.text, step.group.span) is None or not ok:
            return None
        return model.InviteStep(target=step.target.value, group=step.group.text, loc=where)
    if isinstance(step, nodes.Add):
        return _add(ctx, step, flow, where)
    if isinstance(step, nodes.SetStep):
        return _set(ctx, step, flow, where)
    if isinstance(step, nodes.Assign):
        ok = _target(ctx, step.target, {nodes.Target.OPERATOR}, flow, step.span, "assign a task to")
        within = values.duration(ctx, step.within)
        text_vars = templates.variables(ctx, step.text.value, step.text.span, step.text.long, "task text")
        if text_vars:
            _template_use(ctx, text_vars, flow, step.span, "the task text")
        then = _block(ctx, step.then or (), flow, policy)
        otherwise = _block(ctx, step.otherwise or (), flow, policy)
        if not ok or within is None or text_vars is None:
            return None
        return model.AssignStep(
            text=step.text.value, target="operator", within=within, then=then, otherwise=otherwise, loc=where
        )
    if isinstance(step, nodes.Wait):
        duration = values.duration(ctx, step.duration)
        return model.WaitStep(duration=duration, loc=where) if duration else None
    if isinstance(step, nodes.WaitFor):
        return _wait_for(ctx, step, flow, policy, where)
    if isinstance(step, nodes.If):
        branches = []
        for branch in step.branches:
            cond = _cond(ctx, branch.cond, flow)
            inner = dataclasses.replace(flow, excluded=flow.excluded | _excluded(branch.cond))
            body = _block(ctx, branch.body, inner, policy)
            if cond is not None:
                branches.append(model.Branch(cond=cond, steps=body))
        otherwise = _block(ctx, step.otherwise or (), flow, policy)
        if len(branches) != len(step.branches):
            return None
        return model.IfStep(branches=tuple(branches), otherwise=otherwise, loc=where)
    if isinstance(step, nodes.Split):
        return _split(ctx, step, flow, policy, where)
    if isinstance(step, nodes.Stop):
        return model.StopStep(loc=where)
    if isinstance(step, nodes.Call):
        return _call(ctx, step, flow, where)
    if not flow.has_group:
        ctx.error("SOP116", "a playbook for private chats has no group to dissolve", step.span)
        return None
    return model.DissolveStep(loc=where)


def _add(ctx: Context, step: nodes.Add, flow: Flow, where: str) -> model.Step | None:
    if step.attr.root not in (nodes.Root.MEMBER, nodes.Root.REFERRER):
        ctx.error(
            "SOP116", "only member counters can be added to", step.attr.span, "write add N to member.COUNTER"
        )
        return None
    name = step.attr.field.text
    if name != "points" and name not in ctx.table("counter"):
        known = ["points", *ctx.table("counter")]
        hint = did_you_mean(name, known) or (
            f"'{name}' is counted by the engine itself"
            if name in BUILTIN_COUNTERS
            else f"declare it with `counter {name}`"
        )
        ctx.error("SOP108", f"'{name}' is not a counter that playbooks add to", step.attr.field.span, hint)
        return None
    if not flow.has_member:
        ctx.error("SOP116", f"{where_cap(flow)} has no member to add to", step.span)
        return None
    size = values.number(ctx, step.amount)
    if size is None:
        return None
    amount = -size if step.negative else size
    return model.AddStep(root=step.attr.root.value, counter=name, amount=amount, loc=where)


def _set(ctx: Context, step: nodes.SetStep, flow: Flow, where: str) -> model.Step | None:
    if step.attr.root not in (nodes.Root.MEMBER, nodes.Root.REFERRER):
        ctx.error("SOP116", "only member attributes can be set", step.attr.span)
        return None
    name = step.attr.field.text
    attribute = ctx.table("attribute").get(name)
    if attribute is None or attribute.value is None:
        hint = (
            f"member.{name} is kept by the engine and cannot be set"
            if name in MEMBER_FIELDS
            else did_you_mean(name, ctx.table("attribute")) or f"declare it with `attribute {name}: text`"
        )
        ctx.error("SOP108", f"'{name}' is not a declared attribute", step.attr.field.span, hint)
        return None
    if not flow.has_member:
        ctx.error("SOP116", f"{where_cap(flow)} has no member to set an attribute on", step.span)
        return None
    value, ok = _value(ctx, step.value, flow, attribute.value.type, f"{step.attr.root.value}.{name}")
    if not ok:
        return None
    return model.SetStep(root=step.attr.root.value, attribute=name, value=value, loc=where)


def _wait_for(
    ctx: Context, step: nodes.WaitFor, flow: Flow, policy: model.Policy, where: str
) -> model.Step | None:
    if step.timeout is None:
        ctx.error(
            "SOP401",
            "this wait has no timeout: a member who never does it keeps the flow waiting forever",
            step.span,
            "say how long to wait, e.g. `wait 3 days for member posts else { ... }`",
        )
    if not flow.has_member:
        ctx.error("SOP116", f"{where_cap(flow)} has no member to wait for", step.span)
        return None
    timeout = values.duration(ctx, step.timeout) if step.timeout is not None else None
    pattern = _pattern(ctx, step.pattern)
    then_flow = (
        dataclasses.replace(flow, event_fields=_pattern_fields(ctx, pattern), where="the awaited event")
        if pattern
        else flow
    )
    then = _block(ctx, step.then or (), then_flow, policy)
    otherwise = _block(ctx, step.otherwise or (), flow, policy)
    if timeout is None or pattern is None:
        return None
    return model.WaitForStep(timeout=timeout, pattern=pattern, then=then, otherwise=otherwise, loc=where)


def _split(
    ctx: Context, step: nodes.Split, flow: Flow, policy: model.Policy, where: str
) -> model.Step | None:
    arms: list[model.Arm] = []
    names: set[str] = set()
    ok = True
    for arm in step.arms:
        if arm.name.text in names:
            ctx.error("SOP111", f"split arm '{arm.name.text}' is named twice", arm.name.span)
            ok = False
        names.add(arm.name.text)
        if arm.percent.value <= 0:
            ctx.error(
                "SOP502",
                f"arm '{arm.name.text}' gets 0% of members and would never run",
                arm.percent.span,
                "remove the arm, or give it a share above 0%",
            )
            ok = False
        elif arm.percent.value > 100:
            ctx.error("SOP502", f"{arm.percent.text}% is more than all members", arm.percent.span)
            ok = False
        arms.append(
            model.Arm(
                name=arm.name.text, percent=arm.percent.value, steps=_block(ctx, arm.body, flow, policy)
            )
        )
    total = sum(a.percent.value for a in step.arms)
    if abs(total - 100) > 1e-9:
        shares = " + ".join(f"{a.name.text} {a.percent.text}%" for a in step.arms)
        ctx.error(
            "SOP404",
            f"the arms add up to {total:g}%, not 100% ({shares})",
            step.span,
            "adjust the percentages so they sum to 100%",
        )
        ok = False
    if not flow.has_member:
        ctx.error("SOP116", f"{where_cap(flow)} has no member to split", step.span)
        ok = False
    return model.SplitStep(arms=tuple(arms), loc=where) if ok else None


def _call(ctx: Context, step: nodes.Call, flow: Flow, where: str) -> model.Step | None:
    action = ctx.lookup("action", "SOP110", step.action.text, step.action.span)
    if action is None:
        return None
    args: dict[str, Any] = {}
    ok = True
    for arg in step.args:
        kind = action.fields.get(arg.name.text)
        if kind is None:
            ctx.error(
                "SOP407",
                f"action '{action.name}' has no argument '{arg.name.text}'",
                arg.name.span,
                did_you_mean(arg.name.text, action.fields)
                or "arguments: " + (", ".join(action.fields) or "none"),
            )
            ok = False
            continue
        if arg.name.text in args:
            ctx.error("SOP407", f"argument '{arg.name.text}' is given twice", arg.name.span)
            ok = False
            continue
        value, good = _value(ctx, arg.value, flow, kind, f"argument '{arg.name.text}' of '{action.name}'")
        ok = ok and good
        args[arg.name.text] = value
    missing = [name for name in action.fields if name not in args and ok]
    if missing:
        ctx.error(
            "SOP407",
            f"call to '{action.name}' is missing {', '.join(missing)}",
            step.span,
            "give every argument the action declares: "
            + ", ".join(f"{name} = ..." for name in action.fields),
        )
        ok = False
    return model.CallStep(action=action.name, args=args, loc=where) if ok else None
