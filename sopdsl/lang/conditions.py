"""The checked language's conditions: references to member, group, event and flow values, and the tests over them.

Shared by the checked model and the plan (`sopdsl.lang`). Annotations are resolved by pydantic in
this module's namespace: every name they use is imported here at run time.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal, TypeAlias

from pydantic import Field

from sopdsl.enums import EventKind, ValueType
from sopdsl.lang.base import DateSpan, Duration, Model


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
