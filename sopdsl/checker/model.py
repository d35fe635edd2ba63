"""The checked model: playbooks with every name resolved and every value validated.

Input: built by `sopdsl.checker` from syntax trees. Output: consumed by `sopdsl.plan.compiler`.
The values inside a playbook (durations, conditions, actions, triggers, declarations) are the
checked language of `sopdsl.lang`, which the plan carries too; this module adds what only the
checker and the compiler see: the nested flow steps, calendar entries, playbooks and the program.
Everything in `sopdsl.lang` is re-exported here, so checker code reads `model.X` for all of it.
`loc` fields ("path:line") let the simulator explain which line produced an action.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal, TypeAlias

from pydantic import Field

from sopdsl.lang import Action as Action
from sopdsl.lang import ActionType as ActionType
from sopdsl.lang import AddStep as AddStep
from sopdsl.lang import AndCond as AndCond
from sopdsl.lang import Attribute as Attribute
from sopdsl.lang import Calendar as Calendar
from sopdsl.lang import CalendarRule as CalendarRule
from sopdsl.lang import CallStep as CallStep
from sopdsl.lang import CalRef as CalRef
from sopdsl.lang import Cap as Cap
from sopdsl.lang import CapNoun as CapNoun
from sopdsl.lang import CapPeriod as CapPeriod
from sopdsl.lang import CapSubject as CapSubject
from sopdsl.lang import CompareCond as CompareCond
from sopdsl.lang import Cond as Cond
from sopdsl.lang import ConstCond as ConstCond
from sopdsl.lang import ContentMix as ContentMix
from sopdsl.lang import Counter as Counter
from sopdsl.lang import Coupon as Coupon
from sopdsl.lang import Cron as Cron
from sopdsl.lang import Dates as Dates
from sopdsl.lang import DissolveStep as DissolveStep
from sopdsl.lang import Duration as Duration
from sopdsl.lang import EventKind as EventKind
from sopdsl.lang import EventPattern as EventPattern
from sopdsl.lang import EventType as EventType
from sopdsl.lang import GrantStep as GrantStep
from sopdsl.lang import Group as Group
from sopdsl.lang import InCond as InCond
from sopdsl.lang import Interval as Interval
from sopdsl.lang import InviteStep as InviteStep
from sopdsl.lang import IsSetCond as IsSetCond
from sopdsl.lang import KickStep as KickStep
from sopdsl.lang import Literal_ as Literal_
from sopdsl.lang import MatchesCond as MatchesCond
from sopdsl.lang import Missed as Missed
from sopdsl.lang import Model as Model
from sopdsl.lang import NotCond as NotCond
from sopdsl.lang import OnAbsence as OnAbsence
from sopdsl.lang import OnAnniversary as OnAnniversary
from sopdsl.lang import OnChange as OnChange
from sopdsl.lang import OnDateOffset as OnDateOffset
from sopdsl.lang import OnEvent as OnEvent
from sopdsl.lang import OnGroupSilent as OnGroupSilent
from sopdsl.lang import OnGroupSize as OnGroupSize
from sopdsl.lang import OnThreshold as OnThreshold
from sopdsl.lang import OrCond as OrCond
from sopdsl.lang import Overflow as Overflow
from sopdsl.lang import Policy as Policy
from sopdsl.lang import Ref as Ref
from sopdsl.lang import Repeat as Repeat
from sopdsl.lang import Scope as Scope
from sopdsl.lang import SendStep as SendStep
from sopdsl.lang import SetStep as SetStep
from sopdsl.lang import StartsWithCond as StartsWithCond
from sopdsl.lang import StockCond as StockCond
from sopdsl.lang import TagCond as TagCond
from sopdsl.lang import TagStep as TagStep
from sopdsl.lang import Target as Target
from sopdsl.lang import Template as Template
from sopdsl.lang import TimeCond as TimeCond
from sopdsl.lang import Trigger as Trigger
from sopdsl.lang import Unit as Unit
from sopdsl.lang import ValueType as ValueType
from sopdsl.lang import WeekdayCond as WeekdayCond
from sopdsl.lang import Weekly as Weekly
from sopdsl.lang import WindowCond as WindowCond

# ---- steps ---------------------------------------------------------------------------------------


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
