"""How long a live store keeps what is finished: `sopdsl run --keep-days N` purges once a day.

Input: the days to keep (None: keep everything, the default for a store) and the runtime's
clock readings at its loop turns. Output: whether a purge is due now (`Runtime.purge`: finished
outbox rows and the figures' per-member rows older than that). A Temporal shard prunes its own
figures when it hands its state on (`sopdsl.temporal.workflow`), by the same number of days.
"""

from __future__ import annotations

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
