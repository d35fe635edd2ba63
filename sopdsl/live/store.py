"""State stores for the live runtime: one interface, three back ends (memory, SQLite, PostgreSQL).

Input: journal entries (the engine's inputs) and outbox rows (its outputs). Output: the same,
read back after a restart. The engine is deterministic, so its state is never stored as such:
a shard's journal replayed through a fresh engine rebuilds it exactly, and the outbox carries
every action with its idempotency key and delivery status. See docs/runtime.md.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from sopdsl.errors import StoreError
from sopdsl.live.redact import redact_url
from sopdsl.live.store_contacts import ContactStore
from sopdsl.live.store_figures import Found, PlaybookTally
from sopdsl.live.store_tasks import TaskMark

SCHEMA_VERSION = 2  # 2: shards record the plan they run now (plan_now); engine snapshots

# Outbox statuses: waiting for (or being retried by) an executor; delivered; given up on after the
# retry limit (reported, never dropped); logged instead of executed in dry-run mode; decided by
# the engine's policy not to go out (dropped, blocked, failed template), kept for the record.
PENDING, DONE, PARKED, DRY_RUN, SKIPPED = "pending", "done", "parked", "dry_run", "skipped"
# Decided but failed (a template or a member's data was at fault): never executed, kept to be read.
FAILED = "failed"


@dataclass(slots=True)
class ShardInfo:
    """A shard (one community or tenant): how its engine starts, and how far its journal got."""

    shard: str
    start: int
    seed: int
    plan_hash: str  # the plan its journal starts under
    head: int = 0  # the last journal sequence number
    applied: int = 0  # the last entry whose actions are in the outbox
    next_due: int | None = None  # the engine's next timer after `applied`
    events: int = 0  # event entries journaled
    plan_now: str = ""  # the plan it runs after the applied entries (a `plan` entry changes it)

    def __post_init__(self) -> None:
        self.plan_now = self.plan_now or self.plan_hash


@dataclass(slots=True)
class Entry:
    """One journal entry: an input to the engine (`op` is group, member, event, advance, resume or plan)."""

    seq: int
    body: dict[str, Any]


@dataclass(slots=True)
class OutboxRow:
    """One action on its way to an executor."""

    shard: str
    key: str
    order_key: str  # rows with the same order key are dispatched one at a time, in id order
    kind: str
    action: dict[str, Any]
    status: str = PENDING
    next_at: int = 0
    attempts: int = 0  # calls made to the executor
    failures: int = 0  # of which raised
    error: str | None = None
    id: int = 0


@dataclass(slots=True)
class Batch:
    """What applying a shard's entries produced, to be committed in one transaction."""

    entries: list[dict[str, Any]] = field(default_factory=list)  # to append to the journal
    rows: list[OutboxRow] = field(default_factory=list)
    next_due: int | None = None
    plan_now: str | None = None  # set when the entries switched the shard to another plan
    snapshot: tuple[int, bytes] | None = None  # the engine's state after entry `seq`, to keep
    figures: PlaybookTally | None = None  # what the entries add to the per-playbook figures


@dataclass(frozen=True, slots=True)
class Roster:
    """Who works on a multi-worker store now: the live workers, and whose lease each shard is on."""

    workers: tuple[str, ...]  # sorted; those whose last `Store.roster` call is younger than its `until`
    holders: dict[str, str | None]  # every shard: its lease's worker (live or lapsed), None if released


# Called inside the store's transaction with the shard, the journal entries after the caller's
# cursor (applied ones first, for catching up, then any appended by other workers) and the new
# entries offered, less events whose id the journal already holds. Returns the entries to append
# (applied by the step), the outbox rows and the next timer. Raising rolls everything back.
Step = Callable[[ShardInfo, list[Entry], list[dict[str, Any]]], Batch]


