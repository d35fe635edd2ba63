"""The outbox dispatcher: due outbox rows claimed, handed to their executors, outcomes recorded.

Input: the store's pending outbox rows (the actions the engine decided, each with its
idempotency key). Output: calls to executors, and each row's outcome (done, retried later,
parked, or logged in dry-run mode) stored for the batch in one transaction. Rows of one member
(or group) go out one at a time, in order; see docs/runtime.md, "Dispatching". A claimed batch
holds at most one row per member (or group), so with `concurrency` above 1 its rows are executed
side by side, at most that many at once, without reordering anyone's actions.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from time import monotonic
from typing import Protocol

from sopdsl.engine.actions import Action
from sopdsl.kinds import subject_of
from sopdsl.live.dispatch import CustomAction, Executor, ExecutorError, RetryPolicy, resolve
from sopdsl.live.redact import redact_urls_in
from sopdsl.live.store import DONE, DRY_RUN, FAILED, PARKED, PENDING, SKIPPED, OutboxRow, Store

log = logging.getLogger("sopdsl.runtime")

_ACTION_FIELDS = tuple(f.name for f in dataclasses.fields(Action))


class OutboxSettings(Protocol):
    """What the dispatcher reads of its runtime, at each call (`sopdsl.live.runtime.Runtime` is one)."""

    store: Store
    worker: str
    lease: float
    batch: int
    dry_run: bool
    retry: RetryPolicy
    executors: dict[str, Executor | CustomAction]
    closed: bool
    concurrency: int
    # Seconds after which a dispatch stops claiming though rows keep coming (None: until none is
    # due), so that the loop calling it applies other workers' entries between turns under load.
    dispatch_budget: float | None


class Outbox:
    """Hands a runtime's due outbox rows to their executors, one dispatch at a time."""

    def __init__(self, settings: OutboxSettings) -> None:
        # Read at each call, not copied: the runtime's attributes stay the one place they are set.
        self.settings = settings
        # One dispatch at a time: rows leased to this worker may be claimed again by it (that is
        # how a restarted worker takes its rows back), so two concurrent dispatches could double up.
        self.busy = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None  # made at the first batch run side by side
        self._pool_size = 0

    def dispatch(self, moment: int) -> int:
        """Hand the rows due at `moment` to their executors; return how many were handled.

        Claims again while rows come (for up to `dispatch_budget` seconds, when set)."""
        s = self.settings
        handled = 0
        began = monotonic()
        # Side by side, a batch takes about (rows / concurrency) executor calls' time, so a claim
        # of several calls' worth keeps the claim's and the outcomes' round trips a small share.
        size = s.batch if s.concurrency == 1 else max(s.batch, 4 * s.concurrency)
        with self.busy:
            while not s.closed and (rows := s.store.claim(s.worker, time.time(), moment, s.lease, size)):
                # Stop short of the lease's end: after it, another worker may have claimed the rest.
                deadline = time.time() + s.lease * 0.8
                done = self._run(rows, moment, deadline)
                # One transaction for the batch: a crash before it only means these are sent again.
                # Done rows free the next row of their member, so claim again until none is due.
                s.store.finish(done, s.worker)
                handled += len(done)
                if s.dispatch_budget is not None and monotonic() - began > s.dispatch_budget:
                    break
        return handled

    def _run(self, rows: list[OutboxRow], moment: int, deadline: float) -> list[OutboxRow]:
        """Execute the claimed rows (side by side up to `concurrency`); those executed before the deadline."""

        def one(row: OutboxRow) -> OutboxRow | None:
            if time.time() > deadline:
                return None  # left leased to this worker: its next claim takes it again
            self.execute(row, moment)
            return row

        workers = min(self.settings.concurrency, len(rows))
        if workers <= 1:
            found = []
            for row in rows:
                if one(row) is None:
                    break
                found.append(row)
            return found
        if self._pool is None or self._pool_size < workers:
            if self._pool is not None:
                self._pool.shutdown(wait=False)
            self._pool_size = max(workers, self.settings.concurrency)
            self._pool = ThreadPoolExecutor(self._pool_size, thread_name_prefix="sopdsl-executor")
        # The batch holds one row per order key (see `Store.claim`), so no member's rows reorder.
        return [row for row in self._pool.map(one, rows) if row is not None]

    def close(self) -> None:
        """Stop the executor threads (after the calls in progress)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def execute(self, row: OutboxRow, now: int) -> None:
        """Call the row's executor and set the row's outcome (the caller stores it)."""
        s = self.settings
        action = Action(**row.action)
        key = row.key if row.shard == "default" else f"{row.shard}/{row.key}"
        row.attempts += 1
        if s.dry_run:
            log.info("dry run: would %s %s (key %s)", action.kind, describe(action), key)
            row.status = DRY_RUN
            return
        executor = resolve(s.executors, action)
        try:
            if executor is None:
                raise ExecutorError(f"no executor is registered for '{action.kind}' actions")
            executor(action, key)
        except Exception as exc:
            row.failures += 1
            row.error = redact_urls_in(f"{type(exc).__name__}: {exc}")  # stored and logged
            permanent = bool(getattr(exc, "permanent", False)) or isinstance(exc, ExecutorError)
            if permanent or row.attempts >= s.retry.attempts:
                row.status = PARKED
                log.error(
                    "sopdsl runtime: parked %s %s (key %s) after %d attempt(s): %s",
                    action.kind,
                    describe(action),
                    key,
                    row.attempts,
                    row.error,
                )
            else:
                # The receiver's Retry-After, when it gave one, lengthens the wait.
                row.next_at = now + int(s.retry.delay(row.failures, getattr(exc, "retry_after", None)))
                log.warning(
                    "sopdsl runtime: %s %s (key %s) failed, retry %d at %d: %s",
                    action.kind,
                    describe(action),
                    key,
                    row.attempts,
                    row.next_at,
                    row.error,
                )
        else:
            row.status, row.error = DONE, None


def row_of(shard: str, action: Action) -> OutboxRow:
    """The outbox row of a decided action: pending if it is to go out, else kept for the record."""
    order = action.member if action.member else f"group:{action.group or '-'}"
    return OutboxRow(
        shard=shard,
        key=action.key,
        order_key=order,
        kind=action.kind,
        action={name: getattr(action, name) for name in _ACTION_FIELDS} | {"detail": dict(action.detail)},
        status=PENDING if action.status == "done" else FAILED if action.status == "failed" else SKIPPED,
        next_at=action.time,
    )


def describe(action: Action) -> str:
    """What an action does to whom, for a log line."""
    what = subject_of(action.kind, action.detail)
    who = action.member or action.group or "-"
    return f"{what} -> {who}".strip()
