"""The syntax tree: what the user wrote, as typed, immutable nodes.

Input: produced by `sopdsl.syntax.transformer` from Lark's parse tree. Output: consumed by the
checker and the formatter. Every node carries the `Span` of its text; children are tuples.
Nothing here knows about Lark.
"""

from __future__ import annotations

import enum
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeAlias

# Shared with the checked model (one definition); re-exported so the tree's users write nodes.EventKind.
from sopdsl.enums import EventKind as EventKind
from sopdsl.enums import Repeat as Repeat
from sopdsl.source import Span


class _Node:
    """What every node shares: equality and hashing over its fields, in order, exactly as
    `@dataclass(frozen=True)` writes them for each class (same class and equal field tuples;
    the hash of the field tuple). Written once here rather than generated and compiled for each
    of the hundred classes (`eq=False` on them), which saves about 10 ms of start-up.
    """

    __slots__ = ()
    _fields: ClassVar[Callable[[Any], tuple[Any, ...]]]

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        names = tuple(cls.__annotations__)  # the fields, in order (a node has no other annotation)
        getter = operator.attrgetter(*names)
        cls._fields = getter if len(names) > 1 else lambda node: (getter(node),)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return type(self)._fields(self) == type(self)._fields(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(type(self)._fields(self))


# ---- atoms ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Name(_Node):
    """An identifier as written."""

    text: str
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Str(_Node):
    """A string literal, unescaped; `long` if written with triple quotes."""

    value: str
    span: Span
    long: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class Number(_Node):
    """A numeric literal, as written (`text`) and as a value."""

    value: float
    text: str
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Duration(_Node):
    """`28 days`: an amount and a unit word (checked later)."""

    amount: Number
    unit: Name
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Time(_Node):
    """`20:00` as written; validity is checked later."""

    text: str
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Date(_Node):
    """`2026-11-11` as written; validity is checked later."""

    text: str
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class DateTime(_Node):
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


@dataclass(frozen=True, slots=True, eq=False)
class AttrRef(_Node):
    """`member.region`, `event.channel`, `referrer.invites`."""

    root: Root
    field: Name
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Bool(_Node):
    """`true` or `false`."""

    value: bool
    span: Span


Value: TypeAlias = Str | Number | Bool | Date | AttrRef


# ---- declarations -----------------------------------------------------------------------


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


class CouponOptionKind(enum.Enum):
    """The options a coupon declaration can state."""

    WORTH = "worth"
    VALID = "valid"
    NOT_TRANSFERABLE = "not_transferable"
    STOCK = "stock"


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


class GroupOptionKind(enum.Enum):
    """The options a group declaration can state."""

    TAGS = "tags"
    TIMEZONE = "timezone"
    OPERATOR = "operator"


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
    bounds: tuple[CalBound, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class CalInterval(_Node):
    """`every 2 hours from 2026-11-11 10:00 until 2026-11-12`."""

    every: Duration
    start: DateTime
    bounds: tuple[CalBound, ...]
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
    bounds: tuple[CalBound, ...]
    span: Span


CalSpec: TypeAlias = CalWeekly | CalInterval | CalDates | CalCron


@dataclass(frozen=True, slots=True, eq=False)
class CalendarDecl(_Node):
    """`calendar tuesday_class "周二晚课" = every tuesday at 20:00`."""

    name: Name
    title: Str | None
    spec: CalSpec
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class TemplateDecl(_Node):
    """`template welcome "欢迎" tagged "activity" = \"\"\"...\"\"\"` or `= file "x.j2"`."""

    name: Name
    title: Str | None
    tags: tuple[Str, ...]
    body: Str
    from_file: bool
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class QuietHours(_Node):
    """`quiet hours 22:00 - 08:00`."""

    start: Time
    end: Time
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Cap(_Node):
    """`at most 3 sends per member per day via mass else drop`."""

    limit: Number
    noun: Name
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


PolicyRule: TypeAlias = QuietHours | Cap | Protect | ContentMix


@dataclass(frozen=True, slots=True, eq=False)
class PolicyDecl(_Node):
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


@dataclass(frozen=True, slots=True, eq=False)
class Scope(_Node):
    """`all groups`, `groups tagged "edu"`, `groups pilot_a, pilot_b`, `private chats`."""

    kind: ScopeKind
    tags: tuple[Str, ...]
    names: tuple[Name, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class EventPattern(_Node):
    """`member joins`, `member is tagged "vip"`, `event share_photo`."""

    kind: EventKind
    tag: Str | None
    custom: Name | None
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class OnEvent(_Node):
    """Trigger: an event happened."""

    pattern: EventPattern
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class OnAbsence(_Node):
    """Trigger: `member silent for 28 days` (kind message) or `no order for 365 days`."""

    kind: Name
    duration: Duration
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class OnDateOffset(_Node):
    """Trigger: `3 days after member.joined_at [at 10:00]`."""

    offset: Duration
    before: bool
    attr: AttrRef
    at: Time | None
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class OnAnniversary(_Node):
    """Trigger: `member.birthday at 09:00`, every year."""

    attr: AttrRef
    at: Time
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class OnThreshold(_Node):
    """Trigger: `member.invites reaches 10`."""

    attr: AttrRef
    threshold: Number
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class OnGroupSize(_Node):
    """Trigger: `group size reaches 40`."""

    threshold: Number
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class OnGroupSilent(_Node):
    """Trigger: `group silent for 3 days`."""

    duration: Duration
    span: Span


Trigger: TypeAlias = (
    OnEvent | OnAbsence | OnDateOffset | OnAnniversary | OnThreshold | OnGroupSize | OnGroupSilent
)


@dataclass(frozen=True, slots=True, eq=False)
class CalOffset(_Node):
    """`- 1 day` after a calendar name."""

    negative: bool
    duration: Duration
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class CalRef(_Node):
    """`tuesday_class - 1 day at 20:00`."""

    name: Name
    offsets: tuple[CalOffset, ...]
    at: Time | None
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class CalInline(_Node):
    """`every monday at 20:00` written directly after `at`."""

    days: tuple[Name, ...]
    times: tuple[Time, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class CalOnce(_Node):
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


@dataclass(frozen=True, slots=True, eq=False)
class Tagged(_Node):
    """`member tagged "core"`, `member not tagged "a", "b"`, `group tagged any of ...`."""

    subject: Subject
    test: TagTest
    tags: tuple[Str, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Compare(_Node):
    """`member.level >= 3`."""

    left: AttrRef
    op: Comparator
    right: Value
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class StartsWith(_Node):
    """`member.name starts with "AAA"`."""

    left: AttrRef
    prefix: Str
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Matches(_Node):
    """`member.nickname matches "^.+-.+$"`."""

    left: AttrRef
    pattern: Str
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class InList(_Node):
    """`member.region in ["华东", "华南"]`."""

    left: AttrRef
    values: tuple[Value, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class IsSet(_Node):
    """`member.referrer is set`."""

    left: AttrRef
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class WindowCount(_Node):
    """`messages in last 7 days >= 3`."""

    kind: Name
    window: Duration
    op: Comparator
    count: Number
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class TimeBetween(_Node):
    """`time between 12:00 and 14:00` (local time of the group)."""

    start: Time
    end: Time
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class WeekdayIn(_Node):
    """`weekday in [saturday, sunday]`."""

    days: tuple[Name, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class InStock(_Node):
    """`coupon free_scarf in stock`, or with `negated`, `coupon free_scarf not in stock`."""

    coupon: Name
    negated: bool
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class BoolCond(_Node):
    """`true` / `false` as a condition."""

    value: bool
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Not(_Node):
    """`not C`."""

    operand: Cond
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class And(_Node):
    """`A and B and ...`."""

    operands: tuple[Cond, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Or(_Node):
    """`A or B or ...`."""

    operands: tuple[Cond, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Paren(_Node):
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


@dataclass(frozen=True, slots=True, eq=False)
class Send(_Node):
    """`send welcome to member [via mass]`."""

    template: Name
    target: Target
    via: Name | None
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class TagStep(_Node):
    """`tag member "a", "b"` or `untag member "a"`."""

    target: Target
    tags: tuple[Str, ...]
    remove: bool
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Kick(_Node):
    """`kick member because "..."`."""

    target: Target
    reason: Str | None
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Grant(_Node):
    """`grant new50 to member`."""

    coupon: Name
    target: Target
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Invite(_Node):
    """`invite member to core_group`."""

    target: Target
    group: Name
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Add(_Node):
    """`add 10 to member.points`."""

    amount: Number
    negative: bool
    attr: AttrRef
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class SetStep(_Node):
    """`set member.stage = "explorer"`."""

    attr: AttrRef
    value: Value
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Assign(_Node):
    """`assign "回访" to operator within 2 days then { } else { }`."""

    text: Str
    target: Target
    within: Duration
    then: tuple[Step, ...] | None
    otherwise: tuple[Step, ...] | None
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Wait(_Node):
    """`wait 3 days`."""

    duration: Duration
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class WaitFor(_Node):
    """`wait 3 days for member posts then { } else { }`; `timeout` None is a mistake the checker reports."""

    timeout: Duration | None
    pattern: EventPattern
    then: tuple[Step, ...] | None
    otherwise: tuple[Step, ...] | None
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Branch(_Node):
    """One `if C { ... }` or `else if C { ... }`."""

    cond: Cond
    body: tuple[Step, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class If(_Node):
    """`if C { } else if C { } else { }`."""

    branches: tuple[Branch, ...]
    otherwise: tuple[Step, ...] | None
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Arm(_Node):
    """`red 50% { ... }` inside a split."""

    name: Name
    percent: Number
    body: tuple[Step, ...]
    braced: bool
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Split(_Node):
    """`split { red 50% { } yellow 50% { } }`: deterministic A/B assignment."""

    arms: tuple[Arm, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Stop(_Node):
    """`stop`."""

    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Arg(_Node):
    """`level = "high"` inside `call`."""

    name: Name
    value: Value
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Call(_Node):
    """`call crm_note(level = "high")`."""

    action: Name
    args: tuple[Arg, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Dissolve(_Node):
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


@dataclass(frozen=True, slots=True, eq=False)
class ScenarioSetting(_Node):
    """`scenario J1, J2`."""

    ids: tuple[Name, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class ScopeSetting(_Node):
    """`in groups tagged "edu"`."""

    scope: Scope
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class OnSetting(_Node):
    """`on member joins`."""

    trigger: Trigger
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class WhenSetting(_Node):
    """`when member not tagged "core"`: the playbook's guard."""

    cond: Cond
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class RepeatSetting(_Node):
    """`repeat once` / `repeat always` / `repeat after 7 days`."""

    mode: Repeat
    cooldown: Duration | None
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class ApplySetting(_Node):
    """`apply to new members` / `apply to all members`."""

    who: Name
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class MissedSetting(_Node):
    """`missed skip` / `missed run latest`."""

    words: tuple[Name, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class ChangeSetting(_Node):
    """`on change finish` / `on change migrate`."""

    mode: Name
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class ActiveSetting(_Node):
    """`active from 2026-11-11 10:00 until 2026-11-12 10:00`."""

    start: DateTime
    end: DateTime
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class VersionSetting(_Node):
    """`version "1.2"`: which revision of the SOP this is."""

    version: Str
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class AuthorSetting(_Node):
    """`author "小美"`: who wrote this revision."""

    author: Str
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class ReviewSetting(_Node):
    """`reviewed by "阿峰", "小美"`: who reviewed this revision."""

    reviewers: tuple[Str, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class DoSetting(_Node):
    """`do { ... }`: the steps run when an `on` trigger fires."""

    steps: tuple[Step, ...]
    braced: bool
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class AtEntry(_Node):
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


@dataclass(frozen=True, slots=True, eq=False)
class PlaybookDecl(_Node):
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


@dataclass(frozen=True, slots=True, eq=False)
class Comment(_Node):
    """A `#` comment, kept so the formatter can put it back."""

    text: str
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class File(_Node):
    """One parsed file: its declarations in order, and its comments."""

    path: str
    declarations: tuple[Declaration, ...]
    comments: tuple[Comment, ...]
    span: Span
