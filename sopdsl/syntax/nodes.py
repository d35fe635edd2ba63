"""The syntax tree: what the user wrote, as typed, immutable nodes.

Input: produced by `sopdsl.syntax.transformer` from Lark's parse tree. Output: consumed by the
checker and the formatter. Every node carries the `Span` of its text; children are tuples.
Nothing here knows about Lark.

The node classes are written in the `node_*` modules beside this one (`node_base` has their shared
equality) and all imported here; this module defines the enums and the union aliases (`Step`,
`Cond`, `Trigger`, ...) itself, over those classes, and is the one to import from. The unions and
enums stay here because the exhaustiveness tests widen this one file (`tests/checker/test_exhaustive.py`).
"""

from __future__ import annotations

import enum
from typing import TypeAlias

# Shared with the checked model (one definition); re-exported so the tree's users write nodes.EventKind.
from sopdsl.enums import EventKind as EventKind
from sopdsl.enums import Repeat as Repeat
from sopdsl.source import Span
from sopdsl.syntax.node_actions import *  # noqa: F403 - the action nodes, each with its rules
from sopdsl.syntax.node_actions import Action
from sopdsl.syntax.node_base import _Node as _Node
from sopdsl.syntax.node_base import dataclass
from sopdsl.syntax.node_conditions import And as And
from sopdsl.syntax.node_conditions import BoolCond as BoolCond
from sopdsl.syntax.node_conditions import Compare as Compare
from sopdsl.syntax.node_conditions import InList as InList
from sopdsl.syntax.node_conditions import InStock as InStock
from sopdsl.syntax.node_conditions import IsSet as IsSet
from sopdsl.syntax.node_conditions import Matches as Matches
from sopdsl.syntax.node_conditions import Not as Not
from sopdsl.syntax.node_conditions import Or as Or
from sopdsl.syntax.node_conditions import Paren as Paren
from sopdsl.syntax.node_conditions import StartsWith as StartsWith
from sopdsl.syntax.node_conditions import Tagged as Tagged
from sopdsl.syntax.node_conditions import TimeBetween as TimeBetween
from sopdsl.syntax.node_conditions import WeekdayIn as WeekdayIn
from sopdsl.syntax.node_conditions import WindowCount as WindowCount
from sopdsl.syntax.node_dates import CalExcept as CalExcept
from sopdsl.syntax.node_dates import DateBetween as DateBetween
from sopdsl.syntax.node_dates import DateIn as DateIn
from sopdsl.syntax.node_dates import DateSpan as DateSpan
from sopdsl.syntax.node_dates import HolidaysDecl as HolidaysDecl
from sopdsl.syntax.node_dates import HolidaysRef as HolidaysRef
from sopdsl.syntax.node_declarations import ActionDecl as ActionDecl
from sopdsl.syntax.node_declarations import Attachment as Attachment
from sopdsl.syntax.node_declarations import AttachmentOption as AttachmentOption
from sopdsl.syntax.node_declarations import AttributeDecl as AttributeDecl
from sopdsl.syntax.node_declarations import CalBound as CalBound
from sopdsl.syntax.node_declarations import CalCron as CalCron
from sopdsl.syntax.node_declarations import CalDates as CalDates
from sopdsl.syntax.node_declarations import CalendarDecl as CalendarDecl
from sopdsl.syntax.node_declarations import CalInterval as CalInterval
from sopdsl.syntax.node_declarations import CalWeekly as CalWeekly
from sopdsl.syntax.node_declarations import Cap as Cap
from sopdsl.syntax.node_declarations import ContentMix as ContentMix
from sopdsl.syntax.node_declarations import CounterDecl as CounterDecl
from sopdsl.syntax.node_declarations import CouponDecl as CouponDecl
from sopdsl.syntax.node_declarations import CouponOption as CouponOption
from sopdsl.syntax.node_declarations import Escalate as Escalate
from sopdsl.syntax.node_declarations import EventDecl as EventDecl
from sopdsl.syntax.node_declarations import Field as Field
from sopdsl.syntax.node_declarations import GroupDecl as GroupDecl
from sopdsl.syntax.node_declarations import GroupOption as GroupOption
from sopdsl.syntax.node_declarations import IncludeDecl as IncludeDecl
from sopdsl.syntax.node_declarations import Media as Media
from sopdsl.syntax.node_declarations import Mention as Mention
from sopdsl.syntax.node_declarations import PlatformCannot as PlatformCannot
from sopdsl.syntax.node_declarations import PlatformDecl as PlatformDecl
from sopdsl.syntax.node_declarations import PlatformLimit as PlatformLimit
from sopdsl.syntax.node_declarations import PolicyDecl as PolicyDecl
from sopdsl.syntax.node_declarations import Protect as Protect
from sopdsl.syntax.node_declarations import QuietHours as QuietHours
from sopdsl.syntax.node_declarations import TemplateDecl as TemplateDecl
from sopdsl.syntax.node_declarations import TimezoneDecl as TimezoneDecl
from sopdsl.syntax.node_playbooks import ActiveSetting as ActiveSetting
from sopdsl.syntax.node_playbooks import ApplySetting as ApplySetting
from sopdsl.syntax.node_playbooks import AtEntry as AtEntry
from sopdsl.syntax.node_playbooks import AuthorSetting as AuthorSetting
from sopdsl.syntax.node_playbooks import ChangeSetting as ChangeSetting
from sopdsl.syntax.node_playbooks import DoSetting as DoSetting
from sopdsl.syntax.node_playbooks import GoalSetting as GoalSetting
from sopdsl.syntax.node_playbooks import MissedSetting as MissedSetting
from sopdsl.syntax.node_playbooks import OnSetting as OnSetting
from sopdsl.syntax.node_playbooks import PlaybookDecl as PlaybookDecl
from sopdsl.syntax.node_playbooks import RepeatSetting as RepeatSetting
from sopdsl.syntax.node_playbooks import ReviewSetting as ReviewSetting
from sopdsl.syntax.node_playbooks import ScenarioSetting as ScenarioSetting
from sopdsl.syntax.node_playbooks import ScopeSetting as ScopeSetting
from sopdsl.syntax.node_playbooks import VersionSetting as VersionSetting
from sopdsl.syntax.node_playbooks import WhenSetting as WhenSetting
from sopdsl.syntax.node_steps import Arm as Arm
from sopdsl.syntax.node_steps import Assign as Assign
from sopdsl.syntax.node_steps import Branch as Branch
from sopdsl.syntax.node_steps import If as If
from sopdsl.syntax.node_steps import Split as Split
from sopdsl.syntax.node_steps import Stop as Stop
from sopdsl.syntax.node_steps import Wait as Wait
from sopdsl.syntax.node_steps import WaitFor as WaitFor
from sopdsl.syntax.node_triggers import CalInline as CalInline
from sopdsl.syntax.node_triggers import CalOffset as CalOffset
from sopdsl.syntax.node_triggers import CalOnce as CalOnce
from sopdsl.syntax.node_triggers import CalRef as CalRef
from sopdsl.syntax.node_triggers import EventPattern as EventPattern
from sopdsl.syntax.node_triggers import OnAbsence as OnAbsence
from sopdsl.syntax.node_triggers import OnAnniversary as OnAnniversary
from sopdsl.syntax.node_triggers import OnDateOffset as OnDateOffset
from sopdsl.syntax.node_triggers import OnEvent as OnEvent
from sopdsl.syntax.node_triggers import OnGroupSilent as OnGroupSilent
from sopdsl.syntax.node_triggers import OnGroupSize as OnGroupSize
from sopdsl.syntax.node_triggers import OnThreshold as OnThreshold
from sopdsl.syntax.node_triggers import Scope as Scope
from sopdsl.syntax.node_values import AttrRef as AttrRef
from sopdsl.syntax.node_values import Bool as Bool
from sopdsl.syntax.node_values import Calc as Calc
from sopdsl.syntax.node_values import CouponField as CouponField
from sopdsl.syntax.node_values import Date as Date
from sopdsl.syntax.node_values import DateTime as DateTime
from sopdsl.syntax.node_values import Duration as Duration
from sopdsl.syntax.node_values import Name as Name
from sopdsl.syntax.node_values import Number as Number
from sopdsl.syntax.node_values import Str as Str
from sopdsl.syntax.node_values import Time as Time

