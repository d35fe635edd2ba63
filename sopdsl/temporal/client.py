"""The client side: events checked at the door, then forwarded to a shard's workflow.

Input: events as a bot sends them (the live runtime's JSON), groups and members, plan changes,
and, for a signalled clock (tests, replays), the passing of time. Output: `entries` signals to
the shard's workflow, by signal-with-start, so the first entry starts it and every later one
finds it. Events are checked as the live runtime checks them (`live/intake.py`), so a bad event
is answered with the field at fault before it reaches the workflow.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.runtime import LogForwardingConfig, LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.service import RPCError, RPCStatusCode

from sopdsl.engine.events import Event
from sopdsl.engine.records import GroupRecord, MemberRecord
from sopdsl.live.admin_views import VIEWS
from sopdsl.live.intake import EventError, intake
from sopdsl.live.record_limits import check
from sopdsl.live.retention import TEMPORAL_DAYS
from sopdsl.plan import Plan
from sopdsl.temporal.shapes import (
    ENTRIES,
    FIGURES,
    FLUSH,
    INBOX,
    LOOK,
    SPAN,
    STATUS,
    TASK_QUEUE,
    TASKS,
    WALL,
    WORKFLOW,
    Retry,
    ShardInput,
    parse_url,
    workflow_id,
)

_RUNTIMES: list[Runtime] = []


def runtime() -> Runtime:
    """The SDK's runtime for this process, its core's warnings sent to Python's logging (stderr),
    not printed on stdout, where `sopdsl run` writes the actions its log executor carries out."""
    if not _RUNTIMES:
        forward = LogForwardingConfig(logger=logging.getLogger("sopdsl.temporal.core"))
        levels = TelemetryFilter(core_level="WARN", other_level="WARN")
        _RUNTIMES.append(Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(levels, forward))))
    return _RUNTIMES[0]


async def connect(url: str) -> Client:
    """A client of the Temporal server a `temporal://host:port/namespace` URL names."""
    target = parse_url(url)
    return await Client.connect(target.address, namespace=target.namespace, runtime=runtime())


class ShardClient:
    """Sends one shard's entries to its workflow; `clock=SIGNALLED` moves time by `advance` alone."""

    def __init__(
        self,
        client: Client,
        plan: Plan,
        *,
        shard: str = "default",
        seed: int = 0,
        start: int | None = None,
        clock: str = WALL,
        retry: Retry | None = None,
        dry_run: bool = False,
        task_queue: str = TASK_QUEUE,
        continue_after: int = 10_000,
        keep_days: float = TEMPORAL_DAYS,
    ) -> None:
        self.client = client
        self.plan = plan if plan.content_hash else plan.with_hash()
        self.shard = shard
        self.seed = seed
        self.start = start
        self.clock = clock
        self.retry = retry or Retry()
        self.dry_run = dry_run
        self.task_queue = task_queue
        self.continue_after = continue_after
        self.keep_days = keep_days

    def now(self) -> int:
        """The client's clock (the wall clock), which stamps entries that carry no time."""
        return int(time.time())

    def handle(self) -> WorkflowHandle[Any, Any]:
        """The handle of the shard's workflow (its latest run)."""
        return self.client.get_workflow_handle(workflow_id(self.shard))

    def check(
        self, events: Iterable[Mapping[str, Any] | Event], now: int | None = None
    ) -> list[dict[str, Any]]:
        """The entries of events, checked; `EventError` (with the event's place) for a bad one."""
        moment = self.now() if now is None else now
        bodies = []
        for index, event in enumerate(events):
            try:
                bodies.append(intake(event, self.plan.declarations, moment))
            except EventError as exc:
                raise EventError(exc.reason, exc.field, index) from None
        return bodies

    async def send(self, bodies: list[dict[str, Any]]) -> None:
        """Signal entries to the shard's workflow, starting it if it is not running (signal-with-start)."""
        if not bodies:
            return
        first = ShardInput(
            shard=self.shard,
            plan=self.plan.content_hash,
            plans={self.plan.content_hash: self.plan.dumps()},
            start=self.start if self.start is not None else self.now(),
            seed=self.seed,
            clock=self.clock,
            retry=self.retry,
            dry_run=self.dry_run,
            continue_after=self.continue_after,
            keep_days=self.keep_days,
        )
        await self.client.start_workflow(
            WORKFLOW,
            args=[first, b""],
            id=workflow_id(self.shard),
            task_queue=self.task_queue,
            start_signal=ENTRIES,
            start_signal_args=[bodies],
        )

    async def feed(self, events: Iterable[Mapping[str, Any] | Event]) -> list[dict[str, Any]]:
        """Check events and forward them, in order; the entries sent."""
        bodies = self.check(events)
        await self.send(bodies)
        return bodies

    async def register(self, records: Iterable[GroupRecord | MemberRecord], *, at: int | None = None) -> None:
        """Register or update groups and members (as `Runtime.register`)."""
        moment = self.now() if at is None else at
        bodies = []
        for index, record in enumerate(records):
            check(record, index)  # as `Runtime.register`: `RecordError`, and nothing sent
            op = "group" if isinstance(record, GroupRecord) else "member"
            bodies.append({"op": op, "time": moment, **record.journal_body()})
        await self.send(bodies)

    async def advance(self, until: int) -> None:
        """Move a signalled clock to `until`: the timers due by then run."""
        await self.send([{"op": "advance", "until": until}])

    async def reload(self, plan: Plan, *, at: int | None = None) -> None:
        """Switch the shard to another version of the plan: flows in progress finish or migrate
        as each playbook's `on change` says. The plan's text travels with the entry."""
        plan = plan if plan.content_hash else plan.with_hash()
        moment = self.now() if at is None else at
        await self.send([{"op": "plan", "hash": plan.content_hash, "time": moment, "text": plan.dumps()}])
        self.plan = plan

    async def status(self) -> dict[str, Any] | None:
        """The shard's counters, or None while it has no workflow."""
        try:
            found: dict[str, Any] = await self.handle().query(STATUS)
        except RPCError:
            return None
        return found

    async def look(self, view: str, argument: str = "", *, timeout: float = 60.0) -> Any:
        """A view of the shard's engine (`admin_views.VIEWS`) once the entries sent so far are
        applied; a shard with no workflow yet has no groups, members or tasks."""
        if view not in VIEWS and view not in (INBOX, FIGURES, SPAN):
            raise KeyError(f"no view '{view}'; views: {', '.join(VIEWS)}, {INBOX}, {FIGURES}, {SPAN}")
        deadline = time.monotonic() + timeout
        while True:
            try:
                found: dict[str, Any] = await asyncio.wait_for(
                    self.handle().execute_update(LOOK, args=[view, argument]),
                    max(0.1, deadline - time.monotonic()),
                )
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
                if view == FIGURES:
                    return {"groups": [], "running": {}}  # nothing was ever sent to this shard
                return [] if view in ("tasks", INBOX) else None
            except WorkflowUpdateFailedError:
                found = {"settled": False}  # the run ended under the update (continue-as-new)
            if found.get("settled"):
                return found["found"]
            if time.monotonic() > deadline:
                raise TimeoutError(f"shard '{self.shard}' did not settle in {timeout} s")
            await asyncio.sleep(0.1)

    async def mark_task(self, op: str, key: str, who: str = "") -> str:
        """`claim` a staff task for `who` (who holds it now) or `finish` it, in the shard's workflow."""
        deadline = time.monotonic() + 60.0
        while True:
            try:
                holder: str = await self.handle().execute_update(TASKS, args=[op, key, who])
            except WorkflowUpdateFailedError:
                # The run ended under the update (continue-as-new): ask the next run.
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
                continue
            return holder

    async def flush(self, *, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until the shard has applied every entry sent so far and run every action; its status."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                found: dict[str, Any] = await asyncio.wait_for(
                    self.handle().execute_update(FLUSH), max(0.1, deadline - time.monotonic())
                )
            except (WorkflowUpdateFailedError, RPCError):
                found = {"settled": False}  # the run ended under the update (continue-as-new)
            if found.get("settled"):
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"shard '{self.shard}' did not settle in {timeout} s")
            await asyncio.sleep(0.1)
