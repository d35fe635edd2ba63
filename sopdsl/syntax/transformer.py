"""Lark parse tree to syntax tree.

Input: the `lark.Tree` from `sopdsl.syntax.parser`. Output: `nodes.File`. This is the last place a
Lark type is seen; every rule of the grammar has one method here building one node.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from typing import Any, TypeVar

from lark import Token, Transformer, Tree
from lark.tree import Meta

from sopdsl.source import Span
from sopdsl.syntax import nodes as n

T = TypeVar("T")

_ESCAPE = re.compile(r"\\(.)")
_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}


class _Names(tuple[n.Name, ...]):
    __slots__ = ()


class _Strs(tuple[n.Str, ...]):
    __slots__ = ()


class _Times(tuple[n.Time, ...]):
    __slots__ = ()


class _Dates(tuple[n.Date, ...]):
    __slots__ = ()


class _Steps(tuple[Any, ...]):
    __slots__ = ()


class _Block(tuple[Any, ...]):
    """Steps of a `block`, remembering whether they were braced."""

    braced: bool = True


class _Then(_Steps):
    __slots__ = ()


class _Else(_Steps):
    __slots__ = ()


def unescape(body: str) -> str:
    """Resolve backslash escapes of a one-line string literal."""
    return _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), body)


def long_string_value(raw: str) -> str:
    """The value of a \"\"\"text block\"\"\": first newline dropped, common indentation removed."""
    body = raw[3:-3]
    if body.startswith("\n"):
        body = body[1:]
    lines = body.split("\n")
    if len(lines) > 1 and not lines[-1].strip():
        lines = lines[:-1]
    return textwrap.dedent("\n".join(lines))


def _of(children: list[Any], kind: type[T]) -> T | None:
    for child in children:
        if isinstance(child, kind):
            return child
    return None


def _all(children: list[Any], kind: type[T]) -> tuple[T, ...]:
    return tuple(child for child in children if isinstance(child, kind))


def _list(children: list[Any], kind: type[tuple[T, ...]]) -> tuple[T, ...]:
    found = _of(children, kind)
    return tuple(found) if found is not None else ()