# ---- atoms ------------------------------------------------------------------------------


class Root(enum.Enum):
    """What an attribute reference starts from."""

    MEMBER = "member"
    GROUP = "group"
    EVENT = "event"
    REFERRER = "referrer"


Value: TypeAlias = Str | Number | Bool | Date | AttrRef | Calc


# ---- declarations -----------------------------------------------------------------------


class CouponOptionKind(enum.Enum):
    """The options a coupon declaration can state."""

    WORTH = "worth"
    VALID = "valid"
    NOT_TRANSFERABLE = "not_transferable"
    STOCK = "stock"


class AttachmentOptionKind(enum.Enum):
    """The options an attachment can state, by the word that opens each."""

    URL = "to"
    DESCRIPTION = "description"
    COVER = "cover"
    APPID = "appid"
    PAGE = "page"


class GroupOptionKind(enum.Enum):
    """The options a group declaration can state."""

    TAGS = "tags"
    TIMEZONE = "timezone"
    OPERATOR = "operator"


CalSpec: TypeAlias = CalWeekly | CalInterval | CalDates | CalCron


PolicyRule: TypeAlias = QuietHours | Cap | Protect | ContentMix | Escalate


# ---- scopes, triggers, calendar expressions ----------------------------------------------


class ScopeKind(enum.Enum):
    """Which groups a playbook applies to."""

    ALL = "all"
    TAGGED = "tagged"
    NAMED = "named"
    PRIVATE = "private"


Trigger: TypeAlias = (
    OnEvent | OnAbsence | OnDateOffset | OnAnniversary | OnThreshold | OnGroupSize | OnGroupSilent
)


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


Cond: TypeAlias = (
    Tagged
    | Compare
    | StartsWith
    | Matches
    | InList
    | IsSet
    | WindowCount
    | TimeBetween
    | DateBetween
    | DateIn
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
    OWNER = "owner"  # the contact's owner (跟进人): whom a task about a contact goes to


Step: TypeAlias = Action | Assign | Wait | WaitFor | If | Split | Stop


# ---- playbooks ----------------------------------------------------------------------------


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

PlaybookItem: TypeAlias = OptionSetting | OnSetting | WhenSetting | DoSetting | AtEntry | GoalSetting


# The declarations that define a name in a symbol table before playbooks are checked.
SymbolDecl: TypeAlias = (
    AttributeDecl
    | CounterDecl
    | EventDecl
    | ActionDecl
    | CouponDecl
    | GroupDecl
    | CalendarDecl
    | HolidaysDecl
    | TemplateDecl
)

Declaration: TypeAlias = TimezoneDecl | IncludeDecl | SymbolDecl | PolicyDecl | PlatformDecl | PlaybookDecl


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
