"""The syntax tree: what the user wrote, as typed, immutable nodes.

Input: produced by `sopdsl.syntax.transformer` from Lark's parse tree. Output: consumed by the
checker and the formatter. Every node carries the `Span` of its text; children are tuples.
Nothing here knows about Lark.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypeAlias

# Shared with the checked model (one definition); re-exported so the tree's users write nodes.EventKind.
from sopdsl.enums import EventKind as EventKind
from sopdsl.enums import Repeat as Repeat
from sopdsl.source import Span

# ---- atoms ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Name:
    """An identifier as written."""

    text: str
    span: Span


@dataclass(frozen=True, slots=True)
class Str:
    """A string literal, unescaped; `long` if written with triple quotes."""

    value: str
    span: Span
    long: bool = False


@dataclass(frozen=True, slots=True)
class Number:
    """A numeric literal, as written (`text`) and as a value."""

    value: float
    text: str
    span: Span


@dataclass(frozen=True, slots=True)
class Duration:
    """`28 days`: an amount and a unit word (checked later)."""

    amount: Number
    unit: Name
    span: Span


@dataclass(frozen=True, slots=True)
class Time:
    """`20:00` as written; validity is checked later."""

    text: str
    span: Span


@dataclass(frozen=True, slots=True)
class Date:
    """`2026-11-11` as written; validity is checked later."""

    text: str
    span: Span


@dataclass(frozen=True, slots=True)
class DateTime:
    """`2026-11-11 10:00`."""

    date: Date
    time: Time
    span: Span


class Root(enum.Enum):
    """What an attribute reference starts from."""

    MEMBER = "member"
    GROUP = "group"
    EVENT = "event"
    REFERRER = "referrer"


@dataclass(frozen=True, slots=True)
class AttrRef:
    """`member.region`, `event.channel`, `referrer.invites`."""

    root: Root
    field: Name
    span: Span


@dataclass(frozen=True, slots=True)
class Bool:
    """`true` or `false`."""

    value: bool
    span: Span


Value: TypeAlias = Str | Number | Bool | Date | AttrRef


# ---- declarations -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimezoneDecl:
    """`timezone "Asia/Shanghai"`."""

    zone: Str
    span: Span


@dataclass(frozen=True, slots=True)
class IncludeDecl:
    """`include "common.sop"`, relative to the including file."""

    path: Str
    span: Span


@dataclass(frozen=True, slots=True)
class AttributeDecl:
    """`attribute region: text "地区"`."""

    name: Name
    type: Name
    title: Str | None
    span: Span


@dataclass(frozen=True, slots=True)
class CounterDecl:
    """`counter lottery_chances "抽奖次数"`."""

    name: Name
    title: Str | None
    span: Span


@dataclass(frozen=True, slots=True)
class Field:
    """`order_id: text` inside an event or action declaration."""

    name: Name
    type: Name
    span: Span


@dataclass(frozen=True, slots=True)
class EventDecl:
    """`event share_photo "晒单" { image: text }`."""

    name: Name
    title: Str | None
    fields: tuple[Field, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class ActionDecl:
    """`action crm_note "写入CRM" { level: text }`: a custom action the embedding bot provides."""

    name: Name
    title: Str | None
    fields: tuple[Field, ...]
    span: Span


class CouponOptionKind(enum.Enum):
    """The options a coupon declaration can state."""

    WORTH = "worth"
    VALID = "valid"
    NOT_TRANSFERABLE = "not_transferable"
    STOCK = "stock"


@dataclass(frozen=True, slots=True)
class CouponOption:
    """One `worth 50` / `valid for 7 days` / `not transferable` / `stock 100`."""

    kind: CouponOptionKind
    value: Number | Duration | None
    span: Span


@dataclass(frozen=True, slots=True)
class CouponDecl:
    """`coupon new50 "新人券" worth 50 valid for 7 days not transferable`."""

    name: Name
    title: Str | None
    options: tuple[CouponOption, ...]
    span: Span


class GroupOptionKind(enum.Enum):
    """The options a group declaration can state."""

    TAGS = "tags"
    TIMEZONE = "timezone"
    OPERATOR = "operator"


@dataclass(frozen=True, slots=True)
class GroupOption:
    """One `tagged "edu"` / `timezone "..."` / `operator "小美"`."""

    kind: GroupOptionKind
    values: tuple[Str, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class GroupDecl:
    """`group east "华东群" tagged "regional" operator "小美"`."""

    name: Name
    title: Str | None
    options: tuple[GroupOption, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class CalBound:
    """`from 2026-01-01` or `until 2026-06-30` after a calendar rule."""

    is_until: bool
    date: Date
    span: Span


@dataclass(frozen=True, slots=True)
class CalWeekly:
    """`every tuesday, thursday at 20:00` (also `every day`, `every weekday`)."""

    days: tuple[Name, ...]
    times: tuple[Time, ...]
    bounds: tuple[CalBound, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class CalInterval:
    """`every 2 hours from 2026-11-11 10:00 until 2026-11-12`."""

    every: Duration
    start: DateTime
    bounds: tuple[CalBound, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class CalDates:
    """`on 2026-11-11, 2026-12-12 at 10:00`."""

    dates: tuple[Date, ...]
    times: tuple[Time, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class CalCron:
    """`cron "0 9 1 * *"`."""

    expression: Str
    bounds: tuple[CalBound, ...]
    span: Span


CalSpec: TypeAlias = CalWeekly | CalInterval | CalDates | CalCron


@dataclass(frozen=True, slots=True)
class CalendarDecl:
    """`calendar tuesday_class "周二晚课" = every tuesday at 20:00`."""

    name: Name
    title: Str | None
    spec: CalSpec
    span: Span


@dataclass(frozen=True, slots=True)
class TemplateDecl:
    """`template welcome "欢迎" tagged "activity" = \"\"\"...\"\"\"` or `= file "x.j2"`."""

    name: Name
    title: Str | None
    tags: tuple[Str, ...]
    body: Str
    from_file: bool
    span: Span


@dataclass(frozen=True, slots=True)
class QuietHours:
    """`quiet hours 22:00 - 08:00`."""

    start: Time
    end: Time
    span: Span


@dataclass(frozen=True, slots=True)
class Cap:
    """`at most 3 sends per member per day via mass else drop`."""

    limit: Number
    noun: Name
    per: tuple[Name, ...]
    via: Name | None
    overflow: Name | None
    span: Span


@dataclass(frozen=True, slots=True)
class Protect:
    """`never kick members tagged "core", "koc"`."""

    tags: tuple[Str, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class ContentMix:
    """`at least 50% of sends tagged "activity" in groups tagged "content"`."""

    percent: Number
    tag: Str
    scope: Scope
    span: Span


PolicyRule: TypeAlias = QuietHours | Cap | Protect | ContentMix


@dataclass(frozen=True, slots=True)
class PolicyDecl:
    """`policy { ... }`."""

    rules: tuple[PolicyRule, ...]
    span: Span


# ---- scopes, triggers, calendar expressions ----------------------------------------------


class ScopeKind(enum.Enum):
    """Which groups a playbook applies to."""

    ALL = "all"
    TAGGED = "tagged"
    NAMED = "named"
    PRIVATE = "private"


@dataclass(frozen=True, slots=True)
class Scope:
    """`all groups`, `groups tagged "edu"`, `groups pilot_a, pilot_b`, `private chats`."""

    kind: ScopeKind
    tags: tuple[Str, ...]
    names: tuple[Name, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class EventPattern:
    """`member joins`, `member is tagged "vip"`, `event share_photo`."""

    kind: EventKind
    tag: Str | None
    custom: Name | None
    span: Span


@dataclass(frozen=True, slots=True)
class OnEvent:
    """Trigger: an event happened."""

    pattern: EventPattern
    span: Span


@dataclass(frozen=True, slots=True)
class OnAbsence:
    """Trigger: `member silent for 28 days` (kind message) or `no order for 365 days`."""

    kind: Name
    duration: Duration
    span: Span


@dataclass(frozen=True, slots=True)
class OnDateOffset:
    """Trigger: `3 days after member.joined_at [at 10:00]`."""

    offset: Duration
    before: bool
    attr: AttrRef
    at: Time | None
    span: Span


@dataclass(frozen=True, slots=True)
class OnAnniversary:
    """Trigger: `member.birthday at 09:00`, every year."""

    attr: AttrRef
    at: Time
    span: Span


@dataclass(frozen=True, slots=True)
class OnThreshold:
    """Trigger: `member.invites reaches 10`."""

    attr: AttrRef
    threshold: Number
    span: Span


@dataclass(frozen=True, slots=True)
class OnGroupSize:
    """Trigger: `group size reaches 40`."""

    threshold: Number
    span: Span


@dataclass(frozen=True, slots=True)
class OnGroupSilent:
    """Trigger: `group silent for 3 days`."""

    duration: Duration
    span: Span


Trigger: TypeAlias = (
    OnEvent | OnAbsence | OnDateOffset | OnAnniversary | OnThreshold | OnGroupSize | OnGroupSilent
)


@dataclass(frozen=True, slots=True)
class CalOffset:
    """`- 1 day` after a calendar name."""

    negative: bool
    duration: Duration
    span: Span


@dataclass(frozen=True, slots=True)
class CalRef:
    """`tuesday_class - 1 day at 20:00`."""

    name: Name
    offsets: tuple[CalOffset, ...]
    at: Time | None
    span: Span


@dataclass(frozen=True, slots=True)
class CalInline:
    """`every monday at 20:00` written directly after `at`."""

    days: tuple[Name, ...]
    times: tuple[Time, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class CalOnce:
    """`2026-11-11 10:00` written directly after `at`."""

    at: DateTime
    span: Span


CalExpr: TypeAlias = CalRef | CalInline | CalOnce


# ---- conditions -------------------------------------------------------------------------


class Comparator(enum.Enum):
    """Comparison operators."""

    EQ = "=="
    NE = "!="
    GE = ">="
    LE = "<="
    GT = ">"
    LT = "<"


class Subject(enum.Enum):
    """What a tag test looks at."""

    MEMBER = "member"
    GROUP = "group"


class TagTest(enum.Enum):
    """`tagged`, `not tagged`, `tagged any of`, `tagged all of`."""

    TAGGED = "tagged"
    NOT_TAGGED = "not tagged"
    ANY = "tagged any of"
    ALL = "tagged all of"


@dataclass(frozen=True, slots=True)
class Tagged:
    """`member tagged "core"`, `member not tagged "a", "b"`, `group tagged any of ...`."""

    subject: Subject
    test: TagTest
    tags: tuple[Str, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Compare:
    """`member.level >= 3`."""

    left: AttrRef
    op: Comparator
    right: Value
    span: Span


@dataclass(frozen=True, slots=True)
class StartsWith:
    """`member.name starts with "AAA"`."""

    left: AttrRef
    prefix: Str
    span: Span


@dataclass(frozen=True, slots=True)
class Matches:
    """`member.nickname matches "^.+-.+$"`."""

    left: AttrRef
    pattern: Str
    span: Span


@dataclass(frozen=True, slots=True)
class InList:
    """`member.region in ["华东", "华南"]`."""

    left: AttrRef
    values: tuple[Value, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class IsSet:
    """`member.referrer is set`."""

    left: AttrRef
    span: Span


@dataclass(frozen=True, slots=True)
class WindowCount:
    """`messages in last 7 days >= 3`."""

    kind: Name
    window: Duration
    op: Comparator
    count: Number
    span: Span


@dataclass(frozen=True, slots=True)
class TimeBetween:
    """`time between 12:00 and 14:00` (local time of the group)."""

    start: Time
    end: Time
    span: Span


@dataclass(frozen=True, slots=True)
class WeekdayIn:
    """`weekday in [saturday, sunday]`."""

    days: tuple[Name, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class InStock:
    """`coupon free_scarf in stock`, or with `negated`, `coupon free_scarf not in stock`."""

    coupon: Name
    negated: bool
    span: Span


@dataclass(frozen=True, slots=True)
class BoolCond:
    """`true` / `false` as a condition."""

    value: bool
    span: Span


@dataclass(frozen=True, slots=True)
class Not:
    """`not C`."""

    operand: Cond
    span: Span


@dataclass(frozen=True, slots=True)
class And:
    """`A and B and ...`."""

    operands: tuple[Cond, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Or:
    """`A or B or ...`."""

    operands: tuple[Cond, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Paren:
    """`( C )`, kept so the formatter can reproduce the user's grouping."""

    inner: Cond
    span: Span


