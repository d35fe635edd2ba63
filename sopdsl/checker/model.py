"""The checked model: playbooks with every name resolved and every value validated.

Input: built by `sopdsl.checker` from syntax trees. Output: consumed by `sopdsl.plan.compiler`.
All models are frozen pydantic models that forbid unknown fields; closed sets are enums.
`loc` fields ("path:line") let the simulator explain which line produced an action.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field

# Shared with the syntax tree (one definition); re-exported because the plan and the engine use them
# as model.EventKind and model.Repeat.
from sopdsl.enums import EventKind as EventKind
from sopdsl.enums import Repeat as Repeat
from sopdsl.enums import ValueType as ValueType


class Model(BaseModel):
    """Base of every checked-model type: immutable, no unknown fields."""

    # Built on first use, not at import: a run builds only the models it makes (start-up time).
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class Unit(enum.Enum):
    """Duration units. Minutes and hours are exact; days and longer keep the wall time."""

    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"


class Duration(Model):
    """`28 days` (calendar: same wall time) or `672 hours` (exact)."""

    amount: int
    unit: Unit

    @property
    def exact(self) -> bool:
        """Whether this is an exact span of seconds rather than calendar arithmetic."""
        return self.unit in (Unit.MINUTE, Unit.HOUR)

    def __str__(self) -> str:
        return f"{self.amount} {self.unit.value}{'' if self.amount == 1 else 's'}"


# ---- declarations --------------------------------------------------------------------------


class Attribute(Model):
    """A member attribute the playbooks may read or set."""

    name: str
    type: ValueType
    title: str | None = None


class Counter(Model):
    """A numeric member counter (built-in ones count events; declared ones are added to)."""

    name: str
    title: str | None = None


class EventType(Model):
    """A custom event with a typed payload."""

    name: str
    title: str | None = None
    fields: dict[str, ValueType]


class ActionType(Model):
    """A custom action an embedding bot provides, with typed arguments."""

    name: str
    title: str | None = None
    fields: dict[str, ValueType]


class Coupon(Model):
    """A coupon that playbooks grant."""

    name: str
    title: str | None = None
    worth: float | None = None
    valid: Duration | None = None
    transferable: bool = True
    stock: int | None = None


class Group(Model):
    """A group declared by name (groups met only in timelines need no declaration)."""

    name: str
    title: str | None = None
    tags: tuple[str, ...] = ()
    timezone: str | None = None
    operator: str | None = None


class Weekly(Model):
    """Every listed weekday (0 = Monday) at the listed local times."""

    kind: Literal["weekly"] = "weekly"
    weekdays: tuple[int, ...]
    times: tuple[dt.time, ...]
    start: dt.date | None = None
    until: dt.date | None = None


class Interval(Model):
    """Every `every` from a local start instant, optionally until a date."""

    kind: Literal["interval"] = "interval"
    every: Duration
    first: dt.datetime
    start: dt.date | None = None
    until: dt.date | None = None


class Dates(Model):
    """On the listed dates at the listed local times."""

    kind: Literal["dates"] = "dates"
    dates: tuple[dt.date, ...]
    times: tuple[dt.time, ...]


class Cron(Model):
    """A five-field cron expression, evaluated in local time."""

    kind: Literal["cron"] = "cron"
    expression: str
    start: dt.date | None = None
    until: dt.date | None = None


CalendarRule: TypeAlias = Annotated[Weekly | Interval | Dates | Cron, Field(discriminator="kind")]


class Calendar(Model):
    """A named series of local instants."""

    name: str
    title: str | None = None
    rule: CalendarRule


class Template(Model):
    """A Jinja2 message template, validated and with the variables it reads."""

    name: str
    title: str | None = None
    tags: tuple[str, ...] = ()
    source: str
    variables: tuple[str, ...] = ()
    loc: str


class Overflow(enum.Enum):
    """What happens to an action over a cap."""

    DEFER = "defer"
    DROP = "drop"


class CapNoun(enum.Enum):
    """What a cap counts."""

    SEND = "send"
    KICK = "kick"
    COUPON = "coupon"
    INVITE = "invite"


class CapSubject(enum.Enum):
    """Whose actions a cap counts."""

    MEMBER = "member"
    GROUP = "group"
    ALL = "all"


class CapPeriod(enum.Enum):
    """The calendar period a cap resets on (local time)."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class Cap(Model):
    """`at most 3 sends per member per day [via mass] [else drop]`."""

    limit: int
    noun: CapNoun
    subject: CapSubject
    period: CapPeriod
    channel: str | None = None
    overflow: Overflow = Overflow.DEFER
    loc: str


class ContentMix(Model):
    """At least `percent` of scheduled sends in the scoped groups use templates tagged `tag`."""

    percent: float
    tag: str
    scope: Scope
    loc: str


class Policy(Model):
    """Delivery policy the engine enforces for every playbook."""

    quiet_start: dt.time | None = None
    quiet_end: dt.time | None = None
    caps: tuple[Cap, ...] = ()
    protected_tags: tuple[str, ...] = ()
    content_mix: tuple[ContentMix, ...] = ()


# ---- scopes and triggers ---------------------------------------------------------------------


class Scope(Model):
    """Which groups a playbook applies to. `private` means one-to-one chats only."""

    kind: Literal["all", "tagged", "named", "private"] = "all"
    tags: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()


class EventPattern(Model):
    """Which events match: a kind, the tag for tag events, the name for custom events."""

    kind: EventKind
    tag: str | None = None
    custom: str | None = None


class OnEvent(Model):
    """Trigger on a matching event."""

    kind: Literal["event"] = "event"
    pattern: EventPattern
    loc: str


class OnAbsence(Model):
    """Per-member deadline: no event of `event` for `duration`, re-armed by every such event."""

    kind: Literal["absence"] = "absence"
    event: EventKind
    duration: Duration
    loc: str


class OnDateOffset(Model):
    """Once, `offset` after (or before) a member's date attribute, at a local time."""

    kind: Literal["date_offset"] = "date_offset"
    attribute: str
    offset: Duration
    before: bool
    at: dt.time
    loc: str


class OnAnniversary(Model):
    """Every year on the month and day of a member's date attribute, at a local time."""

    kind: Literal["anniversary"] = "anniversary"
    attribute: str
    at: dt.time
    loc: str


class OnThreshold(Model):
    """When a member counter first reaches a value."""

    kind: Literal["threshold"] = "threshold"
    counter: str
    threshold: float
    loc: str


class OnGroupSize(Model):
    """When a group's member count first reaches a value; `member` is the group owner."""

    kind: Literal["group_size"] = "group_size"
    threshold: int
    loc: str


class OnGroupSilent(Model):
    """When nobody has posted in a group for a duration."""

    kind: Literal["group_silent"] = "group_silent"
    duration: Duration
    loc: str


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