class Store(ContactStore, Protocol):
    """The interface every store implements; one test suite runs against all of them. A
    platform's contacts (`ContactStore`: owners, welcome codes, staff) are part of it."""

    url: str
    multi_worker: bool  # whether several processes may share this store

    def ensure_shard(self, shard: str, *, start: int, seed: int, plan_hash: str) -> ShardInfo:
        """The shard's record, created with these values if it does not exist yet."""
        ...

    def save_plan(self, plan_hash: str, body: str) -> None:
        """Keep a plan's JSON by its hash, so a journal can always be replayed with its own plan."""
        ...

    def load_plan(self, plan_hash: str) -> str | None:
        """A plan's JSON by its hash, or None."""
        ...

    def journal(self, shard: str, after: int = 0) -> list[Entry]:
        """The shard's journal entries after sequence number `after`, in order."""
        ...

    def load_snapshot(self, shard: str) -> tuple[int, bytes] | None:
        """The shard's latest engine snapshot and the journal entry it was taken after, or None."""
        ...

    def save_snapshot(self, shard: str, seq: int, body: bytes) -> None:
        """Keep an engine snapshot taken after entry `seq`, unless the shard has a later one."""
        ...

    def append(self, shard: str, new: Sequence[dict[str, Any]]) -> int:
        """Append entries for whichever worker applies the shard (events whose id it has are skipped); how many were taken."""
        ...

    def apply(
        self,
        shard: str,
        new: Sequence[dict[str, Any]],
        step: Step,
        *,
        since: int,
        worker: str,
        wall: float,
        lease: float,
        appended: Callable[[list[dict[str, Any]]], None] | None = None,
        defer_to: str | None = None,
    ) -> Batch | None:
        """In one transaction: lock the shard, append `new`, run `step`, insert its rows, move the cursor.

        When another worker holds a live lease on the shard (or, with nothing to append, is busy
        with it), `new` is only appended, for that worker to apply, and the answer is None; then
        `appended` gets the entries taken (those whose event id the journal did not have). So too
        when nobody holds it and `defer_to` names another worker (the one the shard is left to,
        see `sopdsl.live.balance`), which is told.
        """
        ...

    def work(self, worker: str, wall: float, now: int, limit: int, skip: Collection[str] = ()) -> list[str]:
        """Shards with unapplied entries or due timers that this worker may take (of `skip`, only
        those it holds a live lease on)."""
        ...

    def watch(self, worker: str, wake: Callable[[], None], rows: Callable[[], None] | None = None) -> bool:
        """Call `wake` (from another thread) whenever another process journals entries for a shard
        `worker` holds or is handed, and `rows` whenever another process announces outbox rows,
        until `close`; False when this store cannot tell (its workers poll `work` and `claim`)."""
        ...

    def release(self, shard: str, worker: str) -> None:
        """Give up this worker's lease on a shard."""
        ...

    def announce(self, worker: str) -> None:
        """Tell the other workers' dispatchers (`watch`'s `rows`) that `worker` stored outbox rows
        (which no dispatcher of its own takes at once); a store with one process does nothing."""
        ...

    def hand_over(self, shard: str, worker: str, to: str, until: float) -> bool:
        """Pass this worker's lease on a shard (live, or lapsed and taken by nobody since) to worker
        `to`, live until `until`, and tell it; False when the lease was not `worker`'s."""
        ...

    def roster(self, worker: str, wall: float, until: float) -> Roster:
        """Record that `worker` is alive until `until` (`until <= wall`: it left), then who is alive
        at `wall` and whose lease each shard is on."""
        ...

    def claim(
        self,
        worker: str,
        wall: float,
        now: int,
        lease: float,
        limit: int,
        skip: Collection[int] = (),
        finished: Sequence[OutboxRow] = (),
    ) -> list[OutboxRow]:
        """Lease due pending rows, oldest first, never two of one order key, nor one behind a pending one.

        `skip`: ids of rows this worker is executing now, which its lease would otherwise let it take again.
        `finished`: rows whose outcomes to record first (as `finish`), in the same transaction."""
        ...

    def finish(self, rows: Sequence[OutboxRow], worker: str) -> None:
        """Record dispatches' outcomes (`status`, `attempts`, `failures`, `next_at`, `error`) and end their leases."""
        ...

    def requeue(self, shard: str, key: str, now: int) -> bool:
        """Put a parked row back to pending, due at `now`, with its attempts reset; False if none is parked."""
        ...

    def purge(self, before: int, touches_before: int | None = None) -> int:
        """Delete finished rows (done, dry run, skipped) due before `before`; how many went.
        With them go the live figures' member rows that no report of days from `before` on reads
        (`store_figures.prunes`; touches only before `touches_before`, None: kept).

        Parked and pending rows stay. Safe because recovery never re-inserts rows: only newly
        applied entries do, and their keys are new.
        """
        ...

    def outbox(self, shard: str | None = None, status: str | None = None) -> list[OutboxRow]:
        """Every outbox row (of one shard, or all; with one status, or any), in id order."""
        ...

    def staff_actions(self, shard: str, key: str | None = None) -> list[OutboxRow]:
        """The shard's `task` and `escalate` outbox rows, in id order, read without the rest of the
        outbox; with `key`, only that task's own row and its escalation's."""
        ...

    def next_wakeup(self) -> int | None:
        """The earliest due timer or pending row retry over all shards (engine time), or None."""
        ...

    def stats(self) -> dict[str, int]:
        """Totals over all shards: events_in, actions_out, pending, failures, parked."""
        ...

    def figures(self, shard: str, lo: int, hi: int) -> Found:
        """The shard's live figures of engine times [lo, hi): sums and members seen, per group and
        15-minute slot; per playbook, sums of [lo, hi) and goal facts before hi (see
        `sopdsl.live.store_figures`)."""
        ...

    def figures_span(self, shard: str) -> tuple[int, int] | None:
        """Engine times from the first to the end of the last slot holding a figure of the shard
        (per group or playbook); None when it holds none."""
        ...

    def claim_task(self, shard: str, key: str, who: str) -> str:
        """Claim a staff task for `who` unless someone holds it; who holds it now."""
        ...

    def finish_task(self, shard: str, key: str) -> None:
        """Mark a staff task done."""
        ...

    def task_marks(self, shard: str, key: str | None = None) -> dict[str, TaskMark]:
        """Every task of the shard that staff claimed or finished (or only the one keyed `key`), by key."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...

    @property
    def syncs_apart(self) -> bool:
        """Whether `unsynced` commits really skip their sync (then `sync` makes them durable)."""
        ...

    def unsynced(self) -> AbstractContextManager[None]:
        """Within it, this thread's commits may return before they are durable (see `sync`)."""
        ...

    def sync(self) -> None:
        """Make every commit so far durable: those made `unsynced` (and others already are)."""
        ...


