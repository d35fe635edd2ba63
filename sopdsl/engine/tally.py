"""Counts of the events an engine takes in, by group and local day, for an observer (the dry
run's figures, `sopdsl.figures.collect`). Nothing the engine decides reads them.

The engine tells its tally (`Engine.tally`, None unless a collector attaches one) of each event
as it takes it in, from the loop that has just read the event's fields: counting then costs no
pass of its own over the events, which in the interpreter took about twice the instructions
(docs/performance.md, stop 22). A message costs a dict lookup, a count and a set insertion of the
engine's own member id (found by identity); joins, leaves and orders are counted as they come.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final
from zoneinfo import ZoneInfo

from sopdsl.plan import timeutil

_COUNTED: Final = frozenset(("join", "leave", "order"))  # the other events the figures count

# A group's day: posters, messages, joins, leaves, orders, buyers, amount.
DayCounts = tuple[int, int, int, int, int, int, Any]


def cents(amount: Any) -> Any:
    """A day's sum of order amounts as a figure: a float to the cent, since its last digits depend
    on the order it was added in (the live store sums a quarter-hour at a time, then the day), and
    the dry run's report and the live one must show the same sum; a whole sum as it is."""
    return round(amount, 2) if isinstance(amount, float) else amount


class Days:
    """Local days of instants, the last day's bounds cached (times mostly come in order)."""

    __slots__ = ("hi", "label", "lo", "tz")

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self.lo, self.hi, self.label = 1, 0, ""

    def of(self, time: int) -> str:
        """The local day `time` falls on (ISO date); its bounds become `lo` and `hi`."""
        if self.lo <= time < self.hi:
            return self.label
        tz = self.tz
        local = dt.datetime.fromtimestamp(time, tz)
        lo = time - (local.hour * 3600 + local.minute * 60 + local.second)
        hi = lo + 86400
        # A day with a clock change is not 24 hours long: its bounds are found the long way.
        if (
            dt.datetime.fromtimestamp(lo, tz).time() != dt.time()
            or dt.datetime.fromtimestamp(hi, tz).time() != dt.time()
        ):
            day = local.date()
            lo = timeutil.resolve(dt.datetime.combine(day, dt.time()), tz)
            hi = timeutil.resolve(dt.datetime.combine(day + dt.timedelta(days=1), dt.time()), tz)
        self.lo, self.hi, self.label = lo, hi, local.date().isoformat()
        return self.label


class Growth:
    """One group's joins, leaves and orders on the current event day."""

    __slots__ = ("amount", "buyers", "joins", "leaves", "orders")

    def __init__(self) -> None:
        self.joins = 0
        self.leaves = 0
        self.orders = 0
        self.buyers: set[str | None] = set()
        self.amount: Any = 0  # int or float, as the orders gave: a whole sum stays whole in the report


class Activity:
    """One group's messages and who posted them on the current event day."""

    __slots__ = ("messages", "posters")

    def __init__(self) -> None:
        self.messages = 0
        self.posters: set[str] = set()


class EventTally:
    """Counts the events from `first` on (those before it, history, are passed over until the
    first one at or after it), by group and local day in `tz`. `settled` holds the days that have
    ended, keyed by (group, day), a group-less event's group being `no_group`; `day_counts` gives
    the current day's."""

    __slots__ = ("days", "first", "no_group", "others", "posts", "running", "settled")

    def __init__(self, first: int, tz: ZoneInfo, no_group: str) -> None:
        self.first = first
        self.running = False  # whether an event at or after `first` has come
        self.days = Days(tz)
        self.no_group = no_group
        self.settled: dict[tuple[str, str], DayCounts] = {}
        # The current day's messages and their posters by group; its other counts by group.
        self.posts: dict[str | None, Activity] = {}
        self.others: dict[str | None, Growth] = {}

    def posted(self, group: str | None, member: str, now: int) -> None:
        """The engine took in a message of `member` in `group` at `now` (in time order)."""
        # The common case inline (the run has begun, the day goes on): a message pays no call.
        if not (self.running and now < self.days.hi) and not self._counts(now):
            return
        cell = self.posts.get(group)
        if cell is None:
            cell = self.posts[group] = Activity()
        cell.messages += 1
        cell.posters.add(member)

    def took(self, kind: str, group: str | None, member: str | None, data: dict[str, Any], now: int) -> None:
        """The engine took in an event of another `kind` than a message at `now` (in time order)."""
        if not self._counts(now) or kind not in _COUNTED:
            return
        cell = self.others.get(group)
        if cell is None:
            cell = self.others[group] = Growth()
        if kind == "join":
            cell.joins += 1
        elif kind == "leave":
            cell.leaves += 1
        else:
            cell.orders += 1
            cell.buyers.add(member)
            amount = data.get("amount", 0)
            if isinstance(amount, (int, float)) and not isinstance(amount, bool):
                cell.amount += amount

    def _counts(self, now: int) -> bool:
        """Whether an event at `now` is counted (from `first` on); the day of `now` is begun if it
        is a later one."""
        if not self.running:
            if now < self.first:
                return False
            self.running = True
        if now >= self.days.hi:
            self._next_day(now)
        return True

    def _next_day(self, time: int) -> None:
        """Settle the current day's counts and start the day of `time` (never earlier than the last)."""
        if self.posts or self.others:
            self.settled.update(self.day_counts())
            self.posts.clear()
            self.others.clear()
        self.days.of(time)

    def day_counts(self) -> dict[tuple[str, str], DayCounts]:
        """The current day's counts by (group, day), nothing forgotten (asked before the day ends too)."""
        cells: dict[str | None, DayCounts] = {}
        for group, activity in self.posts.items():
            cells[group] = (len(activity.posters), activity.messages, 0, 0, 0, 0, 0)
        for group, c in self.others.items():
            posted, messages = (cells[group][0], cells[group][1]) if group in cells else (0, 0)
            cells[group] = (posted, messages, c.joins, c.leaves, c.orders, len(c.buyers), cents(c.amount))
        day, no_group = self.days.label, self.no_group
        return {(group or no_group, day): cell for group, cell in cells.items()}
