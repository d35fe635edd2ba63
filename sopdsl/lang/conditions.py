"""The checked language's conditions: references to member, group, event and flow values, and the tests over them.

Shared by the checked model and the plan (`sopdsl.lang`). Annotations are resolved by pydantic in
this module's namespace: every name they use is imported here at run time.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal, TypeAlias

from pydantic import Field

from sopdsl.enums import ValueType
from sopdsl.lang.base import DateSpan, Duration, Model


class Ref(Model):
    """`member.x`, `group.x`, `event.x`, `referrer.x`, with the type of x."""

    root: Literal["member", "group", "event", "referrer"]
    field: str
    type: ValueType


Literal_: TypeAlias = str | float | bool | dt.date


class Calc(Model):
    """`member.points + 10`, `event.amount * 0.1`: one operator over two numbers, each a
    reference, a literal or more arithmetic, grouped as the checker read them. Evaluated by the
    engine (`engine/calc.py`), which says what division by zero and overflow do."""

    kind: Literal["calc"] = "calc"
    op: Literal["+", "-", "*", "/"]
    left: Ref | float | Calc
    right: Ref | float | Calc


# A number as a step or a test reads it: a reference, a literal or arithmetic.
Operand: TypeAlias = Ref | float | Calc


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


class CalcCond(Model):
    """`member.points + 10 >= member.goal`: a comparison with arithmetic on a side (numbers only)."""

    kind: Literal["calc"] = "calc"
    left: Ref | float | Calc
    op: Literal["==", "!=", ">=", "<=", ">", "<"]
    right: Ref | float | Calc


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
    """`messages in last 7 days >= 3`, `checkins in last 7 days >= 5`: how many of the member's
    events of a kind fall in a window. `event` is the event's key: its kind (`message`), or
    `custom:NAME` for a declared event (written as a string, so plans that held a kind read the same)."""

    kind: Literal["window"] = "window"
    event: str
    window: Duration
    op: Literal["==", "!=", ">=", "<=", ">", "<"]
    count: int


class TimeCond(Model):
    """`time between 12:00 and 14:00` in the group's local time (may wrap midnight)."""

    kind: Literal["time"] = "time"
    start: dt.time
    end: dt.time


class DateCond(Model):
    """`date between D1 and D2` or `date in HOLIDAYS`: the local date is in one of the spans."""

    kind: Literal["date"] = "date"
    spans: tuple[DateSpan, ...]
    holidays: str | None = None  # the holiday list's name, for `date in NAME`


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
    | CalcCond
    | StartsWithCond
    | MatchesCond
    | InCond
    | IsSetCond
    | WindowCond
    | TimeCond
    | DateCond
    | WeekdayCond
    | StockCond
    | ConstCond
    | NotCond
    | AndCond
    | OrCond,
    Field(discriminator="kind"),
]