Cond: TypeAlias = (
    Tagged
    | Compare
    | StartsWith
    | Matches
    | InList
    | IsSet
    | WindowCount
    | TimeBetween
    | WeekdayIn
    | InStock
    | BoolCond
    | Not
    | And
    | Or
    | Paren
)


# ---- steps ------------------------------------------------------------------------------


class Target(enum.Enum):
    """Who an action is aimed at."""

    MEMBER = "member"
    GROUP = "group"
    OPERATOR = "operator"
    REFERRER = "referrer"


@dataclass(frozen=True, slots=True)
class Send:
    """`send welcome to member [via mass]`."""

    template: Name
    target: Target
    via: Name | None
    span: Span


@dataclass(frozen=True, slots=True)
class TagStep:
    """`tag member "a", "b"` or `untag member "a"`."""

    target: Target
    tags: tuple[Str, ...]
    remove: bool
    span: Span


@dataclass(frozen=True, slots=True)
class Kick:
    """`kick member because "..."`."""

    target: Target
    reason: Str | None
    span: Span


@dataclass(frozen=True, slots=True)
class Grant:
    """`grant new50 to member`."""

    coupon: Name
    target: Target
    span: Span


@dataclass(frozen=True, slots=True)
class Invite:
    """`invite member to core_group`."""

    target: Target
    group: Name
    span: Span


