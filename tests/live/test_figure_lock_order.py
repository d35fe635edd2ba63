"""Two workers finishing sends of the same shards must write the figures' rows in one order, or
each can hold a row the other waits for: PostgreSQL then aborts one of them (a deadlock, seen in CI
with four workers). So an outcome's figures are written by shard, and by key within a shard."""

from __future__ import annotations

from typing import Any

from sopdsl.live import store_figures
from sopdsl.live.store import DONE, OutboxRow


class Recording:
    """A cursor that keeps the figure rows written through it, in order."""

    def __init__(self) -> None:
        self.written: list[tuple[str, tuple[Any, ...]]] = []
        self.rowcount = 1

    def execute(self, statement: str, params: Any = ()) -> None:
        return None

    def executemany(self, statement: str, rows: list[tuple[Any, ...]]) -> None:
        for table in ("sopdsl_figures ", "sopdsl_figure_members "):
            if table in statement:
                self.written.extend((table, row) for row in rows)


def sends(shards: list[str]) -> list[OutboxRow]:
    """A done send to a member in each of `shards`, in that order."""
    return [
        OutboxRow(
            shard,
            f"k{i}",
            f"o{i}",
            "send",
            {"kind": "send", "target": "member", "member": f"m{i}", "group": f"g{i % 2}", "time": 0},
            status=DONE,
            id=i,
        )
        for i, shard in enumerate(shards)
    ]


def written(rows: list[OutboxRow], *, one_at_a_time: bool) -> list[tuple[str, tuple[Any, ...]]]:
    cur = Recording()
    if one_at_a_time:
        store_figures.record_done(cur, lambda s: s, "UPDATE sopdsl_outbox", rows)  # type: ignore[arg-type]
    else:
        store_figures.record_changed(cur, lambda s: s, rows)  # type: ignore[arg-type]
    return cur.written


def test_figures_of_finished_rows_are_written_in_one_order_whatever_order_they_finished_in() -> None:
    forward = sends(["s1", "s2", "s3", "s1"])
    for one_at_a_time in (False, True):
        first = written(forward, one_at_a_time=one_at_a_time)
        second = written(forward[::-1], one_at_a_time=one_at_a_time)
        for table in ("sopdsl_figures ", "sopdsl_figure_members "):
            assert [row[0] for t, row in first if t == table] == ["s1", "s1", "s2", "s3"]
        assert first == second
