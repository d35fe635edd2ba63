"""Syntax nodes written back as one line of text each: the text of the formatter's rows."""

from __future__ import annotations

from typing import TYPE_CHECKING, assert_never

from sopdsl.syntax import nodes as n
from sopdsl.syntax.text import attr_text as _attr
from sopdsl.syntax.text import duration_text as _duration
from sopdsl.syntax.text import event_text as _event
from sopdsl.syntax.text import str_text as _str
from sopdsl.syntax.text import strs_text as _strs
from sopdsl.syntax.text import value_text as _value

if TYPE_CHECKING:
    from collections.abc import Sequence


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


def _names(names: Sequence[n.Name]) -> str:
    return ", ".join(name.text for name in names)


def _title(title: n.Str | None) -> str:
    return f" {_str(title)}" if title is not None else ""


def _datetime(d: n.DateTime) -> str:
    return f"{d.date.text} {d.time.text}"


def _bounds(bounds: Sequence[n.CalBound | n.CalExcept]) -> str:
    return "".join(
        b.text() if isinstance(b, n.CalExcept) else f" {'until' if b.is_until else 'from'} {b.date.text}"
        for b in bounds
    )


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
    if isinstance(d, n.HolidaysDecl):
        return d.text()
    if isinstance(d, n.CalendarDecl):
        return f"calendar {d.name.text}{_title(d.title)} = {_cal_spec(d.spec)}"
    if isinstance(d, n.TemplateDecl):
        tags = f" tagged {_strs(d.tags)}" if d.tags else ""
        body = f"file {_str(d.body)}" if d.from_file else _str(d.body)
        return f"template {d.name.text}{_title(d.title)}{tags} = {body}"  # its extras: rows of their own
    raise TypeError(f"not a one-line declaration: {type(d).__name__}")


def _media(media: n.Media) -> str:
    return f"media {_str(media.value)}" if media.by_id else _str(media.value)


def _template_extra(extra: n.Attachment | n.Mention) -> str:
    """`with image "a.png"`, `with link "标题" to "https://…"`, `mentioning member`: a row under its template."""
    if isinstance(extra, n.Mention):
        return f"mentioning {extra.who.text}"
    options = "".join(
        f" {o.kind.value} {_media(o.value) if isinstance(o.value, n.Media) else _str(o.value)}"
        for o in extra.options
    )
    return f"with {extra.kind.text} {_media(extra.first)}{options}"


def _scope(scope: n.Scope) -> str:
    if scope.kind is n.ScopeKind.ALL:
        return "all groups"
    if scope.kind is n.ScopeKind.TAGGED:
        return f"groups tagged {_strs(scope.tags)}"
    if scope.kind is n.ScopeKind.NAMED:
        return f"groups {_names(scope.names)}"
    return "private chats"


def platform_rule(rule: n.PlatformLimit | n.PlatformCannot) -> str:
    """A rule of a `platform` block as written."""
    if isinstance(rule, n.PlatformCannot):
        return f"cannot {_names(rule.actions)}"
    text = f"at most {rule.limit.text} {rule.noun.text}" + "".join(f" per {p.text}" for p in rule.per)
    return text + (f" counting {_names(rule.counting)}" if rule.counting else "")


def _rule(rule: n.PolicyRule) -> str:
    if isinstance(rule, n.QuietHours):
        return f"quiet hours {rule.start.text} - {rule.end.text}"
    if isinstance(rule, n.Cap):
        text = f"at most {rule.limit.text} {rule.noun.text}"
        if rule.tags:
            text += f" of templates tagged {_strs(rule.tags)}"
        text += "".join(f" per {p.text}" for p in rule.per)
        if rule.via is not None:
            text += f" via {rule.via.text}"
        if rule.overflow is not None:
            text += f" else {rule.overflow.text}"
        return text
    if isinstance(rule, n.Protect):
        return f"never kick members tagged {_strs(rule.tags)}"
    if isinstance(rule, n.Escalate):
        return f"escalate tasks to {_str(rule.to)}"
    return f"at least {rule.percent.text}% of sends tagged {_str(rule.tag)} in {_scope(rule.scope)}"


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
            skip = e.skip.text() if e.skip is not None else ""
            return f"every {_names(e.days)} at {_times(e.times)}{skip}"
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
    if isinstance(item, n.GoalSetting):
        when = f" when {_cond(item.cond)}" if item.cond is not None else ""
        return f"goal {_str(item.name)} = {_event(item.pattern)}{when} within {_duration(item.within)}"
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
            return f"{_value(c.left)} {c.op.value} {_value(c.right)}"
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
        case n.DateBetween() | n.DateIn():
            return c.text()
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
        case n.ActionNode():
            return s.text()  # each action writes itself (`node_actions.py`)
        case n.Wait():
            return f"wait {_duration(s.duration)}"
        case n.Stop():
            return "stop"
        case n.Assign() | n.WaitFor() | n.If() | n.Split():
            raise TypeError(f"not a one-line step: {type(s).__name__}")
        case _:
            assert_never(s)
