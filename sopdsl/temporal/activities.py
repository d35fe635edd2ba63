"""The activity that hands one action to its executor, with the action's idempotency key.

Input: `ActionCall`s (an action's fields and key): the actions one workflow step decided, as a
batch, and an action whose executor failed, alone. Output: the executors' calls, in order; for a
batch, which failed and why (the workflow retries those alone); for one action, an error
Temporal retries (with the executors' retry policy) or, when it cannot succeed, does not: no
executor for the kind, a custom action whose arguments do not fit, an error marked `permanent`.
A batch saves the round trips of an activity per action; a retry alone keeps the policy per action.
The executors are the live runtime's (`live/dispatch.py`, `live/executors_config.py`); an `async def`
one is awaited (`live/awaiting.py`) on the loop the worker was made on, as `Runtime.run_async` does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from datetime import timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from sopdsl.engine.actions import Action
from sopdsl.live.awaiting import settle
from sopdsl.live.dispatch import CustomAction, Executor, ExecutorError, resolve
from sopdsl.live.outbox import describe
from sopdsl.live.redact import redact_urls_in
from sopdsl.temporal.shapes import ACTIVITY, BATCH, ActionCall, BatchResult, Failed, Retry, order_of

log = logging.getLogger("sopdsl.temporal")


class Executing:
    """The action activity, over a table of executors (as `live.dispatch.registry` builds it), and
    the event loop async executors are awaited on (the worker's; without one, a loop per call)."""

    def __init__(
        self,
        executors: Mapping[str, Executor | CustomAction],
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.executors = dict(executors)
        self.loop = loop

    @activity.defn(name=ACTIVITY)
    def execute(self, call: ActionCall) -> None:
        """Call the action's executor with its key; raise so Temporal retries, or parks it."""
        failed = self._one(call, _deadline())
        if failed is not None:
            raise ApplicationError(
                failed.error,
                type="ExecutorError" if failed.permanent else "ExecutorFailed",
                non_retryable=failed.permanent,
                next_retry_delay=timedelta(seconds=failed.retry_after) if failed.retry_after else None,
            )

    @activity.defn(name=BATCH)
    def execute_batch(self, calls: list[ActionCall]) -> BatchResult:
        """Call each action's executor in order; after a member's action fails, leave their later ones untried."""
        result = BatchResult()
        deadline = _deadline()
        blocked: set[str] = set()
        for call in calls:
            order = order_of(call)
            if order in blocked:
                result.untried.append(call.key)
                continue
            failed = self._one(call, deadline)
            if failed is None:
                result.done.append(call.key)
            else:
                result.failed.append(failed)
                blocked.add(order)
        return result

    def _one(self, call: ActionCall, deadline: float) -> Failed | None:
        action = Action(**call.action)
        if call.dry_run:
            log.info("dry run: would %s %s (key %s)", action.kind, describe(action), call.key)
            return None
        executor = resolve(self.executors, action)
        try:
            if executor is None:
                raise ExecutorError(f"no executor is registered for '{action.kind}' actions")
            pending = executor(action, call.key)
            if pending is not None:
                # Without this the coroutine object was taken for success: done, and never sent.
                left = max(1.0, deadline - time.monotonic())
                settle(pending, self.loop, left, "the activity's start-to-close timeout")
        except Exception as exc:
            after = getattr(exc, "retry_after", None)
            return Failed(
                call.key,
                redact_urls_in(f"{type(exc).__name__}: {exc}"),
                permanent=bool(getattr(exc, "permanent", False)) or isinstance(exc, ExecutorError),
                retry_after=float(after) if after else None,
            )
        return None


def _deadline() -> float:
    """When (monotonic) this activity's start-to-close timeout ends: an async call is cancelled
    then, as Temporal gives the attempt up, rather than holding an activity thread after it."""
    limit = activity.info().start_to_close_timeout
    return time.monotonic() + (limit.total_seconds() if limit is not None else Retry().timeout)
