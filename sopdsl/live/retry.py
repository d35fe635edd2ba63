"""The one retry policy of the runtime: how often a failing executor is tried and how long between tries.

Input: how many tries in all, the first delay and its cap. Output: the delay after the n-th
failure (doubling, capped, and never shorter than a `Retry-After` the receiver asked for), for
the outbox (which retries an action later, across restarts) and, through tenacity, for the
webhook and WeCom executors (which retry one delivery within a call). One policy, so they cannot drift.

What may be tried again is the caller's to say, by this rule: a call that is safe to repeat (a
read, setting a tag, a message the receiver drops when repeated) may be tried after any failure;
one that is not (a WeCom mass send) only when it surely did not take effect: the connection was
never made (`unsent`), or the receiver answered that it did nothing. After a timeout or a
connection dropped once the request was written, its outcome is unknown, and trying it again
could do it twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx
import tenacity

T = TypeVar("T")

# No connection was made (refused, or none within the timeout, or none free in the pool), so the
# request never reached the receiver. Every other transport error may come after it was sent.
_UNSENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def unsent(error: BaseException) -> bool:
    """Whether a failed HTTP call surely never reached the receiver (so repeating it cannot do it twice)."""
    return isinstance(error, _UNSENT)


@dataclass(frozen=True)
class RetryPolicy:
    """How often a failing executor is tried (`attempts` calls in all) and how long between tries."""

    attempts: int = 5
    base: float = 30.0  # seconds before the second try; doubled for each one after
    cap: float = 3600.0
    max_retry_after: float = 3600.0  # seconds: a receiver's Retry-After is honoured up to this

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the `failures`-th failed call; at least `retry_after` (capped) if given."""
        backoff = float(min(self.cap, self.base * 2 ** max(0, failures - 1)))
        if retry_after is not None:
            backoff = max(backoff, min(retry_after, self.max_retry_after))
        return backoff

    def call(
        self,
        attempt: Callable[[int], T],
        *,
        retry_on: type[BaseException],
        sleep: Callable[[float], None],
    ) -> T:
        """`attempt(n)` for n = 1, 2, ... until it returns, raises something other than `retry_on`,
        or `attempts` are spent (the last error is raised). A `retry_after` attribute of the error
        (a receiver's `Retry-After`) lengthens the wait."""

        def wait(state: tenacity.RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome is not None else None
            return self.delay(state.attempt_number, getattr(error, "retry_after", None))

        count = 0

        def once() -> T:
            nonlocal count
            count += 1
            return attempt(count)

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(max(1, self.attempts)),
            wait=wait,
            retry=tenacity.retry_if_exception_type(retry_on),
            sleep=sleep,
            reraise=True,
        )
        return retrying(once)
