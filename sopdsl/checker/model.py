"""The checked model: playbooks with every name resolved and every value validated.

Input: built by `sopdsl.checker` from syntax trees. Output: consumed by `sopdsl.plan.compiler`.
All models are frozen pydantic models that forbid unknown fields; closed sets are enums.
`loc` fields ("path:line") let the simulator explain which line produced an action.

The base `Model`, durations, declarations and triggers are written in `model_values.py`,
`model_declarations.py` and `model_triggers.py` beside this one and re-exported here, the module to
import from; the discriminated unions (`CalendarRule`, `Trigger`, `Cond`, `Step`) stay here, with
the recursive condition, step and playbook models whose annotations name them.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated, Literal, TypeAlias

from pydantic import Field

from sopdsl.checker.model_declarations import ActionType as ActionType
from sopdsl.checker.model_declarations import Attribute as Attribute
from sopdsl.checker.model_declarations import Cap as Cap
from sopdsl.checker.model_declarations import CapNoun as CapNoun
from sopdsl.checker.model_declarations import CapPeriod as CapPeriod
from sopdsl.checker.model_declarations import CapSubject as CapSubject
from sopdsl.checker.model_declarations import ContentMix as ContentMix
from sopdsl.checker.model_declarations import Counter as Counter
from sopdsl.checker.model_declarations import Coupon as Coupon
from sopdsl.checker.model_declarations import Cron as Cron
from sopdsl.checker.model_declarations import Dates as Dates
from sopdsl.checker.model_declarations import EventType as EventType
from sopdsl.checker.model_declarations import Group as Group
from sopdsl.checker.model_declarations import Interval as Interval
from sopdsl.checker.model_declarations import Overflow as Overflow
from sopdsl.checker.model_declarations import Policy as Policy
from sopdsl.checker.model_declarations import Template as Template
from sopdsl.checker.model_declarations import Weekly as Weekly
from sopdsl.checker.model_triggers import EventPattern as EventPattern
from sopdsl.checker.model_triggers import OnAbsence as OnAbsence
from sopdsl.checker.model_triggers import OnAnniversary as OnAnniversary
from sopdsl.checker.model_triggers import OnDateOffset as OnDateOffset
from sopdsl.checker.model_triggers import OnEvent as OnEvent
from sopdsl.checker.model_triggers import OnGroupSilent as OnGroupSilent
from sopdsl.checker.model_triggers import OnGroupSize as OnGroupSize
from sopdsl.checker.model_triggers import OnThreshold as OnThreshold
from sopdsl.checker.model_triggers import Scope as Scope
from sopdsl.checker.model_values import Duration as Duration
from sopdsl.checker.model_values import Model as Model
from sopdsl.checker.model_values import Unit as Unit

# Shared with the syntax tree (one definition); re-exported because the plan and the engine use them
# as model.EventKind and model.Repeat.
from sopdsl.enums import EventKind as EventKind
from sopdsl.enums import Repeat as Repeat
from sopdsl.enums import ValueType as ValueType

# ---- declarations --------------------------------------------------------------------------


CalendarRule: TypeAlias = Annotated[Weekly | Interval | Dates | Cron, Field(discriminator="kind")]


class Calendar(Model):
    """A named series of local instants."""

    name: str
    title: str | None = None
    rule: CalendarRule


# ---- scopes and triggers ---------------------------------------------------------------------


Trigger: TypeAlias = Annotated[
    OnEvent | OnAbsence | OnDateOffset | OnAnniversary | OnThreshold | OnGroupSize | OnGroupSilent,
    Field(discriminator="kind"),
]


# ---- conditions --------------------------------------------------------------------------------


class Ref(Model):
    """`member.x`, `group.x`, `event.x`, `referrer.x`, with the type of x."""

    root: Literal["member", "group", "event", "referrer"]
    field: str
    type: ValueType


Literal_: TypeAlias = str | float | bool | dt.date


class TagCond(Model):
    """A tag test on the member or the group."""

    kind: Literal["tags"] = "tags"
    subject: Literal["member", "group"]
    test: Literal["tagged", "not_tagged", "any", "all"]
    tags: tuple[str, ...]


class CompareCond(Model):
    """`ref op value`, where value is a literal or another reference."""

    kind: Literal["compare"] = "compare"
    left: Ref
    op: Literal["==", "!=", ">=", "<=", ">", "<"]
    right: Ref | Literal_


class StartsWithCond(Model):
    """`ref starts with "prefix"`."""

    kind: Literal["starts_with"] = "starts_with"
    left: Ref
    prefix: str


class MatchesCond(Model):
    """`ref matches "regex"` (Python `re.search`)."""

    kind: Literal["matches"] = "matches"
    left: Ref
    pattern: str


class InCond(Model):
    """`ref in [values]`."""

    kind: Literal["in"] = "in"
    left: Ref
    values: tuple[Literal_, ...]


class IsSetCond(Model):
    """`ref is set`."""

    kind: Literal["is_set"] = "is_set"
    left: Ref


class WindowCond(Model):
    """`messages in last 7 days >= 3`: count of the member's events of a kind in a window."""

    kind: Literal["window"] = "window"
    event: EventKind
    window: Duration
    op: Literal["==", "!=", ">=", "<=", ">", "<"]
    count: int


