"""Group commit: the events of requests arriving together go into the store in one transaction.

Input: each request's events (already checked to be JSON objects), from many HTTP handler threads
at once. Output: for each request, its own `Fed` (its actions, its duplicates) or the error its
events raised; a request is answered only once the transaction holding its events committed. One
thread commits; while it does, new requests queue, and the next transaction takes them all, so
under load many requests share one transaction and one fsync (SQLite's `synchronous=FULL`, or a
PostgreSQL commit) instead of paying one each. Alone, a request is committed at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from sopdsl.errors import SopdslError
from sopdsl.live.shards import Fed

MAX_EVENTS = 2000  # events in one shared transaction at most: bounds the wait of the last request in it


class ClosedError(Exception):
    """A request came after `close`: it was not fed."""


@dataclass
class _Request:
    events: list[dict[str, Any]]
    answer: Future[Fed] = field(default_factory=Future)


class GroupCommitter:
    """Feeds requests' events through `feed_batch`, several requests a transaction; `submit`, then `close`."""

    def __init__(self, feed_batch: Callable[[list[dict[str, Any]]], Fed]) -> None:
        self.feed_batch = feed_batch
        self.transactions = 0  # how many were committed: requests per transaction is the gain
        self._queue: list[_Request] = []
        self._ready = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="sopdsl-commit", daemon=True)
        self._thread.start()

    def submit(self, events: list[dict[str, Any]]) -> Fed:
        """Feed one request's events (all or none) and wait for their commit; raise what feeding them raised."""
        request = _Request(events)
        with self._ready:
            if self._closed:
                raise ClosedError("the service is shutting down; send the events again later")
            self._queue.append(request)
            self._ready.notify()
        return request.answer.result()

    def close(self) -> None:
        """Commit what is queued, then stop (idempotent)."""
        with self._ready:
            self._closed = True
            self._ready.notify()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._closed:
                    self._ready.wait()
                if not self._queue:
                    return
                taken: list[_Request] = []
                size = 0
                while self._queue and (not taken or size + len(self._queue[0].events) <= MAX_EVENTS):
                    size += len(self._queue[0].events)
                    taken.append(self._queue.pop(0))
            self._commit(taken)

    def _commit(self, requests: list[_Request]) -> None:
        events = [event for request in requests for event in request.events]
        try:
            fed = self.feed_batch(events)
            self.transactions += 1
        except SopdslError as exc:
            if len(requests) == 1:
                requests[0].answer.set_exception(exc)
                return
            # One request's bad event fails the shared transaction: each goes again on its own,
            # so only that request is refused.
            for request in requests:
                self._commit([request])
            return
        except BaseException as exc:
            for request in requests:
                request.answer.set_exception(exc)
            return
        start = 0
        actions = iter(fed.actions)
        for _ in range(len(fed.actions) - sum(fed.caused)):
            next(actions)  # entries another front end journaled, applied first: nobody's here
        duplicates = set(fed.duplicates)
        for request in requests:
            end = start + len(request.events)
            counts = fed.caused[start:end] or [0] * len(request.events)
            mine = [next(actions) for _ in range(sum(counts))]
            request.answer.set_result(
                Fed(mine, [i - start for i in range(start, end) if i in duplicates], counts)
            )
            start = end
