"""Reading a SQL store's live figures back (`store_figures.py` says how they are kept): the
figures of a range of engine times, for `GET /report`, and the span of times that hold any."""

from __future__ import annotations

from collections.abc import Callable

from sopdsl.live.store_figures import Cursor, Found, slots, span_of

SUMS = (
    "SELECT grp, slot, figure, value FROM sopdsl_figures WHERE shard = ? AND slot >= ? AND slot < ? "
    "ORDER BY grp, slot, figure"
)
MEMBERS = (
    "SELECT grp, slot, figure, member FROM sopdsl_figure_members WHERE shard = ? AND slot >= ? AND slot < ? "
    "ORDER BY grp, slot, figure, member"
)

PLAYBOOK_SUMS = (
    "SELECT playbook, slot, figure, value FROM sopdsl_playbook_figures "
    "WHERE shard = ? AND slot >= ? AND slot < ? ORDER BY playbook, slot, figure"
)
ARMS = (
    "SELECT playbook, member, arm, moment FROM sopdsl_figure_arms WHERE shard = ? AND moment < ? "
    "ORDER BY playbook, member"
)
TOUCHES = (
    "SELECT playbook, member, moment, arm FROM sopdsl_figure_touches WHERE shard = ? AND moment < ? "
    "ORDER BY moment, playbook, member, arm"
)
GOALS = (
    "SELECT member, moment, met, events, amount FROM sopdsl_figure_goals WHERE shard = ? AND moment < ? "
    "ORDER BY moment, member, met"
)


# Over both tables: a shard whose playbooks acted in days no group counted (private chats) has figures too.
SPAN = (
    "SELECT MIN(slot), MAX(slot) FROM (SELECT slot FROM sopdsl_figures WHERE shard = ? "
    "UNION ALL SELECT slot FROM sopdsl_playbook_figures WHERE shard = ?) AS kept"
)


def read_span(cur: Cursor, sql: Callable[[str], str], shard: str) -> tuple[int, int] | None:
    """A SQL store's `Store.figures_span`."""
    cur.execute(sql(SPAN), (shard, shard))
    low, high = cur.fetchall()[0]
    return None if low is None else span_of((int(low), int(high)))


def read(cur: Cursor, sql: Callable[[str], str], shard: str, lo: int, hi: int) -> Found:
    """A SQL store's figures of engine times [lo, hi)."""
    first, last = slots(lo, hi)
    cur.execute(sql(SUMS), (shard, first, last))
    sums = [(str(g), int(s), str(f), float(v)) for g, s, f, v in cur.fetchall()]
    cur.execute(sql(MEMBERS), (shard, first, last))
    seen = [(str(g), int(s), str(f), str(m)) for g, s, f, m in cur.fetchall()]
    cur.execute(sql(PLAYBOOK_SUMS), (shard, first, last))
    playbooks = [(str(p), int(s), str(f), float(v)) for p, s, f, v in cur.fetchall()]
    cur.execute(sql(ARMS), (shard, hi))
    arms = [(str(p), str(m), str(a), int(t)) for p, m, a, t in cur.fetchall()]
    cur.execute(sql(TOUCHES), (shard, hi))
    touches = [(str(p), str(m), int(t), str(a)) for p, m, t, a in cur.fetchall()]
    cur.execute(sql(GOALS), (shard, hi))
    goals = [(str(m), int(t), str(met), int(n), float(a)) for m, t, met, n, a in cur.fetchall()]
    # Sorted here, not by the database: PostgreSQL's collation may order text otherwise.
    return Found(sums, seen, sorted(playbooks), sorted(arms), sorted(touches), sorted(goals))
