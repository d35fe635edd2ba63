"""A Temporal worker for sopdsl: the shard workflows and the activity that calls the executors.

Input: a connected Temporal client, the plan (for custom actions' schemas) and the executors.
Output: a `temporalio.worker.Worker` polling the task queue. Any number of workers share the
shards of one task queue: Temporal hands each workflow task and each activity to one of them,
and a workflow whose worker died is replayed on another from its history.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from sopdsl.engine.engine import Engine
from sopdsl.live.dispatch import CustomAction, Executor, registry
from sopdsl.plan import Plan
from sopdsl.temporal.activities import Executing
from sopdsl.temporal.shapes import TASK_QUEUE
from sopdsl.temporal.workflow import ShardWorkflow

# Executor calls at once per worker: they wait on the network (webhooks), not the CPU.
ACTIVITY_THREADS = 16


def restrictions() -> SandboxRestrictions:
    """The sandbox's default restrictions, with sopdsl's dependencies passed through.

    The workflow module passes sopdsl itself through; these are what sopdsl imports, so the
    sandbox does not re-import them (pydantic and msgspec build C types once per process).
    """
    return SandboxRestrictions.default.with_passthrough_modules(
        "msgspec", "pydantic", "pydantic_core", "jinja2", "markupsafe", "croniter", "dateutil", "yaml"
    )


def make_worker(
    client: Client,
    plan: Plan,
    executors: Mapping[str, Executor | CustomAction],
    *,
    task_queue: str = TASK_QUEUE,
    identity: str | None = None,
    max_cached_workflows: int = 1000,
) -> Worker:
    """A worker for the shard workflows of `task_queue`, calling `executors` (checked against `plan`).

    Made on the asyncio loop it will run on."""
    # The snapshot codec reads the engine's records' type hints once per process (cached). Read
    # inside the sandbox, they would not resolve (its `sys.modules` is its own): read them here.
    Engine.restore(Engine(plan, start=0, keep_log=False).snapshot(), lambda _: plan, keep_log=False)
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    # Async executors are awaited on this loop, as under `Runtime.run_async`: what the bot made
    # on it (a client session) works in them.
    executing = Executing(registry(plan, executors), loop)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[ShardWorkflow],
        activities=[executing.execute, executing.execute_batch],
        activity_executor=ThreadPoolExecutor(max_workers=ACTIVITY_THREADS, thread_name_prefix="sopdsl-act"),
        max_concurrent_activities=ACTIVITY_THREADS,
        workflow_runner=SandboxedWorkflowRunner(restrictions=restrictions()),
        max_cached_workflows=max_cached_workflows,
        identity=identity,
    )
