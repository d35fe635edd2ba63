"""`sopdsl run --engine temporal://...`: the service's runtime, forwarding to Temporal, with a worker.

Input: what the HTTP service hands a runtime (`live.service.RuntimeLike`): batches of events,
groups and members, plan changes (SIGHUP). Output: the same entries signalled to the shard's
workflow (`client.ShardClient`), and, in the same process, a worker that runs shard workflows
and calls the executors. The service's threads call in; the Temporal client and the worker live
on one asyncio loop in a thread of their own. Actions are decided in the workflow, so an HTTP
answer lists none (`queued` stays empty) and duplicates are counted by the shard (`/metrics`).
The admin API's views of the engine (`look`) and its task inbox (`task_inbox`) are the workflow's
`look` and `tasks` updates, and `/report` its per-playbook figures (`report_facts`), which the
workflow keeps in its state; there is no store, so no per-group figures are kept.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine, Iterable, Mapping
from concurrent.futures import Future
from typing import Any, TypeVar

from temporalio.worker import Worker

from sopdsl.engine.engine import Engine
from sopdsl.engine.records import GroupRecord, MemberRecord
from sopdsl.engine.versions import PlanChange
from sopdsl.errors import EngineError, SopdslError
from sopdsl.live.dispatch import CustomAction, Executor, missing_executors, registry
from sopdsl.live.fed import Fed
from sopdsl.live.retention import TEMPORAL_DAYS
from sopdsl.plan import Plan
from sopdsl.temporal.client import ShardClient, connect
from sopdsl.temporal.shapes import FIGURES, INBOX, SPAN, TASK_QUEUE

T = TypeVar("T")

log = logging.getLogger("sopdsl.temporal")

_CONNECT = 30.0  # seconds to reach the server at start


class TemporalConnectError(SopdslError):
    """The Temporal server named by `--engine` does not answer."""


class TemporalFront:
    """The runtime `sopdsl run` serves when the shards run on Temporal; see the module docstring."""

    def __init__(
        self,
        plan: Plan,
        url: str,
        *,
        executors: Mapping[str, Executor | CustomAction],
        shard: str = "default",
        seed: int = 0,
        dry_run: bool = False,
        worker: str | None = None,
        task_queue: str = TASK_QUEUE,
        run_worker: bool = True,
        keep_days: float = TEMPORAL_DAYS,
    ) -> None:
        from sopdsl.temporal.worker import make_worker

        self.plan = plan if plan.content_hash else plan.with_hash()
        self.shard = shard
        self._given = dict(executors)
        self.executors = registry(self.plan, executors)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sopdsl-temporal", daemon=True)
        self._thread.start()
        try:
            client = self._call(connect(url), timeout=_CONNECT)
        except Exception as exc:
            self._stop_loop()
            raise TemporalConnectError(f"cannot reach Temporal at {url}: {exc}") from None
        self.client = ShardClient(
            client,
            self.plan,
            shard=shard,
            seed=seed,
            dry_run=dry_run,
            task_queue=task_queue,
            keep_days=keep_days,
        )
        self.worker: Worker | None = None
        self._running: Future[None] | None = None
        if run_worker:

            async def build() -> Worker:  # a worker is made on the loop it runs on
                return make_worker(client, self.plan, executors, task_queue=task_queue, identity=worker)

            self.worker = self._call(build())
            self._running = asyncio.run_coroutine_threadsafe(self.worker.run(), self._loop)
        self.closed = False
        self.task_inbox = WorkflowInbox(self)

    def _call(self, job: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(job, self._loop).result(timeout)

    # ---- what the service calls --------------------------------------------------------------

    def feed_batch(self, events: Iterable[Mapping[str, Any]]) -> Fed:
        """Check the events (`EventError` with the place of a bad one) and forward them, all or none."""
        bodies = self.client.check(events)
        self._call(self.client.send(bodies))
        return Fed([], [], [0] * len(bodies))

    def tick(self, now: int | None = None) -> list[Any]:
        """Nothing to do here: the shard's workflow runs its own timers."""
        return []

    def stats(self) -> dict[str, int]:
        """The shard's counters, under the names the live runtime's metrics use."""
        status = self._call(self.client.status()) or {}
        return {
            "events_in": int(status.get("events_in", 0)),
            "actions_out": int(status.get("executed", 0)),
            "timers_pending": int(status.get("next_due") is not None),
            "failures": int(status.get("parked", 0)),
            "parked": int(status.get("parked", 0)),
            "pending": int(status.get("pending", 0)),
            "actions_failed": int(status.get("failed", 0)),
        }

    def register(self, records: Iterable[GroupRecord | MemberRecord]) -> None:
        """Register or update groups and members in the shard (as `Runtime.register`)."""
        self._call(self.client.register(list(records)))

    def reload(self, plan: Plan) -> list[PlanChange]:
        """Switch the shard to another plan; its workflow decides each flow in progress (and logs it)."""
        plan = plan if plan.content_hash else plan.with_hash()
        if plan.content_hash != self.plan.content_hash:
            self.executors = registry(plan, self._given)
            self._call(self.client.reload(plan))
            self.plan = plan
        return []

    def missing_executors(self) -> list[str]:
        """Action kinds the plan can emit that no executor handles."""
        return missing_executors(self.plan, self.executors)

    def look(self, view: str, argument: str) -> Any:
        """A view of the shard's engine by name (`admin_views.VIEWS`), asked of its workflow once
        the entries sent so far are applied (so a `PUT` is read back as applied)."""
        return self._call(self.client.look(view, argument))

    def report_facts(self, lo: int, hi: int) -> Any:
        """What `GET /report` of engine times [lo, hi) is made of (`live/report.Facts`), from the
        shard's workflow: its per-playbook figures and its engine (no per-group figures are kept)."""
        from sopdsl.live.report import facts_of
        from sopdsl.live.store_figures import found_of

        view = self.look(FIGURES, f"{lo} {hi}")
        return facts_of(found_of(view), view)

    def report_span(self) -> tuple[int, int] | None:
        """The engine times the shard's figures span (as `Store.figures_span`), asked of its
        workflow: the days a report of days without any names (`live/report.no_figures`)."""
        span = self.look(SPAN, "")
        return (int(span[0]), int(span[1])) if span else None

    def read(self, look: Any) -> Any:
        """Not here: the engine lives in the shard's workflow (its counters: the `status` query)."""
        raise EngineError("the engine runs in the shard's Temporal workflow; query its status instead")

    def engine(self) -> Engine:
        """Not here, as `read`."""
        raise EngineError("the engine runs in the shard's Temporal workflow; query its status instead")

    def close(self) -> None:
        """Stop the worker (letting its tasks finish) and the loop (idempotent)."""
        if self.closed:
            return
        self.closed = True
        try:
            if self.worker is not None and self._running is not None:
                self._call(self.worker.shutdown())
                self._running.result(timeout=30)
        except Exception:
            # A worker that failed (its server gone, say) has nothing left to finish: stop anyway.
            log.exception("sopdsl run: the Temporal worker did not stop cleanly")
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


class WorkflowInbox:
    """The task inbox of a Temporal shard (`admin_views.TaskInbox`): read from its workflow (the
    task actions it decided, staff's marks, the open tasks of its engine) and marked there."""

    def __init__(self, front: TemporalFront) -> None:
        self.front = front

    def tasks(self) -> list[dict[str, Any]]:
        """The inbox, once the entries sent so far are applied."""
        found: list[dict[str, Any]] = self.front.look(INBOX, "")
        return found

    def task(self, key: str) -> dict[str, Any] | None:
        """The task keyed `key` (None: not in the inbox); the workflow keeps only the rows of
        tasks still shown, so the whole inbox is a small read."""
        return next((t for t in self.tasks() if t["key"] == key), None)

    def claim(self, key: str, who: str) -> str:
        """Claim a task for `who` unless someone holds it; who holds it now."""
        return self.front._call(self.front.client.mark_task("claim", key, who))

    def finish(self, key: str) -> None:
        """Mark a task done."""
        self.front._call(self.front.client.mark_task("finish", key))