def left_for(holder: str | None, worker: str, defer_to: str | None) -> bool:
    """Whether `Store.apply` by `worker` only journals its entries, for another worker: one holds
    a live lease on the shard (`holder`), or nobody does and it is left to another (`defer_to`)."""
    return holder != worker and (holder is not None or defer_to not in (None, worker))


class SyncsEachCommit:
    """For a store whose commits are durable when they return: `unsynced` changes nothing and
    `sync` has nothing to do (memory: nothing is durable; PostgreSQL: its COMMIT waits)."""

    @property
    def syncs_apart(self) -> bool:
        """Never: see the class."""
        return False

    def unsynced(self) -> AbstractContextManager[None]:
        """Commits stay synced."""
        return nullcontext()

    def sync(self) -> None:
        """Nothing is owed."""


def open_store(url: str, *, migrate: bool = False) -> Store:
    """Open `memory://`, `sqlite:///path.db` or `postgresql://...`; a new store gets the current schema.

    A store at an older schema version is upgraded only with `migrate=True`; a newer one is refused.
    """
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        from sopdsl.live.store_memory import MemoryStore

        return MemoryStore(url)
    if scheme == "sqlite":
        from sopdsl.live.store_sqlite import SqliteStore

        return SqliteStore(url, migrate=migrate)
    if scheme in ("postgresql", "postgres"):
        from sopdsl.live.store_postgres import PostgresStore

        return PostgresStore(url, migrate=migrate)
    raise StoreError(
        f"unknown store URL {redact_url(url)!r}: expected memory://, sqlite:///path.db or postgresql://user@host/db"
    )


def check_version(found: int | None, url: str, migrate: bool) -> int:
    """The version to migrate from (0 for a new store); raises `StoreError` on a mismatch it may not fix."""
    if found is None:
        return 0
    if found > SCHEMA_VERSION:
        raise StoreError(
            f"store {redact_url(url)} is at schema version {found}, newer than this sopdsl understands "
            f"({SCHEMA_VERSION}); upgrade sopdsl"
        )
    if found < SCHEMA_VERSION and not migrate:
        raise StoreError(
            f"store {redact_url(url)} is at schema version {found}; this sopdsl needs {SCHEMA_VERSION}. "
            "Back it up, then open it with open_store(url, migrate=True)"
        )
    return found
