"""The syntax tree's actions: the one-line steps that do something to a member or a group.

Each action node carries what the syntax stage knows of it, in one place: its fields, the
builders of its grammar rules (`node_base.builds`, which the transformer adds to its own), its text
(`text`, which the formatter writes) and whether it needs the member still in the group
(`aims_at_member`, for the checker's flow analysis). A new action is a class here, its grammar
rule, and one case each in the checker and the engine; leaving out `text` or `aims_at_member`
fails mypy where its builder makes one. Re-exported by `sopdsl.syntax.nodes`.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any, TypeAlias

from sopdsl.syntax.node_base import _Node, builds, dataclass
from sopdsl.syntax.node_values import CouponField
from sopdsl.syntax.text import attr_text, str_text, strs_text, value_text

if TYPE_CHECKING:
    from sopdsl.source import Span
    from sopdsl.syntax.nodes import AttrRef, Name, Number, Str, Target, Value

__all__ = [
    "Action",
    "ActionNode",
    "Add",
    "Arg",
    "Call",
    "Dissolve",
    "Draw",
    "Grant",
    "Invite",
    "Kick",
    "Send",
    "SetStep",
    "TagStep",
]


class ActionNode(_Node):
    """What every action node has: its one line of text, and whether it aims at the member."""

    __slots__ = ()

    @abstractmethod
    def text(self) -> str:
        """The action as the formatter writes it."""

    @property
    @abstractmethod
    def aims_at_member(self) -> bool:
        """Whether it needs the member still in the group (so a `kick` before it is a mistake)."""


def _at_member(target: Target) -> bool:
    return str(target.value) == "member"


@dataclass(frozen=True, slots=True, eq=False)
class Send(ActionNode):
    """`send welcome to member [via mass]`."""

    template: Name
    target: Target
    via: Name | None
    span: Span

    def text(self) -> str:
        via = f" via {self.via.text}" if self.via is not None else ""
        return f"send {self.template.text} to {self.target.value}{via}"

    @property
    def aims_at_member(self) -> bool:
        return _at_member(self.target)


@builds("send")
def _send(span: Span, children: list[Any]) -> Send:
    via = children[2][1] if len(children) > 2 and children[2] is not None else None
    return Send(children[0], children[1], via, span)


@dataclass(frozen=True, slots=True, eq=False)
class TagStep(ActionNode):
    """`tag member "a", "b"` or `untag member "a"`."""

    target: Target
    tags: tuple[Str, ...]
    remove: bool
    span: Span

    def text(self) -> str:
        return f"{'untag' if self.remove else 'tag'} {self.target.value} {strs_text(self.tags)}"

    @property
    def aims_at_member(self) -> bool:
        return _at_member(self.target)


@builds("tag")
def _tag(span: Span, children: list[Any]) -> TagStep:
    return TagStep(children[0], tuple(children[1]), False, span)


@builds("untag")
def _untag(span: Span, children: list[Any]) -> TagStep:
    return TagStep(children[0], tuple(children[1]), True, span)


@dataclass(frozen=True, slots=True, eq=False)
class Kick(ActionNode):
    """`kick member because "..."`."""

    target: Target
    reason: Str | None
    span: Span

    def text(self) -> str:
        because = f" because {str_text(self.reason)}" if self.reason is not None else ""
        return f"kick {self.target.value}{because}"

    @property
    def aims_at_member(self) -> bool:
        return _at_member(self.target)


@builds("because")
def _because(span: Span, children: list[Any]) -> Str:
    return children[0]  # type: ignore[no-any-return]


@builds("kick")
def _kick(span: Span, children: list[Any]) -> Kick:
    return Kick(children[0], children[1] if len(children) > 1 else None, span)


@dataclass(frozen=True, slots=True, eq=False)
class Grant(ActionNode):
    """`grant new50 to member`."""

    coupon: Name
    target: Target
    span: Span

    def text(self) -> str:
        return f"grant {self.coupon.text} to {self.target.value}"

    @property
    def aims_at_member(self) -> bool:
        return _at_member(self.target)


@builds("grant")
def _grant(span: Span, children: list[Any]) -> Grant:
    return Grant(children[0], children[1], span)


@dataclass(frozen=True, slots=True, eq=False)
class Invite(ActionNode):
    """`invite member to core_group`."""

    target: Target
    group: Name
    span: Span

    def text(self) -> str:
        return f"invite {self.target.value} to {self.group.text}"

    @property
    def aims_at_member(self) -> bool:
        return _at_member(self.target)


@builds("invite")
def _invite(span: Span, children: list[Any]) -> Invite:
    return Invite(children[0], children[1], span)


@dataclass(frozen=True, slots=True, eq=False)
class Add(ActionNode):
    """`add 10 to member.points`."""

    amount: Number
    negative: bool
    attr: AttrRef
    span: Span

    def text(self) -> str:
        return f"add {'-' if self.negative else ''}{self.amount.text} to {attr_text(self.attr)}"

    @property
    def aims_at_member(self) -> bool:
        return str(self.attr.root.value) == "member"


@builds("signed_number")
def _signed_number(span: Span, children: list[Any]) -> tuple[bool, Number]:
    if len(children) == 2 and children[0] is not None:
        return (str(children[0]) == "-", children[1])
    return (False, children[-1])


@builds("add")
def _add(span: Span, children: list[Any]) -> Add:
    negative, amount = children[0]
    return Add(amount, negative, children[1], span)


@dataclass(frozen=True, slots=True, eq=False)
class SetStep(ActionNode):
    """`set member.stage = "explorer"`, `set member.coupon_due = coupon.expires_at`."""

    attr: AttrRef
    value: Value | CouponField
    span: Span

    def text(self) -> str:
        value = self.value.text() if isinstance(self.value, CouponField) else value_text(self.value)
        return f"set {attr_text(self.attr)} = {value}"

    @property
    def aims_at_member(self) -> bool:
        return str(self.attr.root.value) == "member"


@builds("set_step")
def _set_step(span: Span, children: list[Any]) -> SetStep:
    return SetStep(children[0], children[1], span)


@dataclass(frozen=True, slots=True, eq=False)
class Arg(_Node):
    """`level = "high"` inside `call`."""

    name: Name
    value: Value
    span: Span


@builds("arg")
def _arg(span: Span, children: list[Any]) -> Arg:
    return Arg(children[0], children[1], span)


@dataclass(frozen=True, slots=True, eq=False)
class Call(ActionNode):
    """`call crm_note(level = "high")`."""

    action: Name
    args: tuple[Arg, ...]
    span: Span

    def text(self) -> str:
        args = ", ".join(f"{a.name.text} = {value_text(a.value)}" for a in self.args)
        return f"call {self.action.text}({args})"

    @property
    def aims_at_member(self) -> bool:
        return False


@builds("call")
def _call(span: Span, children: list[Any]) -> Call:
    return Call(children[0], tuple(c for c in children[1:] if c is not None), span)


@dataclass(frozen=True, slots=True, eq=False)
class Dissolve(ActionNode):
    """`dissolve group`."""

    span: Span

    def text(self) -> str:
        return "dissolve group"

    @property
    def aims_at_member(self) -> bool:
        return False


@builds("dissolve")
def _dissolve(span: Span, children: list[Any]) -> Dissolve:
    return Dissolve(span)


@dataclass(frozen=True, slots=True, eq=False)
class Draw(ActionNode):
    """`draw 3 winners from members tagged "active" [stock 3 per week]`: a lucky draw among the
    group's members, with at most `stock` winners per `period` over all its runs, if given."""

    count: Number
    tags: tuple[Str, ...]
    stock: Number | None
    period: Name | None
    span: Span

    def text(self) -> str:
        tagged = f" tagged {strs_text(self.tags)}" if self.tags else ""
        stock = f" stock {self.stock.text} per {self.period.text}" if self.stock and self.period else ""
        return f"draw {self.count.text} winners from members{tagged}{stock}"

    @property
    def aims_at_member(self) -> bool:
        return False


@builds("draw")
def _draw(span: Span, children: list[Any]) -> Draw:
    stock, period = children[2] if children[2] is not None else (None, None)
    return Draw(children[0], tuple(children[1] or ()), stock, period, span)


@builds("draw_stock")
def _draw_stock(span: Span, children: list[Any]) -> tuple[Number, Name]:
    return (children[0], children[1])


# Every action node: the steps' union (`nodes.Step`) is this and the flow steps.
Action: TypeAlias = Send | TagStep | Kick | Grant | Invite | Add | SetStep | Call | Dissolve | Draw
