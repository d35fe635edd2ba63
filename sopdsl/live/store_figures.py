"""Live figures as the stores keep them: what an event or an executor's success adds, and the
SQL the SQLite and PostgreSQL stores run for it (the memory store keeps the same in dicts).

A figure is kept per shard, group and 15-minute slot of engine time (`SLOT`), never per local
day: a day is a run of slots in whatever zone a report asks for (every zone's offset is a whole
number of quarter hours), so the store needs no zone. Sums (messages, joins, leaves, removed,
orders, amount, deliveries) are added up; distinct members (posters, buyers, reached) are kept
as (slot, member) rows and counted at query time. Event figures are written in the transaction
that journals the event, once per journaled event; reach in the transaction that records a done
send, once per outbox row (its idempotency key).

Per playbook (`PlaybookTally`), counted in the transaction that applies the entries whose
engine decisions they are (`Batch.figures`), once per applied entry however often the journal is
replayed: flows started and completed (by the slot the flow started in), actions by kind and
status (by the action's slot); and the facts goal conversions and experiments are worked out from
when a report is asked for (`sopdsl.figures.stored`): each member's arm (the first assignment),
the touches of playbooks with goals or arms (a send the engine decided to make, reaching the
member it names or everyone in the group then, as the dry run counts it), and the events that met
goals (how many, and their amount, per member, instant and set of goals met).

Reading them back is `store_figures_read.py`. The tables are created if missing on every open
(`SCHEMA`), apart from the numbered migrations: they only add, and a store without them is one
that has counted nothing yet.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple, Protocol
from zoneinfo import ZoneInfo

from sopdsl.live.long_ids import bounded
from sopdsl.plan import timeutil

SLOT = 900  # seconds: the finest step of any zone's UTC offset
NO_GROUP = "-"

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS sopdsl_figures (
        shard TEXT NOT NULL, grp TEXT NOT NULL, slot BIGINT NOT NULL, figure TEXT NOT NULL,
        value DOUBLE PRECISION NOT NULL, PRIMARY KEY (shard, grp, slot, figure))""",
    """CREATE TABLE IF NOT EXISTS sopdsl_figure_members (
        shard TEXT NOT NULL, grp TEXT NOT NULL, slot BIGINT NOT NULL, figure TEXT NOT NULL,
        member TEXT NOT NULL, PRIMARY KEY (shard, grp, slot, figure, member))""",
    """CREATE TABLE IF NOT EXISTS sopdsl_playbook_figures (
        shard TEXT NOT NULL, playbook TEXT NOT NULL, slot BIGINT NOT NULL, figure TEXT NOT NULL,
        value DOUBLE PRECISION NOT NULL, PRIMARY KEY (shard, playbook, slot, figure))""",
    """CREATE TABLE IF NOT EXISTS sopdsl_figure_arms (
        shard TEXT NOT NULL, playbook TEXT NOT NULL, member TEXT NOT NULL, arm TEXT NOT NULL,
        moment BIGINT NOT NULL, PRIMARY KEY (shard, playbook, member))""",
    """CREATE TABLE IF NOT EXISTS sopdsl_figure_touches (
        shard TEXT NOT NULL, playbook TEXT NOT NULL, member TEXT NOT NULL, moment BIGINT NOT NULL,
        arm TEXT NOT NULL, PRIMARY KEY (shard, playbook, member, moment, arm))""",
    """CREATE TABLE IF NOT EXISTS sopdsl_figure_goals (
        shard TEXT NOT NULL, member TEXT NOT NULL, moment BIGINT NOT NULL, met TEXT NOT NULL,
        events BIGINT NOT NULL, amount DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (shard, member, moment, met))""",
)


class Insert(NamedTuple):
    """One of the figures' INSERTs: its table, columns and ON CONFLICT clause (a store runs it its
    own way for many rows: `Many`)."""

    table: str
    columns: tuple[str, ...]
    tail: str

    def statement(self) -> str:
        """The statement for one row, with `?` marks."""
        marks = ", ".join("?" * len(self.columns))
        return f"INSERT INTO {self.table} ({', '.join(self.columns)}) VALUES ({marks}){self.tail}"


ADD = Insert(
    "sopdsl_figures",
    ("shard", "grp", "slot", "figure", "value"),
    " ON CONFLICT (shard, grp, slot, figure) DO UPDATE SET value = sopdsl_figures.value + excluded.value",
)
NOTE = Insert(
    "sopdsl_figure_members",
    ("shard", "grp", "slot", "figure", "member"),
    " ON CONFLICT (shard, grp, slot, figure, member) DO NOTHING",
)

