"""Group commit: the events of requests arriving together go into the store in one transaction.

Input: each request's events (already checked to be JSON objects), from the HTTP event loop
(`submit_async`) or from other threads (`submit`). Output: for each request, its own `Fed` (its
actions, its duplicates) or the error its events raised; a request is answered only once the
transaction holding its events is durable. One thread commits; while it does, new requests
queue, and the next transaction takes them, so under load many requests share one transaction
and one sync instead of paying one each. A transaction holds one shard's events (`Store.apply`
locks one shard): requests for other shards wait for the next, in their order.

Two ways to sync, by the store (`Syncer.syncs_apart`):
- In a pipeline (SQLite): the committing thread commits without syncing and goes on with the
  next requests while a second thread syncs the WAL and answers. A transaction takes all that
  are queued. At most half of the requests in flight (so that one half would apply while the
  other synced) made transactions of about 4 events from 8 connections instead of about 7, and
  a transaction's fixed cost (its statements, the pages it rewrites, the GIL handed back and
  forth at each SQLite call) was paid twice as often: 7-48% more server CPU an event, and from
  1% more to 9% fewer events a second on a quiet machine, 20-27% fewer beside another busy
  process (bench/live.py --only http, runs alternated; docs/performance.md). The sync inside
  COMMIT instead gave 2,820 events/s against 4,280 with it apart.
- At commit (PostgreSQL, memory): the COMMIT is the sync, and a transaction also waits briefly
  for as many requests as came together lately (`_gather`).

The event loop never waits on a thread: a request queued from it is answered by one call from
the answering thread per transaction (`call_soon_threadsafe`), which calls back each of that
loop's requests at once (`submit_soon`: HTTP fronts' requests are answered from there, with no
task or future of their own; `submit_async` settles a future).
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from sopdsl.errors import SopdslError
from sopdsl.live.fed import Fed

T = TypeVar("T")

MAX_EVENTS = 2000  # events in one shared transaction at most: bounds the wait of the last request in it
GATHER_WAIT = 0.002  # seconds a transaction waits at most for the requests expected to join it


class Syncer(Protocol):
    """What the committer needs of a store to sync apart from committing (see `Store.unsynced`)."""

    @property
    def syncs_apart(self) -> bool: ...

    def unsynced(self) -> AbstractContextManager[None]: ...

    def sync(self) -> None: ...


class ClosedError(Exception):
    """A request came after `close`: it was not fed."""


Done = Callable[[Fed | None, BaseException | None], None]
"""Called in the event loop that queued a request once it is answered: its result, or its error."""


@dataclass
class _Request:
    events: list[dict[str, Any]]
    shard: str | None = None  # None: the runtime's own
    # Exactly one of them: a thread's future, or a callback in the event loop that queued it.
    answer: Future[Fed] | None = None
    done: Done | None = None
    loop: asyncio.AbstractEventLoop | None = None  # the loop `done` is called in
    result: Fed | None = None
    error: BaseException | None = None


class GroupCommitter:
    """Feeds requests' events through `feed_batch`, several requests a transaction; `submit`, then `close`.

    `committed` is called in the committing thread after each transaction that stored actions
    (the service wakes its dispatcher there; a store that syncs apart hands out only synced
    rows). With a `syncer` that `syncs_apart`, transactions are synced in a pipeline (see the module).
    """

    def __init__(
        self,
        feed_batch: Callable[..., Fed],
        committed: Callable[[], None] | None = None,
        syncer: Syncer | None = None,
    ) -> None:
        self.feed_batch = feed_batch
        self.committed = committed
        self._syncer = syncer if syncer is not None and syncer.syncs_apart else None
        self.transactions = 0  # how many were committed: requests per transaction is the gain
        self._queue: deque[_Request] = deque()
        self._peak = 0  # requests queued together lately: what a transaction waits for (`_gather`)
        self._gathered: dict[asyncio.AbstractEventLoop, list[_Request]] = {}  # each loop's, this turn
        self._ready = threading.Condition()
        # Queued requests at which the committing thread wants waking: 1 when idle, the number it
        # gathers for, none while it commits (it looks at the queue before it waits again).
        self._want = 1
        self._closed = False
        self._unsynced: deque[list[_Request]] = deque()  # transactions' requests, committed, not synced
        self._to_sync = threading.Condition()
        self._committing = True  # until the committing thread ends (then the sync thread may)
        # Not `_thread`: mypyc names the C field `__thread`, a C keyword.
        self._commit_thread = threading.Thread(target=self._run, name="sopdsl-commit", daemon=True)
        self._commit_thread.start()
        self._sync_thread: threading.Thread | None = None
        if self._syncer is not None:
            self._sync_thread = threading.Thread(target=self._sync_run, name="sopdsl-sync", daemon=True)
            self._sync_thread.start()

    def submit(self, events: list[dict[str, Any]], shard: str | None = None) -> Fed:
        """Feed one request's events (all or none) and wait for their commit; raise what feeding them raised."""
        request = _Request(events, shard, answer=Future())
        self._enqueue(request)
        assert request.answer is not None
        return request.answer.result()

    async def submit_async(self, events: list[dict[str, Any]], shard: str | None = None) -> Fed:
        """`submit` from the event loop: the loop goes on serving while the events commit."""
        waiting: asyncio.Future[Fed] = asyncio.get_running_loop().create_future()
        self.submit_soon(events, settle(waiting), shard)
        return await waiting

    def submit_soon(self, events: list[dict[str, Any]], done: Done, shard: str | None = None) -> None:
        """`submit_async` without a coroutine, from the event loop: `done` is called in it once the
        events are durable (HTTP fronts' hot path: no task and no future a request)."""
        loop = asyncio.get_running_loop()
        # The requests of one turn of the loop go to the committing thread together: one lock
        # and one wake-up for all of them, not one each.
        gathered = self._gathered.get(loop)
        if gathered is None:
            gathered = self._gathered[loop] = []
            loop.call_soon(self._hand_over, loop)
        gathered.append(_Request(events, shard, done=done, loop=loop))

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        requests = self._gathered.pop(loop, [])
        try:
            self._enqueue(*requests)
        except ClosedError as exc:
            for request in requests:
                request.error = ClosedError(str(exc))
            _resolve(requests)

    def _enqueue(self, *requests: _Request) -> None:
        with self._ready:
            if self._closed:
                raise ClosedError("the service is shutting down; send the events again later")
            self._queue.extend(requests)
            if len(self._queue) >= self._want:
                # Each wake-up passes the GIL to that thread and back: not one per request.
                self._ready.notify()

    def close(self) -> None:
        """Commit what is queued, then stop (idempotent)."""
        with self._ready:
            self._closed = True
            self._ready.notify()
        self._commit_thread.join(timeout=60)
        if self._sync_thread is not None:
            with self._to_sync:
                self._committing = False
                self._to_sync.notify()
            self._sync_thread.join(timeout=60)

    def _run(self) -> None:
        while True:
            with self._ready:
                self._want = 1
                while not self._queue and not self._closed:
                    self._ready.wait()
                if not self._queue:
                    return
                if self._syncer is None:
                    self._gather()
                self._want = sys.maxsize  # committing: nobody needs to wake it
                taken = self._take()
            stored = False
            try:
                if self._syncer is not None:
                    with self._syncer.unsynced():
                        stored = self._commit(taken)
                else:
                    stored = self._commit(taken)
            except BaseException as exc:  # a bug here must not leave requests waiting forever
                for request in taken:
                    if request.result is None and request.error is None:
                        request.error = exc
            if stored and self.committed is not None:
                self.committed()
            if self._syncer is None:
                _answer(taken)
                continue
            with self._to_sync:
                self._unsynced.append(taken)
                self._to_sync.notify()

    def _sync_run(self) -> None:
        """Sync what was committed meanwhile, all at once, then answer it; until `close`."""
        assert self._syncer is not None
        while True:
            with self._to_sync:
                while not self._unsynced and self._committing:
                    self._to_sync.wait()
                if not self._unsynced:
                    return
                batches = list(self._unsynced)
                self._unsynced.clear()
            try:
                self._syncer.sync()
            except BaseException as exc:  # not durable: refused, to be sent again
                for taken in batches:
                    for request in taken:
                        request.result, request.error = None, request.error or exc
            for taken in batches:
                _answer(taken)

    def _gather(self) -> None:
        """Wait (under the lock) until as many requests are queued as were waiting together lately.

        Clients that each wait for their answer before sending again split into two halves that
        take turns (while one half's transaction commits, the other half queues), so without this
        a transaction held half of them. Waiting for the answered half to come back puts them all
        in one transaction: one sync and one transaction's fixed cost for twice the events. The
        wait ends as soon as they are in, and after GATHER_WAIT at most; then fewer clients are
        taken to be sending, and the next transaction waits for that many.
        """
        if len(self._queue) < self._peak:
            deadline = time.monotonic() + GATHER_WAIT
            self._want = self._peak
            while len(self._queue) < self._peak and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._peak = len(self._queue)
                    return
                self._ready.wait(left)
        self._peak = max(self._peak, len(self._queue))

    def _take(self) -> list[_Request]:
        """The first queued request and those after it for the same shard, up to MAX_EVENTS (under the lock)."""
        first = self._queue.popleft()
        taken, size = [first], len(first.events)
        # Not `deque[_Request]()`: the alias it made at each call was 3% of this thread (py-spy).
        left: deque[_Request] = deque()
        for request in self._queue:
            if request.shard == first.shard and size + len(request.events) <= MAX_EVENTS:
                size += len(request.events)
                taken.append(request)
            else:
                left.append(request)
        self._queue = left
        return taken

    def _commit(self, requests: list[_Request]) -> bool:
        """Feed the requests in one transaction and set each one's result or error (not yet
        answered); whether it stored actions."""
        events = [event for request in requests for event in request.events]
        shard = requests[0].shard
        try:
            fed = self.feed_batch(events) if shard is None else self.feed_batch(events, shard)
            self.transactions += 1
        except SopdslError as exc:
            if len(requests) == 1:
                requests[0].error = exc
                return False
            # One request's bad event fails the shared transaction: each goes again on its own,
            # so only that request is refused.
            stored = [self._commit([request]) for request in requests]  # each one, not the first that stores
            return any(stored)
        except BaseException as exc:
            for request in requests:
                request.error = exc
            return False
        start = 0
        actions = iter(fed.actions)
        for _ in range(len(fed.actions) - sum(fed.caused)):
            next(actions)  # entries another front end journaled, applied first: nobody's here
        duplicates = set(fed.duplicates)
        for request in requests:
            end = start + len(request.events)
            counts = fed.caused[start:end] or [0] * len(request.events)
            mine = [next(actions) for _ in range(sum(counts))]
            request.result = Fed(mine, [i - start for i in range(start, end) if i in duplicates], counts)
            start = end
        return bool(fed.actions)


