"""The dry run's per-day event counts, a block of one day's events at a time (see `collect`).

Left to the interpreter on purpose (not in pyproject's mypyc list): an event is a msgspec struct,
whose fields compiled code reads through the generic attribute lookup (about 185 instructions a
field), where the interpreter's attribute loads specialize to a slot read. This loop reads three
fields an event and does little else, so it runs faster here than compiled.
"""

from __future__ import annotations

from typing import Any

from sopdsl.engine.events import Event

_NUMBER = (int, float)  # a constant: `int | float` in `isinstance` builds a union at each order
_COUNTED = frozenset({"join", "leave", "order"})  # the other events the figures count


class Growth:
    """One group's joins, leaves and orders on the current event day."""

    __slots__ = ("amount", "buyers", "joins", "leaves", "orders")

    def __init__(self) -> None:
        self.joins = self.leaves = self.orders = 0
        self.buyers: set[str | None] = set()
        self.amount: Any = 0  # int or float, as the orders gave: a whole sum stays whole in the report


def count_day(
    events: list[Event], posts: dict[str | None, list[str | None]], others: dict[str | None, Growth]
) -> None:
    """Count one day's events: each message's poster into `posts` (group → who posted, in order),
    joins, leaves and orders into `others` (group → its counts)."""
    for event in events:
        kind = event.kind
        if kind == "message":
            try:
                posts[event.group].append(event.member)
            except KeyError:
                posts[event.group] = [event.member]
            continue
        if kind not in _COUNTED:
            continue
        cell = others.get(event.group)
        if cell is None:
            cell = others[event.group] = Growth()
        if kind == "join":
            cell.joins += 1
        elif kind == "leave":
            cell.leaves += 1
        else:
            cell.orders += 1
            cell.buyers.add(event.member)
            amount = event.data.get("amount", 0)
            if isinstance(amount, _NUMBER) and not isinstance(amount, bool):
                cell.amount += amount
