"""Clocks for the live runtime: the wall clock, and a manual one that tests and replays move by hand.

The engine reads no clock; the runtime asks its clock what time it is and advances the engine
to it, so swapping the clock is all that separates a live run from a controlled one.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Where the runtime gets the time (epoch seconds) and how it waits."""

    def now(self) -> int:
        """The current time in whole epoch seconds."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait this long (a manual clock moves itself forward instead)."""
        ...


class RealClock:
    """The wall clock."""

    def now(self) -> int:
        """The current time in whole epoch seconds."""
        return int(time.time())

    def sleep(self, seconds: float) -> None:
        """Sleep for real."""
        time.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that only moves when told to: `set`, `advance`, or `sleep` (which advances it)."""

    def __init__(self, start: int) -> None:
        self._now = int(start)
        self._lock = threading.Lock()

    def now(self) -> int:
        """The time it was last set to."""
        return self._now

    def set(self, moment: int) -> None:
        """Move to `moment`; a clock never runs backwards, so an earlier moment is ignored."""
        with self._lock:
            self._now = max(self._now, int(moment))

    def advance(self, seconds: float) -> None:
        """Move forward by `seconds` (rounded up to whole seconds)."""
        with self._lock:
            self._now += max(0, math.ceil(seconds))

    def sleep(self, seconds: float) -> None:
        """Sleeping on a manual clock is advancing it."""
        self.advance(seconds)