def settle(future: asyncio.Future[T]) -> Callable[[T | None, BaseException | None], None]:
    """A callback that gives `future` its result or its error (unless it was cancelled meanwhile)."""

    def done(result: T | None, error: BaseException | None) -> None:
        if future.done():  # cancelled: the client went away
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    return done


def _answer(requests: list[_Request]) -> None:
    """Hand each request its result: threads directly, each event loop once for all of its requests."""
    loops: dict[asyncio.AbstractEventLoop, list[_Request]] = {}
    for request in requests:
        if request.loop is not None:
            loops.setdefault(request.loop, []).append(request)
        elif request.answer is not None:
            if request.error is not None:
                request.answer.set_exception(request.error)
            else:
                request.answer.set_result(request.result)  # type: ignore[arg-type]
    for loop, theirs in loops.items():
        try:
            loop.call_soon_threadsafe(_resolve, theirs)
        except RuntimeError:  # the loop was closed: nobody is waiting any more
            pass


def _resolve(requests: list[_Request]) -> None:
    for request in requests:
        if request.done is None:
            continue
        try:
            request.done(request.result if request.error is None else None, request.error)
        except Exception as exc:  # one answer's bug must not leave the rest of its transaction unanswered
            asyncio.get_running_loop().call_exception_handler(
                {"message": "answering a request", "exception": exc}
            )