@dataclass(frozen=True, slots=True)
class Add:
    """`add 10 to member.points`."""

    amount: Number
    negative: bool
    attr: AttrRef
    span: Span


@dataclass(frozen=True, slots=True)
class SetStep:
    """`set member.stage = "explorer"`."""

    attr: AttrRef
    value: Value
    span: Span


@dataclass(frozen=True, slots=True)
class Assign:
    """`assign "回访" to operator within 2 days then { } else { }`."""

    text: Str
    target: Target
    within: Duration
    then: tuple[Step, ...] | None
    otherwise: tuple[Step, ...] | None
    span: Span


@dataclass(frozen=True, slots=True)
class Wait:
    """`wait 3 days`."""

    duration: Duration
    span: Span


@dataclass(frozen=True, slots=True)
class WaitFor:
    """`wait 3 days for member posts then { } else { }`; `timeout` None is a mistake the checker reports."""

    timeout: Duration | None
    pattern: EventPattern
    then: tuple[Step, ...] | None
    otherwise: tuple[Step, ...] | None
    span: Span


@dataclass(frozen=True, slots=True)
class Branch:
    """One `if C { ... }` or `else if C { ... }`."""

    cond: Cond
    body: tuple[Step, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class If:
    """`if C { } else if C { } else { }`."""

    branches: tuple[Branch, ...]
    otherwise: tuple[Step, ...] | None
    span: Span


@dataclass(frozen=True, slots=True)
class Arm:
    """`red 50% { ... }` inside a split."""

    name: Name
    percent: Number
    body: tuple[Step, ...]
    braced: bool
    span: Span


@dataclass(frozen=True, slots=True)
class Split:
    """`split { red 50% { } yellow 50% { } }`: deterministic A/B assignment."""

    arms: tuple[Arm, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Stop:
    """`stop`."""

    span: Span


@dataclass(frozen=True, slots=True)
class Arg:
    """`level = "high"` inside `call`."""

    name: Name
    value: Value
    span: Span


@dataclass(frozen=True, slots=True)
class Call:
    """`call crm_note(level = "high")`."""

    action: Name
    args: tuple[Arg, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Dissolve:
    """`dissolve group`."""

    span: Span


Step: TypeAlias = (
    Send
    | TagStep
    | Kick
    | Grant
    | Invite
    | Add
    | SetStep
    | Assign
    | Wait
    | WaitFor
    | If
    | Split
    | Stop
    | Call
    | Dissolve
)


# ---- playbooks ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScenarioSetting:
    """`scenario J1, J2`."""

    ids: tuple[Name, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class ScopeSetting:
    """`in groups tagged "edu"`."""

    scope: Scope
    span: Span


@dataclass(frozen=True, slots=True)
class OnSetting:
    """`on member joins`."""

    trigger: Trigger
    span: Span


@dataclass(frozen=True, slots=True)
class WhenSetting:
    """`when member not tagged "core"`: the playbook's guard."""

    cond: Cond
    span: Span


@dataclass(frozen=True, slots=True)
class RepeatSetting:
    """`repeat once` / `repeat always` / `repeat after 7 days`."""

    mode: Repeat
    cooldown: Duration | None
    span: Span


@dataclass(frozen=True, slots=True)
class ApplySetting:
    """`apply to new members` / `apply to all members`."""

    who: Name
    span: Span


@dataclass(frozen=True, slots=True)
class MissedSetting:
    """`missed skip` / `missed run latest`."""

    words: tuple[Name, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class ChangeSetting:
    """`on change finish` / `on change migrate`."""

    mode: Name
    span: Span


@dataclass(frozen=True, slots=True)
class ActiveSetting:
    """`active from 2026-11-11 10:00 until 2026-11-12 10:00`."""

    start: DateTime
    end: DateTime
    span: Span


@dataclass(frozen=True, slots=True)
class VersionSetting:
    """`version "1.2"`: which revision of the SOP this is."""

    version: Str
    span: Span


@dataclass(frozen=True, slots=True)
class AuthorSetting:
    """`author "小美"`: who wrote this revision."""

    author: Str
    span: Span


@dataclass(frozen=True, slots=True)
class ReviewSetting:
    """`reviewed by "阿峰", "小美"`: who reviewed this revision."""

    reviewers: tuple[Str, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class DoSetting:
    """`do { ... }`: the steps run when an `on` trigger fires."""

    steps: tuple[Step, ...]
    braced: bool
    span: Span


@dataclass(frozen=True, slots=True)
class AtEntry:
    """`at tuesday_class - 1 day [for each member] [when C]: send preview to group`."""

    when: CalExpr
    for_each_member: bool
    cond: Cond | None
    steps: tuple[Step, ...]
    braced: bool
    span: Span


# The settings that only state an option of the playbook (the other items carry triggers, a guard
# or steps); a closed set, so the checker's dispatch over it is exhaustive.
OptionSetting: TypeAlias = (
    ScenarioSetting
    | ScopeSetting
    | RepeatSetting
    | ApplySetting
    | MissedSetting
    | ChangeSetting
    | ActiveSetting
    | VersionSetting
    | AuthorSetting
    | ReviewSetting
)

PlaybookItem: TypeAlias = OptionSetting | OnSetting | WhenSetting | DoSetting | AtEntry


@dataclass(frozen=True, slots=True)
class PlaybookDecl:
    """`playbook name "title" { ... }`."""

    name: Name
    title: Str | None
    items: tuple[PlaybookItem, ...]
    span: Span


# The declarations that define a name in a symbol table before playbooks are checked.
SymbolDecl: TypeAlias = (
    AttributeDecl
    | CounterDecl
    | EventDecl
    | ActionDecl
    | CouponDecl
    | GroupDecl
    | CalendarDecl
    | TemplateDecl
)

Declaration: TypeAlias = TimezoneDecl | IncludeDecl | SymbolDecl | PolicyDecl | PlaybookDecl


@dataclass(frozen=True, slots=True)
class Comment:
    """A `#` comment, kept so the formatter can put it back."""

    text: str
    span: Span


@dataclass(frozen=True, slots=True)
class File:
    """One parsed file: its declarations in order, and its comments."""

    path: str
    declarations: tuple[Declaration, ...]
    comments: tuple[Comment, ...]
    span: Span
