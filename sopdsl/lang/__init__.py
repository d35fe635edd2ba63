"""The checked language: the values that both the checked model and the plan carry.

Durations, references, conditions, actions, triggers and declarations, each checked and resolved,
with no syntax and no flow structure. The checker builds them (`sopdsl.checker.model` adds steps,
playbooks and the program around them); the plan (`sopdsl.plan`) carries them to the engine, which
imports this package and the plan, never the checker. Pure data over pydantic, built when this
package is imported (see `_build_leaves_first`).
"""

from __future__ import annotations

# The enums the syntax tree shares; re-exported so that `lang.EventKind` reads as the rest.
from sopdsl.enums import EventKind as EventKind
from sopdsl.enums import Repeat as Repeat
from sopdsl.enums import ValueType as ValueType
from sopdsl.lang.actions import *  # noqa: F403 - every action kind, by its __all__
from sopdsl.lang.base import DateSpan as DateSpan
from sopdsl.lang.base import Duration as Duration
from sopdsl.lang.base import Model as Model
from sopdsl.lang.base import Unit as Unit
from sopdsl.lang.base import on_any as on_any
from sopdsl.lang.conditions import AndCond as AndCond
from sopdsl.lang.conditions import Calc as Calc
from sopdsl.lang.conditions import CalcCond as CalcCond
from sopdsl.lang.conditions import CompareCond as CompareCond
from sopdsl.lang.conditions import Cond as Cond
from sopdsl.lang.conditions import ConstCond as ConstCond
from sopdsl.lang.conditions import DateCond as DateCond
from sopdsl.lang.conditions import InCond as InCond
from sopdsl.lang.conditions import IsSetCond as IsSetCond
from sopdsl.lang.conditions import Literal_ as Literal_
from sopdsl.lang.conditions import MatchesCond as MatchesCond
from sopdsl.lang.conditions import NotCond as NotCond
from sopdsl.lang.conditions import Operand as Operand
from sopdsl.lang.conditions import OrCond as OrCond
from sopdsl.lang.conditions import Ref as Ref
from sopdsl.lang.conditions import StartsWithCond as StartsWithCond
from sopdsl.lang.conditions import StockCond as StockCond
from sopdsl.lang.conditions import TagCond as TagCond
from sopdsl.lang.conditions import TimeCond as TimeCond
from sopdsl.lang.conditions import WeekdayCond as WeekdayCond
from sopdsl.lang.conditions import WindowCond as WindowCond
from sopdsl.lang.declarations import MAX_ATTACHMENTS as MAX_ATTACHMENTS
from sopdsl.lang.declarations import WECOM_BYTES as WECOM_BYTES
from sopdsl.lang.declarations import ActionType as ActionType
from sopdsl.lang.declarations import Attachment as Attachment
from sopdsl.lang.declarations import Attribute as Attribute
from sopdsl.lang.declarations import Calendar as Calendar
from sopdsl.lang.declarations import CalendarRule as CalendarRule
from sopdsl.lang.declarations import CalRef as CalRef
from sopdsl.lang.declarations import Cap as Cap
from sopdsl.lang.declarations import CapNoun as CapNoun
from sopdsl.lang.declarations import CapPeriod as CapPeriod
from sopdsl.lang.declarations import CapSubject as CapSubject
from sopdsl.lang.declarations import ContentMix as ContentMix
from sopdsl.lang.declarations import Counter as Counter
from sopdsl.lang.declarations import Coupon as Coupon
from sopdsl.lang.declarations import Cron as Cron
from sopdsl.lang.declarations import Dates as Dates
from sopdsl.lang.declarations import EventType as EventType
from sopdsl.lang.declarations import FileAttachment as FileAttachment
from sopdsl.lang.declarations import Group as Group
from sopdsl.lang.declarations import ImageAttachment as ImageAttachment
from sopdsl.lang.declarations import Interval as Interval
from sopdsl.lang.declarations import LinkAttachment as LinkAttachment
from sopdsl.lang.declarations import MiniProgramAttachment as MiniProgramAttachment
from sopdsl.lang.declarations import Overflow as Overflow
from sopdsl.lang.declarations import Platform as Platform
from sopdsl.lang.declarations import Policy as Policy
from sopdsl.lang.declarations import Template as Template
from sopdsl.lang.declarations import Weekly as Weekly
from sopdsl.lang.goals import Attribution as Attribution
from sopdsl.lang.goals import Goal as Goal
from sopdsl.lang.triggers import EventPattern as EventPattern
from sopdsl.lang.triggers import Missed as Missed
from sopdsl.lang.triggers import OnAbsence as OnAbsence
from sopdsl.lang.triggers import OnAnniversary as OnAnniversary
from sopdsl.lang.triggers import OnChange as OnChange
from sopdsl.lang.triggers import OnDateOffset as OnDateOffset
from sopdsl.lang.triggers import OnEvent as OnEvent
from sopdsl.lang.triggers import OnGroupSilent as OnGroupSilent
from sopdsl.lang.triggers import OnGroupSize as OnGroupSize
from sopdsl.lang.triggers import OnThreshold as OnThreshold
from sopdsl.lang.triggers import Scope as Scope
from sopdsl.lang.triggers import Trigger as Trigger
from sopdsl.lang.waits import *  # noqa: F403 - what a wait waits for


def _build_leaves_first() -> None:
    """Build every model of the language now, each before the models that hold it.

    Every command that imports this package builds nearly all of them (the checker's playbook and
    program, the plan's instructions, playbooks and declarations each hold most). Built on first
    use instead, a model is built inside each of those that holds it, again for each; built first
    on its own, it is reused by all of them: `sopdsl check` of a small file builds its schemas
    with a fifth less work (bench/startup.py). A model that cannot be built yet stays for its
    first use.
    """
    from sopdsl.lang import actions, base, conditions, declarations, triggers, waits

    for module in (base, conditions, actions, waits, triggers, declarations):  # leaves first
        for value in list(vars(module).values()):
            if isinstance(value, type) and issubclass(value, Model) and value.__module__ == module.__name__:
                value.model_rebuild(raise_errors=False, _parent_namespace_depth=0)


_build_leaves_first()
