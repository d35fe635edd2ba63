"""Async executors: what an `async def` executor returns, awaited before its action counts as done.

Input: the awaitable an executor returned, and the event loop `Runtime.run_async` runs on (if
any). Output: the executor's outcome, as a plain call's would be: it returns, or it raises (and
the action is retried or parked like any failed one). Without this, the coroutine object was
taken for success and the action marked done without ever running.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
from collections.abc import Awaitable

from sopdsl.live.dispatch import ExecutorError


def settle(
    pending: Awaitable[object],
    loop: asyncio.AbstractEventLoop | None,
    timeout: float,
    bound: str = "the runtime's lease",
) -> None:
    """Await an async executor's call: on the bot's loop while `run_async` runs it (so the
    executor may use what the bot made on it, a client session), else on a loop of its own; a call
    over `timeout` s (`bound` says whose) is cancelled and raises `TimeoutError`, to be retried."""

    async def within() -> None:
        try:
            await asyncio.wait_for(pending, timeout)
        except TimeoutError:
            raise TimeoutError(
                f"the async executor took over {timeout:g} s ({bound}); cancelled, to be retried"
            ) from None

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        # This thread is an event loop's: blocking it on the loop would never return.
        if inspect.iscoroutine(pending):
            pending.close()
        raise ExecutorError(
            "an async executor was called on the thread of a running event loop, where it cannot be "
            "awaited: run the runtime with `await runtime.run_async()`, or call tick()/dispatch() "
            "through `await asyncio.to_thread(...)`"
        )
    if loop is not None and loop.is_running():
        future = asyncio.run_coroutine_threadsafe(within(), loop)
        try:
            # Bounded here too: a loop stopped meanwhile would never finish the call.
            future.result(timeout + 1)
        except concurrent.futures.TimeoutError:
            future.cancel()
            # Once the loop runs again: a call it never began is dropped without a warning.
            loop.call_soon_threadsafe(_drop, pending)
            raise TimeoutError(
                f"the async executor did not finish within {timeout:g} s: the event loop it runs on "
                "stopped or is blocked; to be retried"
            ) from None
    else:
        asyncio.run(within())


def _drop(pending: Awaitable[object]) -> None:
    if inspect.iscoroutine(pending) and inspect.getcoroutinestate(pending) == inspect.CORO_CREATED:
        pending.close()