PLAYBOOK_ADD = Insert(
    "sopdsl_playbook_figures",
    ("shard", "playbook", "slot", "figure", "value"),
    " ON CONFLICT (shard, playbook, slot, figure) DO UPDATE SET value = "
    "sopdsl_playbook_figures.value + excluded.value",
)
ARM_NOTE = Insert(
    "sopdsl_figure_arms",
    ("shard", "playbook", "member", "arm", "moment"),
    " ON CONFLICT (shard, playbook, member) DO NOTHING",
)
TOUCH_NOTE = Insert(
    "sopdsl_figure_touches",
    ("shard", "playbook", "member", "moment", "arm"),
    " ON CONFLICT (shard, playbook, member, moment, arm) DO NOTHING",
)
GOAL_ADD = Insert(
    "sopdsl_figure_goals",
    ("shard", "member", "moment", "met", "events", "amount"),
    " ON CONFLICT (shard, member, moment, met) DO UPDATE SET events = "
    "sopdsl_figure_goals.events + excluded.events, amount = sopdsl_figure_goals.amount + "
    "excluded.amount",
)

Sum = tuple[str, int, str, float]  # group, slot, figure, amount
Seen = tuple[str, int, str, str]  # group, slot, figure, member
PlaybookSum = tuple[str, int, str, float]  # playbook, slot, figure (see `PlaybookTally`), amount
Arm = tuple[str, str, str, int]  # playbook, member, arm, when assigned
Touch = tuple[str, str, int, str]  # playbook, member, when, arm ("": none)
GoalHit = tuple[str, int, str, int, float]  # member, when, goals met (`met_key`), events, amount
GOAL_SEP = "\x1f"  # between a goal's playbook and name, and between goals, in `met_key`


class Found(NamedTuple):
    """A store's live figures: per group of engine times [lo, hi) (sums, members seen) and per
    playbook (sums of [lo, hi); the goal and experiment facts before hi)."""

    sums: list[Sum]
    seen: list[Seen]
    playbooks: list[PlaybookSum] = []
    arms: list[Arm] = []
    touches: list[Touch] = []
    goals: list[GoalHit] = []


def slots(lo: int, hi: int) -> tuple[int, int]:
    """The slots of engine times [lo, hi)."""
    return lo // SLOT, -(-hi // SLOT)


def span_of(found_slots: Iterable[int]) -> tuple[int, int] | None:
    """Engine times from the start of the first slot to the end of the last; None for no slot."""
    kept = list(found_slots)
    return (min(kept) * SLOT, (max(kept) + 1) * SLOT) if kept else None


def met_key(met: Iterable[tuple[str, str]]) -> str:
    """The goals an event met, (playbook, goal) each, as one text."""
    return GOAL_SEP.join(f"{playbook}{GOAL_SEP}{goal}" for playbook, goal in met)


def met_of(key: str) -> list[tuple[str, str]]:
    """`met_key`'s goals back."""
    parts = key.split(GOAL_SEP)
    return list(zip(parts[::2], parts[1::2], strict=True))


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Any: ...

    def executemany(self, sql: str, params: Sequence[Sequence[Any]], /) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    @property
    def rowcount(self) -> int: ...


Many = Callable[[Any, Insert, list[tuple[Any, ...]]], None]
"""Runs one of the INSERTs above for many rows, a store's own way (its `_insert`; PostgreSQL's is
one statement over arrays); by default the cursor's `executemany`."""


