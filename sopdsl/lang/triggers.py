"""The checked language's scopes, event patterns and triggers, and the playbook options about firing.

Shared by the checked model and the plan (`sopdsl.lang`). Annotations are resolved by pydantic in
this module's namespace: every name they use is imported here at run time.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated, Literal, TypeAlias

from pydantic import Field

from sopdsl.enums import EventKind
from sopdsl.lang.base import Duration, Model


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


class Missed(enum.Enum):
    """What a trigger does with firings missed while the runtime was down."""

    SKIP = "skip"
    RUN_LATEST = "run_latest"


class OnChange(enum.Enum):
    """What members in the middle of a flow do when a new plan version loads."""

    FINISH = "finish"
    MIGRATE = "migrate"
