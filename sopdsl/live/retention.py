"""How long a live store keeps what is finished: `sopdsl run --keep-days N` purges once a day;
and the runtime's parked actions, looked at and sent again (`Keeping`, a part of `Runtime`).

Input: the days to keep (None: keep everything, the default for a store) and the runtime's
clock readings at its loop turns. Output: whether a purge is due now (`Runtime.purge`: finished
outbox rows and the figures' per-member rows older than that). A Temporal shard prunes its own
figures when it hands its state on (`sopdsl.temporal.workflow`), by the same number of days.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod

from sopdsl.live.clock import Clock
from sopdsl.live.closing import refuse_if_closed
from sopdsl.live.store import PARKED, OutboxRow, Store
from sopdsl.plan import Plan

log = logging.getLogger("sopdsl.runtime")

DAY = 86400
TEMPORAL_DAYS = 30.0  # a Temporal shard's default: its state crosses continue-as-new, so it must stay small


class Retention:
    """When the next purge is due: at the first loop turn, then a day after the last one."""

    __slots__ = ("days", "next_at")

    def __init__(self, days: float | None) -> None:
        if days is not None and days <= 0:
            raise ValueError(f"days to keep must be more than 0, not {days}")
        self.days = days
        self.next_at: int | None = None  # clock time of the next purge (None: at the next turn)

    def due(self, now: int) -> bool:
        """True if a purge is due at `now` (the caller purges); the next is then a day later."""
        if self.days is None or (self.next_at is not None and now < self.next_at):
            return False
        self.next_at = now + DAY
        return True


class Keeping(ABC):
    """`parked`, `requeue`, `purge` and `housekeep` of `sopdsl.live.runtime.Runtime`."""

    clock: Clock
    plan: Plan
    shard: str
    store: Store
    closed: bool
    retention: Retention

    @abstractmethod
    def _woken(self, stored: bool = True) -> None: ...

    def parked(self, shard: str | None = None) -> list[OutboxRow]:
        """Actions given up on after their retries, with the last error: for a person to look at
        (of one shard, or all)."""
        return self.store.outbox(shard, PARKED)

    def requeue(self, key: str, shard: str | None = None) -> bool:
        """Send a parked action again (once its cause is fixed), with fresh retries; False if it is not parked."""
        refuse_if_closed(self.closed, self.store.url)
        queued = self.store.requeue(shard or self.shard, key, self.clock.now())
        self._woken()
        return queued

    def purge(self, days: float = 30) -> int:
        """Delete outbox rows finished more than `days` ago (parked ones stay), with the live
        figures' member rows no report of the days since reads; how many outbox rows went."""
        from sopdsl.figures.goals import longest_reach

        before = self.clock.now() - int(days * DAY)
        return self.store.purge(before, before - longest_reach(self.plan))

    def housekeep(self, moment: int) -> None:
        """Purge what `keep_days` no longer keeps, once a day (the first time at the first call)."""
        days = self.retention.days
        if days is not None and self.retention.due(moment):
            gone = self.purge(days)
            log.info("sopdsl runtime: purged %d finished action(s) older than %g day(s)", gone, days)
