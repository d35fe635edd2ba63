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

from sopdsl.lang import *  # noqa: F403 - the checked language, re-exported
from sopdsl.lang import (
    ActionType,
    ActionTypes,
    Attribute,
    Calendar,
    CalRef,
    Cond,
    Counter,
    Coupon,
    Duration,
    EventType,
    EventWait,
    Goal,
    Group,
    Missed,
    Model,
    OnChange,
    Platform,
    Policy,
    Repeat,
    Scope,
    Target,
    Template,
    Trigger,
)

# ---- steps ---------------------------------------------------------------------------------------


class AssignStep(Model):
    """Assign a task to staff and wait until done or the deadline."""

    kind: Literal["assign"] = "assign"
    text: str
    target: Target
    within: Duration
    message: str | None = None  # the template staff are asked to send
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
    wait: EventWait
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
    """One arm of an A/B split; `control`: the holdout, which gets nothing (no steps)."""

    name: str
    percent: float
    steps: tuple[Step, ...]
    control: bool = False


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
    ActionTypes | AssignStep | WaitStep | WaitForStep | IfStep | SplitStep | StopStep,
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
    goals: tuple[Goal, ...] = ()
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
    platform: Platform | None = None
    playbooks: tuple[Playbook, ...] = ()
    files: tuple[str, ...] = ()
