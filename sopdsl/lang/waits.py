"""The checked language's waits: what a `wait … for` waits for, and how long.

Shared by the checked model (`WaitForStep.wait`) and the plan (the `wait_for` instruction's
`wait`), so an option of a wait is written once, here, and reaches the engine as it is.
"""

from __future__ import annotations

from pydantic import Field

from sopdsl.lang.base import Duration, Model
from sopdsl.lang.triggers import EventPattern

__all__ = ["EventWait"]


class EventWait(Model):
    """`wait TIMEOUT for PATTERN`: the member's event that ends the wait, and how long at most."""

    pattern: EventPattern
    timeout: Duration
    # (awaited event's field, flow's event's field) pairs that must be equal (`where event.team ==
    # flow.team`): the flow's own event only, so two teams a member opened never end each other's.
    # Left out of the plan's JSON when empty: a plain wait is written (and hashed) as before.
    same: tuple[tuple[str, str], ...] = Field(default=(), exclude_if=lambda value: not value)
