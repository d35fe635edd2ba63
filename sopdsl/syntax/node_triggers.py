"""The syntax tree's scopes, event patterns, triggers and calendar expressions.

Part of `sopdsl.syntax.nodes`, which re-exports every class here and defines the unions and the
enums; import them from there (`from sopdsl.syntax import nodes as n`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sopdsl.syntax.node_base import _Node, dataclass

if TYPE_CHECKING:
    from sopdsl.source import Span
    from sopdsl.syntax.nodes import (
        AttrRef,
        CalExcept,
        DateTime,
        Duration,
        EventKind,
        Name,
        Number,
        ScopeKind,
        Str,
        Time,
    )


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
    skip: CalExcept | None  # `except 2026-10-01..2026-10-07, national`
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class CalOnce(_Node):
    """`2026-11-11 10:00` written directly after `at`."""

    at: DateTime
    span: Span
