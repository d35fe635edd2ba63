"""The syntax tree's steps.

Part of `sopdsl.syntax.nodes`, which re-exports every class here and defines the unions and the
enums; import them from there (`from sopdsl.syntax import nodes as n`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sopdsl.syntax.node_base import _Node, builds, dataclass
from sopdsl.syntax.text import duration_text, event_text

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
    message: Name | None  # `with message TEMPLATE`: what staff are asked to send
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
    same: tuple[Same, ...]  # `where event.team == flow.team and ...`: the flow's own event only
    then: tuple[Step, ...] | None
    otherwise: tuple[Step, ...] | None
    span: Span

    def head(self) -> tuple[str, int]:
        """The text before `then`/`else`, as the formatter writes it, and where it ends in the source."""
        wait = f"wait {duration_text(self.timeout)} for" if self.timeout is not None else "wait for"
        where = " and ".join(f"event.{s.event.text} == flow.{s.flow.text}" for s in self.same)
        end = self.same[-1].span.end if self.same else self.pattern.span.end
        return f"{wait} {event_text(self.pattern)}" + (f" where {where}" if where else ""), end


@dataclass(frozen=True, slots=True, eq=False)
class Same(_Node):
    """`event.team == flow.team` in a wait's `where`: the awaited event's field equals the flow's."""

    event: Name
    flow: Name
    span: Span


class _Where(tuple[Same, ...]):
    """The `where` of a wait, as its builder hands it to the wait's."""


@builds("same")
def _same(span: Span, children: list[Any]) -> Same:
    return Same(children[0], children[1], span)


@builds("correlation")
def _correlation(span: Span, children: list[Any]) -> _Where:
    return _Where(children)


@builds("wait_for")
def _wait_for(span: Span, children: list[Any]) -> WaitFor:
    from sopdsl.syntax.building import _Else, _of, _Then  # it reads the node classes: after they exist
    from sopdsl.syntax.node_triggers import EventPattern
    from sopdsl.syntax.node_values import Duration

    then = _of(children, _Then)
    otherwise = _of(children, _Else)
    return WaitFor(
        _of(children, Duration),
        _of(children, EventPattern),  # type: ignore[arg-type]
        tuple(_of(children, _Where) or ()),
        tuple(then) if then is not None else None,
        tuple(otherwise) if otherwise is not None else None,
        span,
    )


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
    """`red 50% { ... }` inside a split; `control 20%`: the holdout, which gets nothing (its
    name is `control`, its body empty)."""

    name: Name
    percent: Number
    body: tuple[Step, ...]
    braced: bool
    span: Span
    control: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class Split(_Node):
    """`split { red 50% { } yellow 50% { } }`: deterministic A/B assignment."""

    arms: tuple[Arm, ...]
    span: Span


@dataclass(frozen=True, slots=True, eq=False)
class Stop(_Node):
    """`stop`."""

    span: Span
