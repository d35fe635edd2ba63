"""The activity that hands one action to its executor, with the action's idempotency key.

Input: an `ActionCall` (the action's fields and key). Output: the executor's call, or an error
Temporal retries (with the executors' retry policy) or, when it cannot succeed, does not: no
executor for the kind, a custom action whose arguments do not fit, an error marked `permanent`.
The executors are the live runtime's (`live/dispatch.py`, `live/executors_config.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError

from sopdsl.engine.actions import Action
from sopdsl.live.dispatch import CustomAction, Executor, ExecutorError, resolve
from sopdsl.live.outbox import describe
from sopdsl.live.redact import redact_urls_in
from sopdsl.temporal.shapes import ACTIVITY, ActionCall

log = logging.getLogger("sopdsl.temporal")


class Executing:
    """The action activity, over a table of executors (as `live.dispatch.registry` builds it)."""

    def __init__(self, executors: Mapping[str, Executor | CustomAction]) -> None:
        self.executors = dict(executors)

    @activity.defn(name=ACTIVITY)
    def execute(self, call: ActionCall) -> None:
        """Call the action's executor with its key; raise so Temporal retries, or parks it."""
        action = Action(**call.action)
        if call.dry_run:
            log.info("dry run: would %s %s (key %s)", action.kind, describe(action), call.key)
            return
        executor = resolve(self.executors, action)
        try:
            if executor is None:
                raise ExecutorError(f"no executor is registered for '{action.kind}' actions")
            executor(action, call.key)
        except Exception as exc:
            message = redact_urls_in(f"{type(exc).__name__}: {exc}")
            permanent = bool(getattr(exc, "permanent", False)) or isinstance(exc, ExecutorError)
            after = getattr(exc, "retry_after", None)
            raise ApplicationError(
                message,
                type="ExecutorError" if permanent else type(exc).__name__,
                non_retryable=permanent,
                next_retry_delay=timedelta(seconds=float(after)) if after else None,
            ) from None
