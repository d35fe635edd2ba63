"""The checked language's actions: what a step does to a member or a group (send, tag, kick, grant...).

Shared by the checked model (as steps) and the plan (as what an `act` instruction does), so an
action kind is written once. Annotations are resolved by pydantic in this module's namespace.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeAlias

from pydantic import Field

from sopdsl.enums import ValueType
from sopdsl.lang.base import Model
from sopdsl.lang.conditions import Calc, Literal_, Ref
from sopdsl.lang.declarations import CapPeriod

__all__ = [
    "Action",
    "ActionTypes",
    "AddStep",
    "CallStep",
    "CouponField",
    "DissolveStep",
    "DrawStep",
    "GrantStep",
    "InviteStep",
    "KickStep",
    "SendStep",
    "SetStep",
    "TagStep",
    "Target",
]

# `owner`: the contact's owner (跟进人), whom an `assign` about a contact goes to.
Target: TypeAlias = Literal["member", "group", "operator", "referrer", "owner"]


class SendStep(Model):
    """Send a template to a target, optionally on a capped channel such as `mass`."""

    kind: Literal["send"] = "send"
    template: str
    target: Target
    channel: str | None = None
    loc: str


class TagStep(Model):
    """Add or remove tags on the member or group."""

    kind: Literal["tag"] = "tag"
    target: Target
    tags: tuple[str, ...]
    remove: bool = False
    loc: str


class KickStep(Model):
    """Remove the member from the group."""

    kind: Literal["kick"] = "kick"
    target: Target
    reason: str | None = None
    loc: str


class GrantStep(Model):
    """Grant a declared coupon."""

    kind: Literal["grant"] = "grant"
    coupon: str
    target: Target
    loc: str


class InviteStep(Model):
    """Invite the member to a group."""

    kind: Literal["invite"] = "invite"
    target: Target
    group: str
    loc: str


class AddStep(Model):
    """Add to a member counter (negative amounts subtract)."""

    kind: Literal["add"] = "add"
    root: Literal["member", "referrer"]
    counter: str
    amount: float
    loc: str


class CouponField(Model):
    """`coupon.expires_at` where a `set` reads it: a field of the coupon the flow granted last
    (the checker allows it only after a grant on every path); `expires_at` is read as its day."""

    kind: Literal["coupon"] = "coupon"
    field: str
    type: ValueType


class SetStep(Model):
    """Set a member attribute or counter to a literal, another reference's value, arithmetic or
    a field of the coupon the flow granted (`set member.streak = 0` resets a counter; the engine
    knows a counter's name)."""

    kind: Literal["set"] = "set"
    root: Literal["member", "referrer"]
    attribute: str
    value: Ref | Literal_ | Calc | CouponField
    loc: str


class CallStep(Model):
    """Call a custom action with typed arguments."""

    kind: Literal["call"] = "call"
    action: str
    args: dict[str, Ref | Literal_ | Calc]
    loc: str


class DissolveStep(Model):
    """Dissolve the group (flash groups)."""

    kind: Literal["dissolve"] = "dissolve"
    loc: str


class DrawStep(Model):
    """Draw `count` winners among the group's members (those with any of `tags`, if given); with
    a `stock`, at most that many winners per calendar `period` (day, week, month) over every run
    of this step, in every group: the prizes there are."""

    kind: Literal["draw"] = "draw"
    count: int
    tags: tuple[str, ...] = ()
    # Left out of the plan's JSON when unset, so plans compiled before draws had a stock keep
    # their content hash (a store names its plans by it).
    stock: int | None = Field(default=None, exclude_if=lambda value: value is None)
    period: CapPeriod | None = Field(default=None, exclude_if=lambda value: value is None)
    loc: str


# Every action; the model's steps are these and the flow steps (`checker.model.Step`).
ActionTypes: TypeAlias = (
    SendStep
    | TagStep
    | KickStep
    | GrantStep
    | InviteStep
    | AddStep
    | SetStep
    | CallStep
    | DissolveStep
    | DrawStep
)
Action: TypeAlias = Annotated[ActionTypes, Field(discriminator="kind")]
