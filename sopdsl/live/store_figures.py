"""Live figures as the stores keep them: what an event or an executor's success adds, and the
SQL the SQLite and PostgreSQL stores run for it (the memory store keeps the same in dicts).

A figure is kept per shard, group and 15-minute slot of engine time (`SLOT`), never per local
day: a day is a run of slots in whatever zone a report asks for (every zone's offset is a whole
number of quarter hours), so the store needs no zone. Sums (messages, joins, leaves, removed,
orders, amount, deliveries) are added up; distinct members (posters, buyers, reached) are kept
as (slot, member) rows and counted at query time. Event figures are written in the transaction
that journals the event, once per journaled event; reach in the transaction that records a done
send, once per outbox row (its idempotency key).

The tables are created if missing on every open (`SCHEMA`), apart from the numbered migrations:
they only add, and a store without them is one that has counted nothing yet.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

SLOT = 900  # seconds: the finest step of any zone's UTC offset
NO_GROUP = "-"

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS sopdsl_figures (
        shard TEXT NOT NULL, grp TEXT NOT NULL, slot BIGINT NOT NULL, figure TEXT NOT NULL,
        value DOUBLE PRECISION NOT NULL, PRIMARY KEY (shard, grp, slot, figure))""",
    """CREATE TABLE IF NOT EXISTS sopdsl_figure_members (
        shard TEXT NOT NULL, grp TEXT NOT NULL, slot BIGINT NOT NULL, figure TEXT NOT NULL,
        member TEXT NOT NULL, PRIMARY KEY (shard, grp, slot, figure, member))""",
)

ADD = (
    "INSERT INTO sopdsl_figures (shard, grp, slot, figure, value) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (shard, grp, slot, figure) DO UPDATE SET value = sopdsl_figures.value + excluded.value"
)
NOTE = (
    "INSERT INTO sopdsl_figure_members (shard, grp, slot, figure, member) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (shard, grp, slot, figure, member) DO NOTHING"
)
SUMS = (
    "SELECT grp, slot, figure, value FROM sopdsl_figures WHERE shard = ? AND slot >= ? AND slot < ? "
    "ORDER BY grp, slot, figure"
)
MEMBERS = (
    "SELECT grp, slot, figure, member FROM sopdsl_figure_members WHERE shard = ? AND slot >= ? AND slot < ? "
    "ORDER BY grp, slot, figure, member"
)

Sum = tuple[str, int, str, float]  # group, slot, figure, amount
Seen = tuple[str, int, str, str]  # group, slot, figure, member
Found = tuple[list[Sum], list[Seen]]


class _Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Any: ...

    def executemany(self, sql: str, params: Sequence[Sequence[Any]], /) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    @property
    def rowcount(self) -> int: ...


class Tally:
    """What a transaction adds to the figures: sums, and members seen."""

    __slots__ = ("seen", "sums")

    def __init__(self) -> None:
        self.sums: dict[tuple[str, int, str], float] = defaultdict(float)
        self.seen: set[Seen] = set()

    def __bool__(self) -> bool:
        return bool(self.sums or self.seen)

    def rows(self, shard: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """The parameters of `ADD` and of `NOTE` for a shard."""
        return (
            [(shard, g, s, f, v) for (g, s, f), v in sorted(self.sums.items())],
            [(shard, *seen) for seen in sorted(self.seen)],
        )

    def events(self, bodies: Iterable[dict[str, Any]]) -> Tally:
        """Count journal entries' events (other entries add nothing)."""
        for body in bodies:
            if body.get("op") != "event":
                continue
            kind, member = body.get("kind"), body.get("member")
            where = (str(body.get("group") or NO_GROUP), int(body.get("time") or 0) // SLOT)
            if kind == "message":
                self.sums[(*where, "messages")] += 1
                if member:
                    self.seen.add((*where, "posters", str(member)))
            elif kind == "join":
                self.sums[(*where, "joins")] += 1
            elif kind == "leave":
                self.sums[(*where, "leaves")] += 1
            elif kind == "order":
                self.sums[(*where, "orders")] += 1
                if member:
                    self.seen.add((*where, "buyers", str(member)))
                amount = (body.get("data") or {}).get("amount", 0)
                if isinstance(amount, int | float) and not isinstance(amount, bool) and amount:
                    self.sums[(*where, "amount")] += amount
        return self

    def done(self, action: dict[str, Any]) -> Tally:
        """Count an action an executor has carried out (its outbox row just became done): a send to
        members or the group is a delivery, reaching the member it names; a kick removes one."""
        kind, target = action.get("kind"), action.get("target")
        where = (str(action.get("group") or NO_GROUP), int(action.get("time") or 0) // SLOT)
        if kind == "send" and target != "operator":
            self.sums[(*where, "deliveries")] += 1
            member = action.get("member")
            if member and target in ("member", "referrer"):
                self.seen.add((*where, "reached", str(member)))
        elif kind == "kick":
            self.sums[(*where, "removed")] += 1
        return self


def counts(status: str, kind: str) -> bool:
    """Whether an outbox row's outcome counts in the figures (a send or a kick done)."""
    return status == "done" and kind in ("send", "kick")


def record_done(cur: _Cursor, sql: Callable[[str], str], update: str, rows: Sequence[Any]) -> None:
    """Record outbox rows that count (`counts`) with the store's `update` statement, one at a time,
    and count each only if this transaction is the one that made it done: once per idempotency key."""
    tallies: dict[str, Tally] = {}
    for r in rows:
        cur.execute(update, (r.status, r.attempts, r.failures, r.next_at, r.error, r.id))
        if cur.rowcount == 1:
            tallies.setdefault(r.shard, Tally()).done(r.action)
    for shard, tally in tallies.items():
        write(cur, sql, shard, tally)


def record_changed(cur: _Cursor, sql: Callable[[str], str], rows: Sequence[Any]) -> None:
    """Count outbox rows already made done by this transaction (as `record_done` does after its updates)."""
    tallies: dict[str, Tally] = {}
    for r in rows:
        tallies.setdefault(r.shard, Tally()).done(r.action)
    for shard, tally in tallies.items():
        write(cur, sql, shard, tally)


def slots(lo: int, hi: int) -> tuple[int, int]:
    """The slots of engine times [lo, hi)."""
    return lo // SLOT, -(-hi // SLOT)


def write(cur: _Cursor, sql: Callable[[str], str], shard: str, tally: Tally) -> None:
    """Add a tally to a SQL store's figures, in the transaction of `cur` (`sql`: the dialect's
    parameter style)."""
    if not tally:
        return
    sums, seen = tally.rows(shard)
    if sums:
        cur.executemany(sql(ADD), sums)
    if seen:
        cur.executemany(sql(NOTE), seen)


def read(cur: _Cursor, sql: Callable[[str], str], shard: str, lo: int, hi: int) -> Found:
    """A SQL store's figures of engine times [lo, hi)."""
    first, last = slots(lo, hi)
    cur.execute(sql(SUMS), (shard, first, last))
    sums = [(str(g), int(s), str(f), float(v)) for g, s, f, v in cur.fetchall()]
    cur.execute(sql(MEMBERS), (shard, first, last))
    seen = [(str(g), int(s), str(f), str(m)) for g, s, f, m in cur.fetchall()]
    return sums, seen
