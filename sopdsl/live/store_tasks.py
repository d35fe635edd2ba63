"""The task inbox's own records in a SQL store: who claimed each staff task, and which are done.

Input: a shard and a task's key (an `assign`'s, as the engine keys it). Output: the marks the
admin API shows beside the tasks the engine holds open, kept in the `sopdsl_tasks` table so a
restart forgets no claim. The engine's own state (open, past its deadline) is never kept here:
a task is finished through the journal (`task_done`), and this table says only what staff did.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

TASKS_TABLE = """CREATE TABLE IF NOT EXISTS sopdsl_tasks (
    shard TEXT NOT NULL, key TEXT NOT NULL, claimed_by TEXT, done INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (shard, key))"""


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

    def task_marks(self: _Sql, shard: str) -> dict[str, TaskMark]:
        """Every task of the shard that staff claimed or finished, by key."""
        with self._txn() as cur:
            cur.execute(self._sql("SELECT key, claimed_by, done FROM sopdsl_tasks WHERE shard = ?"), (shard,))
            return {key: TaskMark(key, who, bool(done)) for key, who, done in cur.fetchall()}
