"""The syntax tree's steps.

Part of `sopdsl.syntax.nodes`, which re-exports every class here and defines the unions and the
enums; import them from there (`from sopdsl.syntax import nodes as n`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sopdsl.syntax.node_base import _Node

if TYPE_CHECKING:
    from sopdsl.source import Span
    from sopdsl.syntax.nodes import (
        Cond,
        Duration,
        EventPattern,
        Name,
        Number,
        Step,
        Str,
        Target,
    )


@dataclass(frozen=True, slots=True, eq=False)
class Assign(_Node):
    """`assign "回访" to operator within 2 days then { } else { }`."""

    text: Str
    target: Target
    within: Duration
    then: tuple[Step, ...] | None
    otherwise: tuple[Step, ...] | None
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Wait(_Node):
    """`wait 3 days`."""

    duration: Duration
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class WaitFor(_Node):
    """`wait 3 days for member posts then { } else { }`; `timeout` None is a mistake the checker reports."""

    timeout: Duration | None
    pattern: EventPattern
    then: tuple[Step, ...] | None
    otherwise: tuple[Step, ...] | None
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Branch(_Node):
    """One `if C { ... }` or `else if C { ... }`."""

    cond: Cond
    body: tuple[Step, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class If(_Node):
    """`if C { } else if C { } else { }`."""

    branches: tuple[Branch, ...]
    otherwise: tuple[Step, ...] | None
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Arm(_Node):
    """`red 50% { ... }` inside a split."""

    name: Name
    percent: Number
    body: tuple[Step, ...]
    braced: bool
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Split(_Node):
    """`split { red 50% { } yellow 50% { } }`: deterministic A/B assignment."""

    arms: tuple[Arm, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Stop(_Node):
    """`stop`."""

    span: Span
