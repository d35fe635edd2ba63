"""The syntax tree's declarations: timezone, include, attributes, counters, events, actions, coupons, groups, calendars, templates, policies.

Part of `sopdsl.syntax.nodes`, which re-exports every class here and defines the unions and the
enums; import them from there (`from sopdsl.syntax import nodes as n`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sopdsl.syntax.node_base import _Node, dataclass

if TYPE_CHECKING:
    from sopdsl.source import Span
    from sopdsl.syntax.nodes import (
        AttachmentOptionKind,
        CalExcept,
        CalSpec,
        CouponOptionKind,
        Date,
        DateTime,
        Duration,
        GroupOptionKind,
        Name,
        Number,
        PolicyRule,
        Scope,
        Str,
        Time,
    )


@dataclass(frozen=True, slots=True, eq=False)
class TimezoneDecl(_Node):
    """`timezone "Asia/Shanghai"`."""

    zone: Str
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class IncludeDecl(_Node):
    """`include "common.sop"`, relative to the including file."""

    path: Str
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class AttributeDecl(_Node):
    """`attribute region: text "地区"`."""

    name: Name
    type: Name
    title: Str | None
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class CounterDecl(_Node):
    """`counter lottery_chances "抽奖次数"`."""

    name: Name
    title: Str | None
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Field(_Node):
    """`order_id: text` inside an event or action declaration."""

    name: Name
    type: Name
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class EventDecl(_Node):
    """`event share_photo "晒单" { image: text }`."""

    name: Name
    title: Str | None
    fields: tuple[Field, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class ActionDecl(_Node):
    """`action crm_note "写入CRM" { level: text }`: a custom action the embedding bot provides."""

    name: Name
    title: Str | None
    fields: tuple[Field, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class CouponOption(_Node):
    """One `worth 50` / `valid for 7 days` / `not transferable` / `stock 100`."""

    kind: CouponOptionKind
    value: Number | Duration | None
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class CouponDecl(_Node):
    """`coupon new50 "新人券" worth 50 valid for 7 days not transferable`."""

    name: Name
    title: Str | None
    options: tuple[CouponOption, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class GroupOption(_Node):
    """One `tagged "edu"` / `timezone "..."` / `operator "小美"`."""

    kind: GroupOptionKind
    values: tuple[Str, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class GroupDecl(_Node):
    """`group east "华东群" tagged "regional" operator "小美"`."""

    name: Name
    title: Str | None
    options: tuple[GroupOption, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class CalBound(_Node):
    """`from 2026-01-01` or `until 2026-06-30` after a calendar rule."""

    is_until: bool
    date: Date
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class CalWeekly(_Node):
    """`every tuesday, thursday at 20:00` (also `every day`, `every weekday`)."""

    days: tuple[Name, ...]
    times: tuple[Time, ...]
    bounds: tuple[CalBound | CalExcept, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class CalInterval(_Node):
    """`every 2 hours from 2026-11-11 10:00 until 2026-11-12`."""

    every: Duration
    start: DateTime
    bounds: tuple[CalBound | CalExcept, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class CalDates(_Node):
    """`on 2026-11-11, 2026-12-12 at 10:00`."""

    dates: tuple[Date, ...]
    times: tuple[Time, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class CalCron(_Node):
    """`cron "0 9 1 * *"`."""

    expression: Str
    bounds: tuple[CalBound | CalExcept, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class CalendarDecl(_Node):
    """`calendar tuesday_class "周二晚课" = every tuesday at 20:00`."""

    name: Name
    title: Str | None
    spec: CalSpec
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Media(_Node):
    """`"posters/class.png"` (a file of the project) or `media "3a8…"` (a WeCom media id)."""

    value: Str
    by_id: bool
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class AttachmentOption(_Node):
    """`to "https://…"`, `description "…"`, `cover MEDIA`, `appid "wx…"`, `page "pages/…"`."""

    kind: AttachmentOptionKind
    value: Str | Media
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Attachment(_Node):
    """`with image "posters/class.png"`, `with link "标题" to "https://…" cover "https://…"`.

    `first` is the media of an image or file, the title of a link or mini-program card; the
    checker reads it by `kind`, which stays a name so that a typo gets "did you mean"."""

    kind: Name
    first: Media
    options: tuple[AttachmentOption, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Mention(_Node):
    """`mentioning member`: a group send @-mentions the flow's member."""

    who: Name
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class TemplateDecl(_Node):
    """`template welcome "欢迎" tagged "activity" = \"\"\"...\"\"\"` or `= file "x.j2"`, then its
    attachments and mentions (`with image "a.png"`, `mentioning member`) in the order written."""

    name: Name
    title: Str | None
    tags: tuple[Str, ...]
    body: Str
    from_file: bool
    extras: tuple[Attachment | Mention, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class QuietHours(_Node):
    """`quiet hours 22:00 - 08:00`."""

    start: Time
    end: Time
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Cap(_Node):
    """`at most 3 sends [of templates tagged "promo"] per member per day via mass else drop`."""

    limit: Number
    noun: Name
    tags: tuple[Str, ...]  # `of templates tagged ...`: the sends it counts (none: every send)
    per: tuple[Name, ...]
    via: Name | None
    overflow: Name | None
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Protect(_Node):
    """`never kick members tagged "core", "koc"`."""

    tags: tuple[Str, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class ContentMix(_Node):
    """`at least 50% of sends tagged "activity" in groups tagged "content"`."""

    percent: Number
    tag: Str
    scope: Scope
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Escalate(_Node):
    """`escalate tasks to "陈主管"`: who gets a staff task still undone at its deadline."""

    to: Str
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class PlatformLimit(_Node):
    """`at most 4 messages per member per month counting mass, tasks`, `at most 9 attachments`."""

    limit: Number
    noun: Name
    per: tuple[Name, ...]
    counting: tuple[Name, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class PlatformCannot(_Node):
    """`cannot kick, dissolve`: actions the platform cannot perform for customer groups."""

    actions: tuple[Name, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class PlatformDecl(_Node):
    """`platform "企业微信" { ... }`: the platform's limits, declared once."""

    title: Str | None
    rules: tuple[PlatformLimit | PlatformCannot, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class PolicyDecl(_Node):
    """`policy { ... }`."""

    rules: tuple[PolicyRule, ...]
    span: Span
