"""Lucky draws: the winners of a `draw` step, and the stock of winners a period may give."""

from __future__ import annotations

import hashlib
import random

from sopdsl import lang
from sopdsl.engine.actions import Action
from sopdsl.engine.parts import _Compiled
from sopdsl.engine.policy import period_key
from sopdsl.engine.state import Flow, GroupState
from sopdsl.engine.tasks import _Tasks
from sopdsl.plan import Instr


class _Drawing(_Tasks):
    """Lucky draws: the winners of a `draw` step, and the stock of winners a period may give."""

    __slots__ = ()  # the engine's state is in `_Parts`'s slots

    def _draw(
        self, flow: Flow, c: _Compiled, instr: Instr, step: lang.DrawStep, group: GroupState | None, key: str
    ) -> None:
        """A lucky draw among the group's members: one `draw` action per winner, decided now."""
        pool = sorted(
            m
            for m in (group.members if group is not None else ())
            if m in self.members and (not step.tags or not self.members[m].tags.isdisjoint(step.tags))
        )
        # Seeded by the run's seed and this draw's own key: the same seed draws the same winners
        # (a dry run is reproducible), and each draw (next week's has another key) is drawn afresh,
        # unlike a split, which keeps a member in one arm for good.
        digest = hashlib.sha256(f"{self.seed}:draw:{key}".encode()).digest()
        wanted = self._draw_stock(c, instr, step, key, flow) if step.stock is not None else step.count
        winners = random.Random(int.from_bytes(digest[:8], "big")).sample(pool, min(wanted, len(pool)))
        if step.stock is not None:
            self.delivery.stock_used[self._stock_key(c, instr, step)] += len(winners)
        for rank, winner in enumerate(winners, 1):
            detail = {
                "winners": winner,
                "rank": rank,
                "of": step.count,
                "pool": len(pool),
                "from": list(step.tags),
            }
            self._emit(
                Action(
                    self.now,
                    "draw",
                    c.playbook.name,
                    f"{key}:{rank}",
                    member=winner,
                    group=flow.group,
                    detail=detail,
                    loc=instr.loc,
                    trigger=flow.trigger,
                )
            )

    def _stock_key(self, c: _Compiled, instr: Instr, step: lang.DrawStep) -> str:
        """Where a draw's winners of this period are counted: beside the coupons' stock, so a
        snapshot and a journal replay keep them (the period in the plan's zone, one for all groups)."""
        assert step.period is not None
        return f"draw:{c.playbook.name}:{instr.loc}:{period_key(step.period, self.now, self.zone)}"

    def _draw_stock(self, c: _Compiled, instr: Instr, step: lang.DrawStep, key: str, flow: Flow) -> int:
        """How many winners a draw with a stock may give now; with none left, a dropped record says so."""
        assert step.stock is not None and step.period is not None
        counted = self._stock_key(c, instr, step)
        prefix = counted.rsplit(":", 1)[0] + ":"
        for old in [k for k in self.delivery.stock_used if k.startswith(prefix) and k != counted]:
            del self.delivery.stock_used[old]  # an earlier period's count is of no further use
        left = max(step.stock - self.delivery.stock_used.setdefault(counted, 0), 0)
        if left == 0:
            self._emit(
                Action(
                    self.now,
                    "draw",
                    c.playbook.name,
                    key,
                    group=flow.group,
                    target="group",
                    detail={"of": step.count, "from": list(step.tags)},
                    status="dropped",
                    reason=f"stock: {step.stock} winners per {step.period.value}, all drawn",
                    loc=instr.loc,
                    trigger=flow.trigger,
                )
            )
        return min(step.count, left)