class TimeCond(Model):
    """`time between 12:00 and 14:00` in the group's local time (may wrap midnight)."""

    kind: Literal["time"] = "time"
    start: dt.time
    end: dt.time


class WeekdayCond(Model):
    """`weekday in [saturday, sunday]` in local time (0 = Monday)."""

    kind: Literal["weekday"] = "weekday"
    weekdays: tuple[int, ...]


class StockCond(Model):
    """`coupon X in stock` (`in_stock`) or `coupon X not in stock`: whether a coupon with a
    declared stock has any left, counting the grants that went out so far."""

    kind: Literal["stock"] = "stock"
    coupon: str
    in_stock: bool = True


class ConstCond(Model):
    """`true` or `false`."""

    kind: Literal["const"] = "const"
    value: bool


class NotCond(Model):
    """Negation."""

    kind: Literal["not"] = "not"
    operand: Cond


class AndCond(Model):
    """Conjunction."""

    kind: Literal["and"] = "and"
    operands: tuple[Cond, ...]


class OrCond(Model):
    """Disjunction."""

    kind: Literal["or"] = "or"
    operands: tuple[Cond, ...]


Cond: TypeAlias = Annotated[
    TagCond
    | CompareCond
    | StartsWithCond
    | MatchesCond
    | InCond
    | IsSetCond
    | WindowCond
    | TimeCond
    | WeekdayCond
    | StockCond
    | ConstCond
    | NotCond
    | AndCond
    | OrCond,
    Field(discriminator="kind"),
]


# ---- steps ---------------------------------------------------------------------------------------

Target: TypeAlias = Literal["member", "group", "operator", "referrer"]


class SendStep(Model):
    """Send a template to a target, optionally on a capped channel such as `mass`."""

    kind: Literal["send"] = "send"
    template: str
    target: Target
    channel: str | None = None
    loc: str


class TagStep(Model):
    """Add or remove tags on the member or group."""

    kind: Literal["tag"] = "tag"
    target: Target
    tags: tuple[str, ...]
    remove: bool = False
    loc: str


class KickStep(Model):
    """Remove the member from the group."""

    kind: Literal["kick"] = "kick"
    target: Target
    reason: str | None = None
    loc: str


class GrantStep(Model):
    """Grant a declared coupon."""

    kind: Literal["grant"] = "grant"
    coupon: str
    target: Target
    loc: str


class InviteStep(Model):
    """Invite the member to a group."""

    kind: Literal["invite"] = "invite"
    target: Target
    group: str
    loc: str


class AddStep(Model):
    """Add to a member counter (negative amounts subtract)."""

    kind: Literal["add"] = "add"
    root: Literal["member", "referrer"]
    counter: str
    amount: float
    loc: str


class SetStep(Model):
    """Set a member attribute to a literal or to another reference's value."""

    kind: Literal["set"] = "set"
    root: Literal["member", "referrer"]
    attribute: str
    value: Ref | Literal_
    loc: str


class AssignStep(Model):
    """Assign a task to staff and wait until done or the deadline."""

    kind: Literal["assign"] = "assign"
    text: str
    target: Target
    within: Duration
    then: tuple[Step, ...] = ()
    otherwise: tuple[Step, ...] = ()
    loc: str


