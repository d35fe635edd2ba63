"""The builders of declarations: symbols, fields, coupons, groups, calendars, templates, the policy."""

from __future__ import annotations

from typing import Any

from sopdsl.source import Span
from sopdsl.syntax import nodes as n
from sopdsl.syntax.building import _all, _Dates, _fields, _list, _Names, _of, _Strs, _Times


class _Counting(tuple[n.Name, ...]):
    """A platform limit's `counting a, b`, told apart from its `per` names by its type."""

    __slots__ = ()


class DeclarationBuilders:
    """One method per grammar rule of a declaration (see `transformer._Builders`)."""

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
        return n.CalWeekly(_list(children, _Names), _list(children, _Times), _bounds(children), span)

    def cal_interval(self, span: Span, children: list[Any]) -> n.CalInterval:
        return n.CalInterval(children[0], children[1], _bounds(children), span)

    def cal_dates(self, span: Span, children: list[Any]) -> n.CalDates:
        return n.CalDates(_list(children, _Dates), _list(children, _Times), span)

    def cal_cron(self, span: Span, children: list[Any]) -> n.CalCron:
        return n.CalCron(children[0], _bounds(children), span)

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
        body, from_file = next(c for c in children if type(c) is tuple)
        title = children[1] if isinstance(children[1], n.Str) else None
        extras = tuple(c for c in children if isinstance(c, n.Attachment | n.Mention))
        return n.TemplateDecl(children[0], title, _list(children, _Strs), body, from_file, extras, span)

    def media_path(self, span: Span, children: list[Any]) -> n.Media:
        return n.Media(children[0], False, span)

    def media_id(self, span: Span, children: list[Any]) -> n.Media:
        return n.Media(children[0], True, span)

    def attachment(self, span: Span, children: list[Any]) -> n.Attachment:
        return n.Attachment(children[0], children[1], tuple(children[2:]), span)

    def attachment_url(self, span: Span, children: list[Any]) -> n.AttachmentOption:
        return n.AttachmentOption(n.AttachmentOptionKind.URL, children[0], span)

    def attachment_description(self, span: Span, children: list[Any]) -> n.AttachmentOption:
        return n.AttachmentOption(n.AttachmentOptionKind.DESCRIPTION, children[0], span)

    def attachment_cover(self, span: Span, children: list[Any]) -> n.AttachmentOption:
        return n.AttachmentOption(n.AttachmentOptionKind.COVER, children[0], span)

    def attachment_appid(self, span: Span, children: list[Any]) -> n.AttachmentOption:
        return n.AttachmentOption(n.AttachmentOptionKind.APPID, children[0], span)

    def attachment_page(self, span: Span, children: list[Any]) -> n.AttachmentOption:
        return n.AttachmentOption(n.AttachmentOptionKind.PAGE, children[0], span)

    def mention(self, span: Span, children: list[Any]) -> n.Mention:
        return n.Mention(children[0], span)

    def quiet_hours(self, span: Span, children: list[Any]) -> n.QuietHours:
        return n.QuietHours(children[0], children[1], span)

    def per(self, span: Span, children: list[Any]) -> n.Name:
        return children[0]  # type: ignore[no-any-return]

    def via(self, span: Span, children: list[Any]) -> tuple[str, n.Name]:
        return ("via", children[0])

    def cap_overflow(self, span: Span, children: list[Any]) -> tuple[str, n.Name]:
        return ("else", children[0])

    def cap_of(self, span: Span, children: list[Any]) -> _Strs:
        return _Strs(children[0])

    def cap(self, span: Span, children: list[Any]) -> n.Cap:
        tagged: dict[str, n.Name] = dict(
            c for c in children if isinstance(c, tuple) and not isinstance(c, _Strs)
        )
        per = tuple(c for c in children[2:] if isinstance(c, n.Name))
        tags = _list(children, _Strs)
        return n.Cap(children[0], children[1], tags, per, tagged.get("via"), tagged.get("else"), span)

    def protect(self, span: Span, children: list[Any]) -> n.Protect:
        return n.Protect(tuple(children[0]), span)

    def content_mix(self, span: Span, children: list[Any]) -> n.ContentMix:
        return n.ContentMix(children[0], children[1], children[2], span)

    def escalate(self, span: Span, children: list[Any]) -> n.Escalate:
        return n.Escalate(children[0], span)

    def platform_counting(self, span: Span, children: list[Any]) -> _Counting:
        return _Counting(children[0])

    def platform_limit(self, span: Span, children: list[Any]) -> n.PlatformLimit:
        per = tuple(c for c in children[2:] if isinstance(c, n.Name))
        return n.PlatformLimit(children[0], children[1], per, _list(children, _Counting), span)

    def platform_cannot(self, span: Span, children: list[Any]) -> n.PlatformCannot:
        return n.PlatformCannot(tuple(children[0]), span)

    def platform_decl(self, span: Span, children: list[Any]) -> n.PlatformDecl:
        title = children[0] if children and isinstance(children[0], n.Str) else None
        rules = tuple(c for c in children if isinstance(c, n.PlatformLimit | n.PlatformCannot))
        return n.PlatformDecl(title, rules, span)

    def policy_decl(self, span: Span, children: list[Any]) -> n.PolicyDecl:
        return n.PolicyDecl(tuple(children), span)


def _bounds(children: list[Any]) -> tuple[n.CalBound | n.CalExcept, ...]:
    return tuple(c for c in children if isinstance(c, n.CalBound | n.CalExcept))
