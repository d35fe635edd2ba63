"""The builders of steps: blocks, actions on members and groups, waits, branches and splits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sopdsl.source import Span
from sopdsl.syntax import nodes as n
from sopdsl.syntax.building import _all, _Block, _Else, _of, _Steps, _Then


@dataclass(frozen=True, slots=True)
class _Message:
    """An assign's `with message TEMPLATE`, told apart from its other children by its type."""

    name: n.Name


class StepBuilders:
    """One method per grammar rule of a step (see `transformer._Builders`)."""

    # ---- steps ----

    def block_one(self, span: Span, children: list[Any]) -> _Block:
        block = _Block(children)
        block.braced = False
        return block

    def block_many(self, span: Span, children: list[Any]) -> _Block:
        return _Block(children)

    def body(self, span: Span, children: list[Any]) -> _Steps:
        return _Steps(children)

    def then_branch(self, span: Span, children: list[Any]) -> _Then:
        return _Then(children[0])

    def else_branch(self, span: Span, children: list[Any]) -> _Else:
        return _Else(children[0])

    def assign(self, span: Span, children: list[Any]) -> n.Assign:
        then = _of(children, _Then)
        otherwise = _of(children, _Else)
        message = _of(children, _Message)
        return n.Assign(
            children[0],
            children[1],
            children[2],
            message.name if message is not None else None,
            tuple(then) if then is not None else None,
            tuple(otherwise) if otherwise is not None else None,
            span,
        )

    def wait(self, span: Span, children: list[Any]) -> n.Wait:
        return n.Wait(children[0], span)

    def elif_branch(self, span: Span, children: list[Any]) -> n.Branch:
        return n.Branch(children[0], tuple(children[1]), span)

    def if_step(self, span: Span, children: list[Any]) -> n.If:
        first = n.Branch(children[0], tuple(children[1]), span)
        branches = (first, *_all(children[2:], n.Branch))
        otherwise = _of(children, _Else)
        return n.If(branches, tuple(otherwise) if otherwise is not None else None, span)

    def arm(self, span: Span, children: list[Any]) -> n.Arm:
        block: _Block = children[2]
        return n.Arm(children[0], children[1], tuple(block), block.braced, span)

    def control_arm(self, span: Span, children: list[Any]) -> n.Arm:
        word = len("control")
        at = Span(
            span.path, span.start, span.start + word, span.line, span.column, span.line, span.column + word
        )
        name = n.Name("control", at)
        return n.Arm(name, children[0], (), False, span, control=True)

    def split(self, span: Span, children: list[Any]) -> n.Split:
        return n.Split(tuple(children), span)

    def stop(self, span: Span, children: list[Any]) -> n.Stop:
        return n.Stop(span)

    def target_member(self, span: Span, children: list[Any]) -> n.Target:
        return n.Target.MEMBER

    def target_group(self, span: Span, children: list[Any]) -> n.Target:
        return n.Target.GROUP

    def target_operator(self, span: Span, children: list[Any]) -> n.Target:
        return n.Target.OPERATOR

    def target_referrer(self, span: Span, children: list[Any]) -> n.Target:
        return n.Target.REFERRER

    def target_owner(self, span: Span, children: list[Any]) -> n.Target:
        return n.Target.OWNER

    def task_message(self, span: Span, children: list[Any]) -> _Message:
        return _Message(children[0])