class WaitStep(Model):
    """Wait a duration."""

    kind: Literal["wait"] = "wait"
    duration: Duration
    loc: str


class WaitForStep(Model):
    """Wait for the member's event, at most `timeout`; branch on which came first."""

    kind: Literal["wait_for"] = "wait_for"
    timeout: Duration
    pattern: EventPattern
    then: tuple[Step, ...] = ()
    otherwise: tuple[Step, ...] = ()
    loc: str


class Branch(Model):
    """One guarded branch of an `if`."""

    cond: Cond
    steps: tuple[Step, ...]


class IfStep(Model):
    """`if / else if / else`."""

    kind: Literal["if"] = "if"
    branches: tuple[Branch, ...]
    otherwise: tuple[Step, ...] = ()
    loc: str


class Arm(Model):
    """One arm of an A/B split."""

    name: str
    percent: float
    steps: tuple[Step, ...]


class SplitStep(Model):
    """Deterministic A/B split on member id, playbook and seed."""

    kind: Literal["split"] = "split"
    arms: tuple[Arm, ...]
    loc: str


class StopStep(Model):
    """End this run of the playbook."""

    kind: Literal["stop"] = "stop"
    loc: str


class CallStep(Model):
    """Call a custom action with typed arguments."""

    kind: Literal["call"] = "call"
    action: str
    args: dict[str, Ref | Literal_]
    loc: str


class DissolveStep(Model):
    """Dissolve the group (flash groups)."""

    kind: Literal["dissolve"] = "dissolve"
    loc: str


Step: TypeAlias = Annotated[
    SendStep
    | TagStep
    | KickStep
    | GrantStep
    | InviteStep
    | AddStep
    | SetStep
    | AssignStep
    | WaitStep
    | WaitForStep
    | IfStep
    | SplitStep
    | StopStep
    | CallStep
    | DissolveStep,
    Field(discriminator="kind"),
]


# ---- playbooks ------------------------------------------------------------------------------------


class Missed(enum.Enum):
    """What a trigger does with firings missed while the runtime was down."""

    SKIP = "skip"
    RUN_LATEST = "run_latest"


class OnChange(enum.Enum):
    """What members in the middle of a flow do when a new plan version loads."""

    FINISH = "finish"
    MIGRATE = "migrate"


class CalRef(Model):
    """A calendar, shifted by offsets and optionally pinned to a local time of day."""

    calendar: str | None = None
    inline: CalendarRule | None = None
    offsets: tuple[tuple[bool, Duration], ...] = ()
    at: dt.time | None = None


class ScheduleEntry(Model):
    """`at CAL [for each member] [when C]: steps`."""

    when: CalRef
    for_each_member: bool = False
    cond: Cond | None = None
    steps: tuple[Step, ...]
    loc: str


class Playbook(Model):
    """One SOP: triggers, guard, steps, calendar entries and operating options; `version`,
    `author` and `reviewers` say which reviewed revision of the SOP a plan runs."""

    name: str
    title: str | None = None
    scenarios: tuple[str, ...] = ()
    version: str | None = None
    author: str | None = None
    reviewers: tuple[str, ...] = ()
    scope: Scope = Scope()
    triggers: tuple[Trigger, ...] = ()
    guard: Cond | None = None
    repeat: Repeat = Repeat.ONCE
    cooldown: Duration | None = None
    apply_to_existing: bool = True
    missed: Missed = Missed.SKIP
    on_change: OnChange = OnChange.FINISH
    active_from: dt.datetime | None = None
    active_until: dt.datetime | None = None
    steps: tuple[Step, ...] = ()
    schedule: tuple[ScheduleEntry, ...] = ()
    loc: str


class Program(Model):
    """Everything a set of playbook files declares, checked and resolved."""

    timezone: str
    attributes: dict[str, Attribute] = {}
    counters: dict[str, Counter] = {}
    events: dict[str, EventType] = {}
    actions: dict[str, ActionType] = {}
    coupons: dict[str, Coupon] = {}
    groups: dict[str, Group] = {}
    calendars: dict[str, Calendar] = {}
    templates: dict[str, Template] = {}
    policy: Policy = Policy()
    playbooks: tuple[Playbook, ...] = ()
    files: tuple[str, ...] = ()