def _runner(sql: Callable[[str], str], many: Many | None) -> Many:
    if many is not None:
        return many
    return lambda cur, insert, rows: cur.executemany(sql(insert.statement()), rows)


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
        # Bounded ids: one journaled before ids were limited overflowed PostgreSQL's index of a figure.
        return (
            [(shard, bounded(g), s, f, v) for (g, s, f), v in sorted(self.sums.items())],
            [(shard, bounded(g), s, f, bounded(m)) for g, s, f, m in sorted(self.seen)],
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


class PlaybookTally:
    """What applying entries adds to the per-playbook figures: sums by (playbook, slot, figure),
    where a figure is `flows:started`, `flows:completed` or `actions:KIND:STATUS`; members'
    arms (the first assignment kept); touches; events that met goals."""

    __slots__ = ("arms", "goals", "sums", "touches")

    def __init__(self) -> None:
        self.sums: dict[tuple[str, int, str], float] = defaultdict(float)
        self.arms: dict[tuple[str, str], tuple[str, int]] = {}
        self.touches: set[Touch] = set()
        self.goals: dict[tuple[str, int, str], list[float]] = {}  # (member, when, met) → [events, amount]

    def __bool__(self) -> bool:
        return bool(self.sums or self.arms or self.touches or self.goals)

    def hit(self, member: str, time: int, met: str, amount: Any) -> None:
        """An event of `member` at `time` met the goals `met` (`met_key`)."""
        found = self.goals.setdefault((member, time, met), [0, 0.0])
        found[0] += 1
        if isinstance(amount, int | float) and not isinstance(amount, bool):
            found[1] += amount


class PlaybookFacts(PlaybookTally):
    """A shard's per-playbook figures kept in memory, as the SQL tables keep them (the memory
    store's, a Temporal shard's): the tallies of every entry applied, added up."""

    __slots__ = ()

    def add(self, tally: PlaybookTally | None) -> None:
        """Count what applying entries added (as `write_playbooks` does in a SQL store)."""
        if not tally:
            return
        for key, value in tally.sums.items():
            self.sums[key] += value
        for who, arm in tally.arms.items():
            self.arms.setdefault(who, arm)
        self.touches.update(tally.touches)
        for hit, (events, amount) in tally.goals.items():
            found = self.goals.setdefault(hit, [0, 0.0])
            found[0] += int(events)
            found[1] += amount

    def found(self, lo: int, hi: int) -> Found:
        """The figures of engine times [lo, hi), as a SQL store's `read` gives them (no per-group rows)."""
        first, last = slots(lo, hi)
        return Found(
            [],
            [],
            sorted((p, s, f, v) for (p, s, f), v in self.sums.items() if first <= s < last),
            sorted((p, m, a, t) for (p, m), (a, t) in self.arms.items() if t < hi),
            sorted(t for t in self.touches if t[2] < hi),
            sorted((m, t, met, int(n), a) for (m, t, met), (n, a) in self.goals.items() if t < hi),
        )

    def prune(self, before: int, touches_before: int | None) -> None:
        """Forget what `prunes` deletes from a SQL store."""
        self.goals = {key: hit for key, hit in self.goals.items() if key[1] >= before}
        if touches_before is not None:
            self.touches = {touch for touch in self.touches if touch[2] >= touches_before}

    def merge_days(self, before: int, tz: ZoneInfo) -> None:
        """Merge the sums of the slots before `before` into their local day's first slot in `tz`:
        a long-lived shard then keeps one row a playbook, figure and day of its past, and a report
        of whole days in `tz` reads the same sums."""
        first = before // SLOT
        starts: dict[int, int] = {}  # slot → its day's first slot
        merged: defaultdict[tuple[str, int, str], float] = defaultdict(float)
        for (playbook, slot, figure), value in self.sums.items():
            if slot < first:
                start = starts.get(slot)
                if start is None:
                    day = dt.datetime.fromtimestamp(slot * SLOT, tz).date()
                    start = starts[slot] = timeutil.resolve(dt.datetime.combine(day, dt.time()), tz) // SLOT
                slot = start
            merged[(playbook, slot, figure)] += value
        self.sums = merged

    def rows(self) -> dict[str, list[list[Any]]]:
        """Everything, as JSON rows (`Found`'s per-playbook lists), in order."""
        found = self.found(-(2**62), 2**62)
        return {name: [list(row) for row in getattr(found, name)] for name in _KEPT}

    @classmethod
    def of_rows(cls, rows: dict[str, list[list[Any]]]) -> PlaybookFacts:
        """`rows` back."""
        facts = cls()
        for p, s, f, v in rows.get("playbooks", ()):
            facts.sums[(p, s, f)] = v
        facts.arms = {(p, m): (a, t) for p, m, a, t in rows.get("arms", ())}
        facts.touches = {(p, m, t, a) for p, m, t, a in rows.get("touches", ())}
        facts.goals = {(m, t, met): [n, a] for m, t, met, n, a in rows.get("goals", ())}
        return facts


_KEPT = ("playbooks", "arms", "touches", "goals")


def found_of(rows: dict[str, list[list[Any]]]) -> Found:
    """The per-playbook `Found` of JSON rows (`PlaybookFacts.rows`, or a range of them)."""
    return Found(
        [],
        [],
        [(str(p), int(s), str(f), float(v)) for p, s, f, v in rows.get("playbooks", ())],
        [(str(p), str(m), str(a), int(t)) for p, m, a, t in rows.get("arms", ())],
        [(str(p), str(m), int(t), str(a)) for p, m, t, a in rows.get("touches", ())],
        [(str(m), int(t), str(met), int(n), float(a)) for m, t, met, n, a in rows.get("goals", ())],
    )


def write_playbooks(
    cur: Cursor,
    sql: Callable[[str], str],
    shard: str,
    tally: PlaybookTally | None,
    many: Many | None = None,
) -> None:
    """Add a playbook tally to a SQL store's figures, in the transaction of `cur`."""
    if not tally:
        return
    run = _runner(sql, many)
    if tally.sums:
        run(cur, PLAYBOOK_ADD, [(shard, p, s, f, v) for (p, s, f), v in sorted(tally.sums.items())])
    if tally.arms:
        run(
            cur,
            ARM_NOTE,
            [(shard, p, bounded(m), arm, t) for (p, m), (arm, t) in sorted(tally.arms.items())],
        )
    if tally.touches:  # members bounded as in `Tally.rows`
        run(cur, TOUCH_NOTE, [(shard, p, bounded(m), t, a) for p, m, t, a in sorted(tally.touches)])
    if tally.goals:
        run(
            cur,
            GOAL_ADD,
            [
                (shard, bounded(m), t, met, int(n), amount)
                for (m, t, met), (n, amount) in sorted(tally.goals.items())
            ],
        )


def counts(status: str, kind: str) -> bool:
    """Whether an outbox row's outcome counts in the figures (a send or a kick done)."""
    return status == "done" and kind in ("send", "kick")


Fresh = Callable[[list[tuple[Any, ...]]], list[tuple[Any, ...]]]
"""The members' rows not known to be stored already (`store_noted.Noted.fresh`)."""


def record_done(
    cur: Cursor, sql: Callable[[str], str], update: str, rows: Sequence[Any], fresh: Fresh | None = None
) -> None:
    """Record outbox rows that count (`counts`) with the store's `update` statement, one at a time,
    and count each only if this transaction is the one that made it done: once per idempotency key."""
    tallies: dict[str, Tally] = {}
    for r in rows:
        cur.execute(update, (r.status, r.attempts, r.failures, r.next_at, r.error, r.id))
        if cur.rowcount == 1:
            tallies.setdefault(r.shard, Tally()).done(r.action)
    for shard, tally in sorted(tallies.items()):
        write(cur, sql, shard, tally, fresh=fresh)


def record_changed(
    cur: Cursor,
    sql: Callable[[str], str],
    rows: Sequence[Any],
    many: Many | None = None,
    fresh: Fresh | None = None,
) -> None:
    """Count outbox rows already made done by this transaction (as `record_done` does after its updates)."""
    tallies: dict[str, Tally] = {}
    for r in rows:
        tallies.setdefault(r.shard, Tally()).done(r.action)
    # By shard, as each shard's rows are by key: two workers finishing rows of the same shards in
    # other orders would otherwise each hold a figure row the other waits for (a deadlock).
    for shard, tally in sorted(tallies.items()):
        write(cur, sql, shard, tally, many, fresh)


def prunes(before: int, touches_before: int | None) -> list[tuple[str, tuple[int, ...]]]:
    """The deletions of the store's purge (statements and parameters): the rows no report of a
    period from `before` on can read. Members seen in slots wholly before it (a report reads only
    its own slots); events that met goals before it (a conversion counts in the days of its event);
    touches before `touches_before` (None: none), which must be `before` less the longest goal
    time, since a touch that old can convert nothing from `before` on. Kept: every sum, and each
    member's arm (one row a member, for good: without it a later assignment would count anew)."""
    deletions: list[tuple[str, tuple[int, ...]]] = [
        ("DELETE FROM sopdsl_figure_members WHERE slot < ?", (before // SLOT,)),
        ("DELETE FROM sopdsl_figure_goals WHERE moment < ?", (before,)),
    ]
    if touches_before is not None:
        deletions.append(("DELETE FROM sopdsl_figure_touches WHERE moment < ?", (touches_before,)))
    return deletions


def write(
    cur: Cursor,
    sql: Callable[[str], str],
    shard: str,
    tally: Tally,
    many: Many | None = None,
    fresh: Fresh | None = None,
) -> None:
    """Add a tally to a SQL store's figures, in the transaction of `cur` (`sql`: the dialect's
    parameter style; `many`: its way to run a statement for many rows; `fresh`: the members'
    rows not known to be stored already, `store_noted.Noted.fresh`)."""
    if not tally:
        return
    run = _runner(sql, many)
    sums, seen = tally.rows(shard)
    if sums:
        run(cur, ADD, sums)
    if seen and fresh is not None:
        seen = fresh(seen)
    if seen:
        run(cur, NOTE, seen)