class _Builders:
    """One method per grammar rule (and per kept terminal), named after it.

    A rule's method takes the rule's span and its children, already built, and returns a node;
    a terminal's method takes the token text and its span. The fast path in `sopdsl.syntax.parser`
    calls these while parsing; `to_file` calls them from a Lark tree. `start` is built by
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

    # ---- file and declarations ----

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

    def timezone_decl(self, span: Span, children: list[Any]) -> n.TimezoneDecl:
        return n.TimezoneDecl(children[0], span)

    def include_decl(self, span: Span, children: list[Any]) -> n.IncludeDecl:
        return n.IncludeDecl(children[0], span)

    def attribute_decl(self, span: Span, children: list[Any]) -> n.AttributeDecl:
        return n.AttributeDecl(children[0], children[1], _of(children, n.Str), span)

    def counter_decl(self, span: Span, children: list[Any]) -> n.CounterDecl:
        return n.CounterDecl(children[0], _of(children, n.Str), span)

    def field(self, span: Span, children: list[Any]) -> n.Field:
        return n.Field(children[0], children[1], span)

    def fields(self, span: Span, children: list[Any]) -> tuple[n.Field, ...]:
        return tuple(c for c in children if c is not None)

    def event_decl(self, span: Span, children: list[Any]) -> n.EventDecl:
        return n.EventDecl(children[0], _of(children, n.Str), _fields(children), span)

    def action_decl(self, span: Span, children: list[Any]) -> n.ActionDecl:
        return n.ActionDecl(children[0], _of(children, n.Str), _fields(children), span)

    def coupon_worth(self, span: Span, children: list[Any]) -> n.CouponOption:
        return n.CouponOption(n.CouponOptionKind.WORTH, children[0], span)

    def coupon_valid(self, span: Span, children: list[Any]) -> n.CouponOption:
        return n.CouponOption(n.CouponOptionKind.VALID, children[0], span)

    def coupon_not_transferable(self, span: Span, children: list[Any]) -> n.CouponOption:
        return n.CouponOption(n.CouponOptionKind.NOT_TRANSFERABLE, None, span)

    def coupon_stock(self, span: Span, children: list[Any]) -> n.CouponOption:
        return n.CouponOption(n.CouponOptionKind.STOCK, children[0], span)

    def coupon_decl(self, span: Span, children: list[Any]) -> n.CouponDecl:
        title = children[1] if len(children) > 1 and isinstance(children[1], n.Str) else None
        return n.CouponDecl(children[0], title, _all(children, n.CouponOption), span)

    def group_tags(self, span: Span, children: list[Any]) -> n.GroupOption:
        return n.GroupOption(n.GroupOptionKind.TAGS, tuple(children[0]), span)

    def group_timezone(self, span: Span, children: list[Any]) -> n.GroupOption:
        return n.GroupOption(n.GroupOptionKind.TIMEZONE, (children[0],), span)

    def group_operator(self, span: Span, children: list[Any]) -> n.GroupOption:
        return n.GroupOption(n.GroupOptionKind.OPERATOR, (children[0],), span)

    def group_body(self, span: Span, children: list[Any]) -> tuple[n.GroupOption, ...]:
        return tuple(children)

    def group_decl(self, span: Span, children: list[Any]) -> n.GroupDecl:
        title = children[1] if len(children) > 1 and isinstance(children[1], n.Str) else None
        body = children[-1] if isinstance(children[-1], tuple) else ()
        return n.GroupDecl(children[0], title, body, span)

    def bound_from(self, span: Span, children: list[Any]) -> n.CalBound:
        return n.CalBound(False, children[0], span)

    def bound_until(self, span: Span, children: list[Any]) -> n.CalBound:
        return n.CalBound(True, children[0], span)

    def cal_weekly(self, span: Span, children: list[Any]) -> n.CalWeekly:
        return n.CalWeekly(_list(children, _Names), _list(children, _Times), _all(children, n.CalBound), span)

    def cal_interval(self, span: Span, children: list[Any]) -> n.CalInterval:
        return n.CalInterval(children[0], children[1], _all(children, n.CalBound), span)

    def cal_dates(self, span: Span, children: list[Any]) -> n.CalDates:
        return n.CalDates(_list(children, _Dates), _list(children, _Times), span)

    def cal_cron(self, span: Span, children: list[Any]) -> n.CalCron:
        return n.CalCron(children[0], _all(children, n.CalBound), span)

    def calendar_decl(self, span: Span, children: list[Any]) -> n.CalendarDecl:
        title = children[1] if isinstance(children[1], n.Str) else None
        return n.CalendarDecl(children[0], title, children[-1], span)

    def template_tags(self, span: Span, children: list[Any]) -> _Strs:
        return _Strs(children[0])

    def template_inline(self, span: Span, children: list[Any]) -> tuple[n.Str, bool]:
        return (children[0], False)

    def template_file(self, span: Span, children: list[Any]) -> tuple[n.Str, bool]:
        return (children[0], True)

    def template_decl(self, span: Span, children: list[Any]) -> n.TemplateDecl:
        body, from_file = children[-1]
        title = children[1] if isinstance(children[1], n.Str) else None
        return n.TemplateDecl(children[0], title, _list(children, _Strs), body, from_file, span)

    def quiet_hours(self, span: Span, children: list[Any]) -> n.QuietHours:
        return n.QuietHours(children[0], children[1], span)

    def per(self, span: Span, children: list[Any]) -> n.Name:
        return children[0]  # type: ignore[no-any-return]

    def via(self, span: Span, children: list[Any]) -> tuple[str, n.Name]:
        return ("via", children[0])

    def cap_overflow(self, span: Span, children: list[Any]) -> tuple[str, n.Name]:
        return ("else", children[0])

    def cap(self, span: Span, children: list[Any]) -> n.Cap:
        tagged: dict[str, n.Name] = dict(c for c in children if isinstance(c, tuple))
        per = tuple(c for c in children[2:] if isinstance(c, n.Name))
        return n.Cap(children[0], children[1], per, tagged.get("via"), tagged.get("else"), span)

    def protect(self, span: Span, children: list[Any]) -> n.Protect:
        return n.Protect(tuple(children[0]), span)

    def content_mix(self, span: Span, children: list[Any]) -> n.ContentMix:
        return n.ContentMix(children[0], children[1], children[2], span)

    def policy_decl(self, span: Span, children: list[Any]) -> n.PolicyDecl:
        return n.PolicyDecl(tuple(children), span)

    # ---- playbooks ----

    def playbook_decl(self, span: Span, children: list[Any]) -> n.PlaybookDecl:
        title = children[1] if len(children) > 1 and isinstance(children[1], n.Str) else None
        items = tuple(children[2:] if title is not None else children[1:])
        return n.PlaybookDecl(children[0], title, items, span)

    def pb_scenario(self, span: Span, children: list[Any]) -> n.ScenarioSetting:
        return n.ScenarioSetting(tuple(children[0]), span)

    def pb_scope(self, span: Span, children: list[Any]) -> n.ScopeSetting:
        return n.ScopeSetting(children[0], span)

    def pb_on(self, span: Span, children: list[Any]) -> n.OnSetting:
        return n.OnSetting(children[0], span)

    def pb_when(self, span: Span, children: list[Any]) -> n.WhenSetting:
        return n.WhenSetting(children[0], span)

    def repeat_once(self, span: Span, children: list[Any]) -> n.RepeatSetting:
        return n.RepeatSetting(n.Repeat.ONCE, None, span)

    def repeat_always(self, span: Span, children: list[Any]) -> n.RepeatSetting:
        return n.RepeatSetting(n.Repeat.ALWAYS, None, span)

    def repeat_after(self, span: Span, children: list[Any]) -> n.RepeatSetting:
        return n.RepeatSetting(n.Repeat.COOLDOWN, children[0], span)

    def pb_apply(self, span: Span, children: list[Any]) -> n.ApplySetting:
        return n.ApplySetting(children[0], span)

    def pb_missed(self, span: Span, children: list[Any]) -> n.MissedSetting:
        return n.MissedSetting(tuple(c for c in children if c is not None), span)

    def pb_change(self, span: Span, children: list[Any]) -> n.ChangeSetting:
        return n.ChangeSetting(children[0], span)

    def pb_active(self, span: Span, children: list[Any]) -> n.ActiveSetting:
        return n.ActiveSetting(children[0], children[1], span)

    def pb_version(self, span: Span, children: list[Any]) -> n.VersionSetting:
        return n.VersionSetting(children[0], span)

    def pb_author(self, span: Span, children: list[Any]) -> n.AuthorSetting:
        return n.AuthorSetting(children[0], span)

    def pb_reviewed(self, span: Span, children: list[Any]) -> n.ReviewSetting:
        return n.ReviewSetting(tuple(children[0]), span)

    def pb_do(self, span: Span, children: list[Any]) -> n.DoSetting:
        block: _Block = children[0]
        return n.DoSetting(tuple(block), block.braced, span)

    def for_each(self, span: Span, children: list[Any]) -> str:
        return "for_each"

    def at_when(self, span: Span, children: list[Any]) -> tuple[str, Any]:
        return ("when", children[0])

    def pb_at(self, span: Span, children: list[Any]) -> n.AtEntry:
        block: _Block = children[-1]
        cond = next((c[1] for c in children if isinstance(c, tuple) and c and c[0] == "when"), None)
        return n.AtEntry(children[0], "for_each" in children, cond, tuple(block), block.braced, span)

    def scope_all(self, span: Span, children: list[Any]) -> n.Scope:
        return n.Scope(n.ScopeKind.ALL, (), (), span)

    def scope_tagged(self, span: Span, children: list[Any]) -> n.Scope:
        return n.Scope(n.ScopeKind.TAGGED, tuple(children[0]), (), span)

    def scope_named(self, span: Span, children: list[Any]) -> n.Scope:
        return n.Scope(n.ScopeKind.NAMED, (), tuple(children[0]), span)

    def scope_private(self, span: Span, children: list[Any]) -> n.Scope:
        return n.Scope(n.ScopeKind.PRIVATE, (), (), span)

    def cal_ref(self, span: Span, children: list[Any]) -> n.CalRef:
        at = _of(children, n.Time)
        return n.CalRef(children[0], _all(children, n.CalOffset), at, span)

    def cal_inline(self, span: Span, children: list[Any]) -> n.CalInline:
        return n.CalInline(tuple(children[0]), tuple(children[1]), span)

    def cal_once(self, span: Span, children: list[Any]) -> n.CalOnce:
        return n.CalOnce(children[0], span)

    def cal_offset(self, span: Span, children: list[Any]) -> n.CalOffset:
        return n.CalOffset(str(children[0]) == "-", children[1], span)

    def at_time(self, span: Span, children: list[Any]) -> n.Time:
        return children[0]  # type: ignore[no-any-return]

    # ---- triggers ----

    def on_event(self, span: Span, children: list[Any]) -> n.OnEvent:
        return n.OnEvent(children[0], span)

    def on_silent(self, span: Span, children: list[Any]) -> n.OnAbsence:
        duration: n.Duration = children[0]
        return n.OnAbsence(n.Name("message", span), duration, span)

    def on_absence(self, span: Span, children: list[Any]) -> n.OnAbsence:
        return n.OnAbsence(children[0], children[1], span)

    def rel_after(self, span: Span, children: list[Any]) -> bool:
        return False

    def rel_before(self, span: Span, children: list[Any]) -> bool:
        return True

    def on_date_offset(self, span: Span, children: list[Any]) -> n.OnDateOffset:
        at = children[3] if len(children) > 3 else None
        return n.OnDateOffset(children[0], children[1], children[2], at, span)

    def on_anniversary(self, span: Span, children: list[Any]) -> n.OnAnniversary:
        return n.OnAnniversary(children[0], children[1], span)

    def on_threshold(self, span: Span, children: list[Any]) -> n.OnThreshold:
        return n.OnThreshold(children[0], children[1], span)

    def on_group_size(self, span: Span, children: list[Any]) -> n.OnGroupSize:
        return n.OnGroupSize(children[0], span)

    def on_group_silent(self, span: Span, children: list[Any]) -> n.OnGroupSilent:
        return n.OnGroupSilent(children[0], span)

    def _event(
        self, span: Span, kind: n.EventKind, tag: n.Str | None = None, custom: n.Name | None = None
    ) -> n.EventPattern:
        return n.EventPattern(kind, tag, custom, span)

    def ev_join(self, span: Span, children: list[Any]) -> n.EventPattern:
        return self._event(span, n.EventKind.JOIN)

    def ev_leave(self, span: Span, children: list[Any]) -> n.EventPattern:
        return self._event(span, n.EventKind.LEAVE)

    def ev_message(self, span: Span, children: list[Any]) -> n.EventPattern:
        return self._event(span, n.EventKind.MESSAGE)

    def ev_order(self, span: Span, children: list[Any]) -> n.EventPattern:
        return self._event(span, n.EventKind.ORDER)

    def ev_invite(self, span: Span, children: list[Any]) -> n.EventPattern:
        return self._event(span, n.EventKind.INVITE)

    def ev_report(self, span: Span, children: list[Any]) -> n.EventPattern:
        return self._event(span, n.EventKind.REPORT)

    def ev_tagged(self, span: Span, children: list[Any]) -> n.EventPattern:
        return self._event(span, n.EventKind.TAGGED, tag=children[0])

    def ev_untagged(self, span: Span, children: list[Any]) -> n.EventPattern:
        return self._event(span, n.EventKind.UNTAGGED, tag=children[0])

    def ev_rename(self, span: Span, children: list[Any]) -> n.EventPattern:
        return self._event(span, n.EventKind.RENAME)

    def ev_custom(self, span: Span, children: list[Any]) -> n.EventPattern:
        return self._event(span, n.EventKind.CUSTOM, custom=children[0])

    # ---- steps ----

    def block_one(self, span: Span, children: list[Any]) -> _Block:
        block = _Block(children)
        block.braced = False
        return block

    def block_many(self, span: Span, children: list[Any]) -> _Block:
        return _Block(children)

    def body(self, span: Span, children: list[Any]) -> _Steps:
        return _Steps(children)

    def then_branch(self, span: Span, children: list[Any]) -> _Then:
        return _Then(children[0])

    def else_branch(self, span: Span, children: list[Any]) -> _Else:
        return _Else(children[0])

    def send(self, span: Span, children: list[Any]) -> n.Send:
        via = children[2][1] if len(children) > 2 and children[2] is not None else None
        return n.Send(children[0], children[1], via, span)

    def tag(self, span: Span, children: list[Any]) -> n.TagStep:
        return n.TagStep(children[0], tuple(children[1]), False, span)

    def untag(self, span: Span, children: list[Any]) -> n.TagStep:
        return n.TagStep(children[0], tuple(children[1]), True, span)

    def because(self, span: Span, children: list[Any]) -> n.Str:
        return children[0]  # type: ignore[no-any-return]

    def kick(self, span: Span, children: list[Any]) -> n.Kick:
        return n.Kick(children[0], children[1] if len(children) > 1 else None, span)

    def grant(self, span: Span, children: list[Any]) -> n.Grant:
        return n.Grant(children[0], children[1], span)

    def invite(self, span: Span, children: list[Any]) -> n.Invite:
        return n.Invite(children[0], children[1], span)

    def signed_number(self, span: Span, children: list[Any]) -> tuple[bool, n.Number]:
        if len(children) == 2 and children[0] is not None:
            return (str(children[0]) == "-", children[1])
        return (False, children[-1])

    def add(self, span: Span, children: list[Any]) -> n.Add:
        negative, amount = children[0]
        return n.Add(amount, negative, children[1], span)

    def set_step(self, span: Span, children: list[Any]) -> n.SetStep:
        return n.SetStep(children[0], children[1], span)

    def assign(self, span: Span, children: list[Any]) -> n.Assign:
        then = _of(children, _Then)
        otherwise = _of(children, _Else)
        return n.Assign(
            children[0],
            children[1],
            children[2],
            tuple(then) if then is not None else None,
            tuple(otherwise) if otherwise is not None else None,
            span,
        )

    def wait(self, span: Span, children: list[Any]) -> n.Wait:
        return n.Wait(children[0], span)

    def wait_for(self, span: Span, children: list[Any]) -> n.WaitFor:
        then = _of(children, _Then)
        otherwise = _of(children, _Else)
        return n.WaitFor(
            _of(children, n.Duration),
            _of(children, n.EventPattern),  # type: ignore[arg-type]
            tuple(then) if then is not None else None,
            tuple(otherwise) if otherwise is not None else None,
            span,
        )

    def elif_branch(self, span: Span, children: list[Any]) -> n.Branch:
        return n.Branch(children[0], tuple(children[1]), span)

    def if_step(self, span: Span, children: list[Any]) -> n.If:
        first = n.Branch(children[0], tuple(children[1]), span)
        branches = (first, *_all(children[2:], n.Branch))
        otherwise = _of(children, _Else)
        return n.If(branches, tuple(otherwise) if otherwise is not None else None, span)

    def arm(self, span: Span, children: list[Any]) -> n.Arm:
        block: _Block = children[2]
        return n.Arm(children[0], children[1], tuple(block), block.braced, span)

    def split(self, span: Span, children: list[Any]) -> n.Split:
        return n.Split(tuple(children), span)

    def stop(self, span: Span, children: list[Any]) -> n.Stop:
        return n.Stop(span)

    def arg(self, span: Span, children: list[Any]) -> n.Arg:
        return n.Arg(children[0], children[1], span)

    def call(self, span: Span, children: list[Any]) -> n.Call:
        return n.Call(children[0], tuple(c for c in children[1:] if c is not None), span)

    def dissolve(self, span: Span, children: list[Any]) -> n.Dissolve:
        return n.Dissolve(span)

    def target_member(self, span: Span, children: list[Any]) -> n.Target:
        return n.Target.MEMBER

    def target_group(self, span: Span, children: list[Any]) -> n.Target:
        return n.Target.GROUP

    def target_operator(self, span: Span, children: list[Any]) -> n.Target:
        return n.Target.OPERATOR

    def target_referrer(self, span: Span, children: list[Any]) -> n.Target:
        return n.Target.REFERRER

    # ---- conditions ----

    def or_cond(self, span: Span, children: list[Any]) -> n.Or:
        return n.Or(tuple(children), span)

    def and_cond(self, span: Span, children: list[Any]) -> n.And:
        return n.And(tuple(children), span)

    def not_cond(self, span: Span, children: list[Any]) -> n.Not:
        return n.Not(children[0], span)

    def cond(self, span: Span, children: list[Any]) -> n.Paren:
        # `cond` only stands as its own node where the user wrote `( ... )`.
        return n.Paren(children[0], span)

    def subject_member(self, span: Span, children: list[Any]) -> n.Subject:
        return n.Subject.MEMBER

    def subject_group(self, span: Span, children: list[Any]) -> n.Subject:
        return n.Subject.GROUP

    def tagged(self, span: Span, children: list[Any]) -> n.Tagged:
        return n.Tagged(children[0], n.TagTest.TAGGED, (children[1],), span)

    def not_tagged(self, span: Span, children: list[Any]) -> n.Tagged:
        return n.Tagged(children[0], n.TagTest.NOT_TAGGED, tuple(children[1]), span)

    def tagged_any(self, span: Span, children: list[Any]) -> n.Tagged:
        return n.Tagged(children[0], n.TagTest.ANY, tuple(children[1]), span)

    def tagged_all(self, span: Span, children: list[Any]) -> n.Tagged:
        return n.Tagged(children[0], n.TagTest.ALL, tuple(children[1]), span)

    def compare(self, span: Span, children: list[Any]) -> n.Compare:
        return n.Compare(children[0], n.Comparator(str(children[1])), children[2], span)

    def starts_with(self, span: Span, children: list[Any]) -> n.StartsWith:
        return n.StartsWith(children[0], children[1], span)

    def matches(self, span: Span, children: list[Any]) -> n.Matches:
        return n.Matches(children[0], children[1], span)

    def in_list(self, span: Span, children: list[Any]) -> n.InList:
        return n.InList(children[0], tuple(children[1:]), span)

    def is_set(self, span: Span, children: list[Any]) -> n.IsSet:
        return n.IsSet(children[0], span)

    def window_count(self, span: Span, children: list[Any]) -> n.WindowCount:
        return n.WindowCount(children[0], children[1], n.Comparator(str(children[2])), children[3], span)

    def time_between(self, span: Span, children: list[Any]) -> n.TimeBetween:
        return n.TimeBetween(children[0], children[1], span)

    def weekday_in(self, span: Span, children: list[Any]) -> n.WeekdayIn:
        return n.WeekdayIn(tuple(children[0]), span)

    def in_stock(self, span: Span, children: list[Any]) -> n.InStock:
        return n.InStock(children[0], False, span)

    def out_of_stock(self, span: Span, children: list[Any]) -> n.InStock:
        return n.InStock(children[0], True, span)

    def bool_cond(self, span: Span, children: list[Any]) -> n.BoolCond:
        value: n.Bool = children[0]
        return n.BoolCond(value.value, span)

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

    def true(self, span: Span, children: list[Any]) -> n.Bool:
        return n.Bool(True, span)

    def false(self, span: Span, children: list[Any]) -> n.Bool:
        return n.Bool(False, span)

    def duration(self, span: Span, children: list[Any]) -> n.Duration:
        return n.Duration(children[0], children[1], span)

    def datetime(self, span: Span, children: list[Any]) -> n.DateTime:
        return n.DateTime(children[0], children[1], span)


def _fields(children: list[Any]) -> tuple[n.Field, ...]:
    for child in children[1:]:
        if isinstance(child, tuple):
            return child
    return ()


_BUILDERS = _Builders()

# Terminals whose tokens become nodes; other kept terminals (ROOT, SIGN, COMPARATOR) stay text.
TOKENS: dict[str, Callable[[str, Span], Any]] = {
    name: getattr(_BUILDERS, name)
    for name in ("NAME", "NUMBER", "PERCENT", "TIME", "DATE", "STRING", "LONG_STRING")
}

# Rule name (or alias) to its builder; `start` is missing: see `file_node`.
RULES: dict[str, Callable[..., Any]] = {
    name: getattr(_BUILDERS, name)
    for name in dir(_Builders)
    if not name.startswith("_") and not name.isupper()
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


class _ToNodes(Transformer[Token, Any]):
    """Lark tree to nodes, by the same builders: the reference the fast path must agree with."""

    def __init__(self, path: str, comments: list[Token]) -> None:
        super().__init__(visit_tokens=True)
        self.path = path
        self.comments = comments

    def _span(self, meta: Meta) -> Span:
        if getattr(meta, "empty", True):
            return Span.point(self.path)
        return Span(
            self.path, meta.start_pos, meta.end_pos, meta.line, meta.column, meta.end_line, meta.end_column
        )

    def __default__(self, data: str, children: list[Any], meta: Meta) -> Any:
        if data == "start":
            comments = tuple(n.Comment(str(c), token_span(self.path, c)) for c in self.comments)
            return file_node(self.path, self._span(meta), children, comments)
        return RULES[data](self._span(meta), children)

    def __default_token__(self, token: Token) -> Any:
        build = TOKENS.get(token.type)
        return token if build is None else build(str(token), token_span(self.path, token))


def to_file(path: str, tree: Tree[Token], comments: list[Token]) -> n.File:
    """Turn Lark's tree for one file into the typed syntax tree."""
    return _ToNodes(path, comments).transform(tree)  # type: ignore[no-any-return]
