"""The outbox dispatcher: due outbox rows claimed, handed to their executors, outcomes recorded.

Input: the store's pending outbox rows (the actions the engine decided, each with its
idempotency key). Output: calls to executors, and each row's outcome (done, retried later,
parked, or logged in dry-run mode) stored for the batch in one transaction. Rows of one member
(or group) go out one at a time, in order; see docs/runtime.md, "Dispatching". A claimed batch
holds at most one row per member (or group), so with `concurrency` above 1 its rows are executed
side by side, at most that many at once, without reordering anyone's actions.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from queue import SimpleQueue
from time import monotonic
from typing import Protocol

from sopdsl.engine.actions import GOING_OUT, Action
from sopdsl.kinds import subject_of
from sopdsl.live.awaiting import settle
from sopdsl.live.dispatch import CustomAction, Executor, ExecutorError, RetryPolicy, resolve
from sopdsl.live.long_ids import bounded
from sopdsl.live.redact import redact_urls_in
from sopdsl.live.store import DONE, DRY_RUN, FAILED, PARKED, PENDING, SKIPPED, OutboxRow, Store
from sopdsl.plan import Plan, timeutil

log = logging.getLogger("sopdsl.runtime")


class OutboxSettings(Protocol):
    """What the dispatcher reads of its runtime, at each call (`sopdsl.live.runtime.Runtime` is one)."""

    store: Store
    plan: Plan  # its zone, for the times a log line gives
    worker: str
    lease: float
    wall: Callable[[], float]
    batch: int
    dry_run: bool
    retry: RetryPolicy
    executors: dict[str, Executor | CustomAction]
    closed: bool
    concurrency: int
    # Seconds after which a dispatch stops claiming though rows keep coming (None: until none is
    # due), so that a loop calling it does its other work between turns under load.
    dispatch_budget: float | None
    # The loop `run_async` runs on, while it does: async executors are awaited there.
    event_loop: asyncio.AbstractEventLoop | None


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
        self._apart: threading.Thread | None = None  # `dispatch_apart`'s thread
        self._poked = threading.Event()
        self._stopped = threading.Event()

    def dispatch(self, moment: int) -> int:
        """Hand the rows due at `moment` to their executors; return how many were handled.

        Claims again while rows come (for up to `dispatch_budget` seconds, when set)."""
        s = self.settings
        began = monotonic()
        # Side by side, a claim of several calls' worth keeps the claim's and the outcomes' round
        # trips a small share of the executors' time.
        size = s.batch if s.concurrency == 1 else max(s.batch, 4 * s.concurrency)
        with self.busy:
            if s.concurrency == 1:
                return self._one_by_one(moment, size, began)
            return self._side_by_side(moment, size, began)

    def dispatch_apart(self, now: Callable[[], int], poll: float) -> None:
        """Dispatch in a thread of its own from now on: at each `poke`, and every `poll` seconds.

        A worker's loop applied other workers' entries and then dispatched, one after the other;
        its applies wait for its feeds (the runtime's lock), so its executors sat idle meanwhile
        (half of a busy worker's loop time, bench/live.py --only pg-http)."""
        if self._apart is None:
            self._apart = threading.Thread(
                target=self._dispatching, args=(now, poll), name="sopdsl-dispatch", daemon=True
            )
            self._apart.start()

    @property
    def apart(self) -> bool:
        """Whether a thread of its own dispatches (`dispatch_apart`)."""
        return self._apart is not None

    def poke(self) -> None:
        """Work came (a feed or a timer decided actions): `dispatch_apart`'s thread goes on at once."""
        self._poked.set()

    def _dispatching(self, now: Callable[[], int], poll: float) -> None:
        while not self._stopped.is_set():
            self._poked.wait(poll)
            self._poked.clear()
            if self._stopped.is_set():
                return
            try:
                if self.dispatch(now()):
                    self._poked.set()  # more may be due: the members' next rows, or past the budget
            except Exception:
                log.exception("sopdsl runtime: dispatching failed; retrying in %.1f s", poll)
                self._stopped.wait(poll)

    def _spent(self, began: float) -> bool:
        budget = self.settings.dispatch_budget
        return self.settings.closed or (budget is not None and monotonic() - began > budget)

    def _one_by_one(self, moment: int, size: int, began: float) -> int:
        """Claim a batch, execute its rows in turn, record their outcomes; again while rows come."""
        s = self.settings
        handled = 0
        done: list[OutboxRow] = []
        while not s.closed:
            # Done rows free the next row of their member, so claim again until none is due; the
            # outcomes are recorded in the next claim's transaction (a crash before it only means
            # these are sent again), one transaction a batch, not two.
            rows = s.store.claim(s.worker, s.wall(), moment, s.lease, size, finished=done)
            handled, done = handled + len(done), []
            if not rows:
                break
            # Stop short of the lease's end: after it, another worker may have claimed the rest.
            deadline = s.wall() + s.lease * 0.8
            for row in rows:
                if s.wall() > deadline:
                    break  # left leased to this worker: its next claim takes it again
                self.execute(row, moment)
                done.append(row)
            if self._spent(began):
                break
        if done:
            s.store.finish(done, s.worker)
            handled += len(done)
        return handled

    def _side_by_side(self, moment: int, size: int, began: float) -> int:
        """Keep up to `size` claimed rows going through `concurrency` threads: whenever half of
        them are through, record those outcomes and claim as many again.

        Claimed batches used to run to their end before the next claim (four calls' time per
        thread, then every thread idle for the outcomes and the claim): a 5 ms executor at 16
        threads handled about 1,500 rows a second of its 3,200. A claim holds no row behind a
        pending one of its member (rows in flight are still pending) and skips those in flight,
        so no member's actions reorder or go out twice."""
        s = self.settings
        pool = self._pool_for(s.concurrency)
        # Each call reports here as it ends (not `concurrent.futures.wait`, which locks and
        # unlocks every call in flight each time it is asked: most of the dispatcher's CPU).
        ended: SimpleQueue[tuple[int, OutboxRow | None, BaseException | None]] = SimpleQueue()
        running: set[int] = set()  # ids of the rows in flight
        through: list[OutboxRow] = []  # executed, outcome not recorded yet
        handled = 0
        claiming = True

        def call(row: OutboxRow, deadline: float) -> None:
            try:
                ended.put((row.id, self._before(row, moment, deadline), None))
            except BaseException as exc:  # handed to the dispatching thread, which raises it
                ended.put((row.id, None, exc))

        while True:
            claiming = claiming and not self._spent(began)
            # Claim again once half of the rows in flight are through (a wave of them at least, so
            # a thin outbox does not cost a claim per row), or when none are left.
            if claiming and (not running or (len(running) <= size // 2 and len(through) >= s.concurrency)):
                # Their outcomes first, in the claim's transaction: their members' next rows
                # become claimable.
                rows = s.store.claim(
                    s.worker,
                    s.wall(),
                    moment,
                    s.lease,
                    size - len(running),
                    skip=running,
                    finished=through,
                )
                handled, through = handled + len(through), []
                # Stop short of the lease's end: after it, another worker may have claimed them.
                deadline = s.wall() + s.lease * 0.8
                for row in rows:
                    running.add(row.id)
                    pool.submit(call, row, deadline)
            if not running:
                break
            news = [ended.get()]
            while not ended.empty():
                news.append(ended.get())
            for row_id, executed, error in news:
                running.discard(row_id)
                if error is not None:
                    raise error
                if executed is not None:  # None: past its deadline, left leased to this worker
                    through.append(executed)
            if through and not claiming:
                s.store.finish(through, s.worker)  # the last ones: nothing to claim after them
                handled, through = handled + len(through), []
        if through:  # executed, then the budget ran out before the claim that would record them
            s.store.finish(through, s.worker)
            handled += len(through)
        return handled

    def _before(self, row: OutboxRow, moment: int, deadline: float) -> OutboxRow | None:
        if self.settings.wall() > deadline:
            return None
        self.execute(row, moment)
        return row

    def _pool_for(self, workers: int) -> ThreadPoolExecutor:
        if self._pool is None or self._pool_size < workers:
            if self._pool is not None:
                self._pool.shutdown(wait=False)
            self._pool_size = workers
            self._pool = ThreadPoolExecutor(workers, thread_name_prefix="sopdsl-executor")
        return self._pool

    def stop_apart(self) -> None:
        """Stop `dispatch_apart`'s thread (after its dispatch in progress); call before `close`."""
        self._stopped.set()
        self._poked.set()
        if self._apart is not None:
            self._apart.join(timeout=60)

    def close(self) -> None:
        """Stop the executor threads (after the calls in progress)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def execute(self, row: OutboxRow, now: int) -> None:
        """Call the row's executor and set the row's outcome (the caller stores it)."""
        s = self.settings
        action = Action(**row.action)
        key = executor_key(row)
        row.attempts += 1
        if s.dry_run:
            log.info("dry run: would %s %s (key %s)", action.kind, describe(action), key)
            row.status = DRY_RUN
            return
        executor = resolve(s.executors, action)
        try:
            if executor is None:
                raise ExecutorError(f"no executor is registered for '{action.kind}' actions")
            pending = executor(action, key)
            if pending is not None:
                settle(pending, s.event_loop, s.lease)
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
                    "sopdsl runtime: %s %s (key %s) failed, retry %d in %d s (%s): %s",
                    action.kind,
                    describe(action),
                    key,
                    row.attempts,
                    row.next_at - now,
                    # In the playbooks' zone, as the API gives times: not epoch seconds.
                    timeutil.iso(row.next_at, timeutil.zone(s.plan.declarations.timezone)),
                    row.error,
                )
        else:
            row.status, row.error = DONE, None


def row_of(shard: str, action: Action) -> OutboxRow:
    """The outbox row of a decided action: pending if it is to go out, else kept for the record."""
    # Bounded: an id journaled before ids were limited overflowed PostgreSQL's index of the order.
    order = bounded(action.member) if action.member else f"group:{bounded(action.group or '-')}"
    return OutboxRow(
        shard=shard,
        key=action.key,
        order_key=order,
        kind=action.kind,
        action=action.fields(),
        status=PENDING if action.status in GOING_OUT else FAILED if action.status == "failed" else SKIPPED,
        next_at=action.time,
    )


def describe(action: Action) -> str:
    """What an action does to whom, for a log line."""
    what = subject_of(action.kind, action.detail)
    who = action.member or action.group or "-"
    return f"{what} -> {who}".strip()


def executor_key(row: OutboxRow) -> str:
    """The idempotency key an executor gets for a row: its key, after its shard's name but the default's."""
    return row.key if row.shard == "default" else f"{row.shard}/{row.key}"
