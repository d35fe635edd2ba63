"""The syntax tree's playbook items (settings, `on`, `when`, `do`, `at`) and the playbook declaration.

Part of `sopdsl.syntax.nodes`, which re-exports every class here and defines the unions and the
enums; import them from there (`from sopdsl.syntax import nodes as n`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sopdsl.syntax.node_base import _Node, dataclass

if TYPE_CHECKING:
    from sopdsl.source import Span
    from sopdsl.syntax.nodes import (
        CalExpr,
        Cond,
        DateTime,
        Duration,
        EventPattern,
        Name,
        PlaybookItem,
        Repeat,
        Scope,
        Step,
        Str,
        Trigger,
    )


@dataclass(frozen=True, slots=True, eq=False)
class ScenarioSetting(_Node):
    """`scenario J1, J2`."""

    ids: tuple[Name, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class ScopeSetting(_Node):
    """`in groups tagged "edu"`."""

    scope: Scope
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class OnSetting(_Node):
    """`on member joins`."""

    trigger: Trigger
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class WhenSetting(_Node):
    """`when member not tagged "core"`: the playbook's guard."""

    cond: Cond
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class RepeatSetting(_Node):
    """`repeat once` / `repeat always` / `repeat after 7 days`."""

    mode: Repeat
    cooldown: Duration | None
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class ApplySetting(_Node):
    """`apply to new members` / `apply to all members`."""

    who: Name
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class MissedSetting(_Node):
    """`missed skip` / `missed run latest`."""

    words: tuple[Name, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class ChangeSetting(_Node):
    """`on change finish` / `on change migrate`."""

    mode: Name
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class ActiveSetting(_Node):
    """`active from 2026-11-11 10:00 until 2026-11-12 10:00`."""

    start: DateTime
    end: DateTime
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class VersionSetting(_Node):
    """`version "1.2"`: which revision of the SOP this is."""

    version: Str
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class AuthorSetting(_Node):
    """`author "小美"`: who wrote this revision."""

    author: Str
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class ReviewSetting(_Node):
    """`reviewed by "阿峰", "小美"`: who reviewed this revision."""

    reviewers: tuple[Str, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class DoSetting(_Node):
    """`do { ... }`: the steps run when an `on` trigger fires."""

    steps: tuple[Step, ...]
    braced: bool
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class AtEntry(_Node):
    """`at tuesday_class - 1 day [for each member] [when C]: send preview to group`."""

    when: CalExpr
    for_each_member: bool
    cond: Cond | None
    steps: tuple[Step, ...]
    braced: bool
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class GoalSetting(_Node):
    """`goal "下单" = member orders [when C] within 7 days`: a conversion the playbook's figures
    count, when the member does it within that long of being reached."""

    name: Str
    pattern: EventPattern
    cond: Cond | None
    within: Duration
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class PlaybookDecl(_Node):
    """`playbook name "title" { ... }`."""

    name: Name
    title: Str | None
    items: tuple[PlaybookItem, ...]
    span: Span
