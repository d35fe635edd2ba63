"""The task inbox's own records in a SQL store: who claimed each staff task, and which are done;
and how its staff actions (`task`, `escalate`) are found in the outbox without reading the rest.

Input: a shard and a task's key (an `assign`'s, as the engine keys it). Output: the marks the
admin API shows beside the tasks the engine holds open, kept in the `sopdsl_tasks` table so a
restart forgets no claim. The engine's own state (open, past its deadline) is never kept here:
a task is finished through the journal (`task_done`), and this table says only what staff did.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

STAFF_KINDS = ("task", "escalate")  # the action kinds the task inbox shows
# The same as SQL, written alike in the index and the queries, so that they can use the index.
STAFF = f"kind IN ({', '.join(repr(kind) for kind in STAFF_KINDS)})"

TASKS_TABLE = """CREATE TABLE IF NOT EXISTS sopdsl_tasks (
    shard TEXT NOT NULL, key TEXT NOT NULL, claimed_by TEXT, done INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (shard, key))"""
# The outbox's staff rows by shard, in order: the inbox lists them without scanning every send.
# Partial, so the sends and tags that make up nearly all of the outbox cost it nothing.
STAFF_INDEX = f"CREATE INDEX IF NOT EXISTS sopdsl_outbox_staff ON sopdsl_outbox (shard, id) WHERE {STAFF}"


def escalation_key(key: str) -> str:
    """The outbox key of a task's escalation (as `engine/tasks.py` makes it)."""
    return f"{key}:escalate"


@dataclass(frozen=True, slots=True)
class TaskMark:
    """What staff did with one task: who claimed it (None: nobody yet), and whether it is done."""

    key: str
    claimed_by: str | None = None
    done: bool = False


class _Sql(Protocol):
    def _txn(self) -> AbstractContextManager[Any]: ...

    def _sql(self, sql: str) -> str: ...


class SqlTasks:
    """The task marks over a SQL store's connection (mixed into `SqlStore`)."""

    def claim_task(self: _Sql, shard: str, key: str, who: str) -> str:
        """Claim a task for `who` unless someone holds it; who holds it now."""
        with self._txn() as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO sopdsl_tasks (shard, key, claimed_by, done) VALUES (?, ?, ?, 0) "
                    "ON CONFLICT (shard, key) DO UPDATE SET claimed_by = excluded.claimed_by "
                    "WHERE sopdsl_tasks.claimed_by IS NULL"
                ),
                (shard, key, who),
            )
            cur.execute(
                self._sql("SELECT claimed_by FROM sopdsl_tasks WHERE shard = ? AND key = ?"), (shard, key)
            )
            return str(cur.fetchone()[0])

    def finish_task(self: _Sql, shard: str, key: str) -> None:
        """Mark a task done (its claim, if any, is kept for the record)."""
        with self._txn() as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO sopdsl_tasks (shard, key, claimed_by, done) VALUES (?, ?, NULL, 1) "
                    "ON CONFLICT (shard, key) DO UPDATE SET done = 1"
                ),
                (shard, key),
            )

    def task_marks(self: _Sql, shard: str, key: str | None = None) -> dict[str, TaskMark]:
        """Every task of the shard that staff claimed or finished (or only the one keyed `key`), by key."""
        select = "SELECT key, claimed_by, done FROM sopdsl_tasks WHERE shard = ?"
        with self._txn() as cur:
            if key is None:
                cur.execute(self._sql(select), (shard,))
            else:
                cur.execute(self._sql(f"{select} AND key = ?"), (shard, key))
            return {k: TaskMark(k, who, bool(done)) for k, who, done in cur.fetchall()}
