"""Actions on Temporal: a failing executor is retried alone, with the member's later actions held
until it succeeds; an error that cannot succeed parks the action, shown by the shard's status."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from temporalserver import Recorder

import sopdsl
from sopdsl.engine.records import GroupRecord

START = 1_772_330_400

PLAYBOOK = """
timezone "UTC"
template hello = "hi {{ member.name }}"
template rules = "the rules"
playbook welcome {
    on member joins
    do {
        send hello to member
        send rules to member
    }
}
"""


class Flaky(Recorder):
    """Fails m1's first call (for a moment), and every call for m2 (for good)."""

    def __init__(self) -> None:
        super().__init__()
        self.tries: dict[str, int] = {}
        self._count = threading.Lock()

    def __call__(self, action: Any, key: str) -> None:
        with self._count:
            self.tries[key] = self.tries.get(key, 0) + 1
            first = self.tries[key] == 1
        if action.member == "m1" and action.detail["template"] == "hello" and first:
            raise ConnectionError("the chat API timed out")
        if action.member == "m2":
            error = ValueError("this member blocked the bot")
            error.permanent = True  # type: ignore[attr-defined]
            raise error
        super().__call__(action, key)


def test_a_failing_executor_is_retried_in_order_and_a_hopeless_one_parks(temporal_server: str) -> None:
    from temporalio.client import Client

    from sopdsl.temporal.client import ShardClient
    from sopdsl.temporal.shapes import SIGNALLED, Retry
    from sopdsl.temporal.worker import make_worker

    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(PLAYBOOK, "welcome.sop")))
    flaky = Flaky()

    async def main() -> dict[str, Any]:
        client = await Client.connect(temporal_server)
        retry = Retry(attempts=3, base=0.2, timeout=10)
        sender = ShardClient(
            client, plan, shard="flaky", start=START, clock=SIGNALLED, retry=retry, task_queue="flaky"
        )
        async with make_worker(client, plan, flaky.executors(), task_queue="flaky"):
            await sender.register([GroupRecord("g1")], at=START)
            joins = [
                {"id": m, "kind": "join", "member": m, "group": "g1", "time": START} for m in ("m1", "m2")
            ]
            await sender.feed(joins)
            return await sender.flush(timeout=60)

    status = asyncio.run(main())
    done = [(a.member, a.detail["template"]) for _, a in flaky.calls]
    assert done == [("m1", "hello"), ("m1", "rules")]  # the retry came first, then the rest, in order
    assert max(n for k, n in flaky.tries.items()) == 2 and len(flaky.tries) == 4
    assert status["executed"] == 2 and status["parked"] == 2
    assert {p["error"] for p in status["parked_actions"]} == {"ValueError: this member blocked the bot"}


def test_an_async_executor_is_awaited_on_the_workers_loop_and_retried(temporal_server: str) -> None:
    """An `async def` executor's action counts as done only once it has run (on the loop the
    worker was made on, so a client session the bot made there works); one that raises is retried."""
    from temporalio.client import Client

    from sopdsl.temporal.client import ShardClient
    from sopdsl.temporal.shapes import SIGNALLED, Retry
    from sopdsl.temporal.worker import make_worker

    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(PLAYBOOK, "welcome.sop")))
    sent: list[tuple[str, str, str]] = []
    tries: dict[str, int] = {}
    loops: set[int] = set()

    async def send(action: Any, key: str) -> None:
        loops.add(id(asyncio.get_running_loop()))
        tries[key] = tries.get(key, 0) + 1
        await asyncio.sleep(0.01)
        if action.member == "m1" and action.detail["template"] == "hello" and tries[key] == 1:
            raise ConnectionError("the chat API timed out")
        sent.append((key, action.member, action.detail["template"]))

    async def main() -> tuple[dict[str, Any], int]:
        client = await Client.connect(temporal_server)
        retry = Retry(attempts=3, base=0.2, timeout=10)
        sender = ShardClient(
            client, plan, shard="awaited", start=START, clock=SIGNALLED, retry=retry, task_queue="awaited"
        )
        async with make_worker(client, plan, {"send": send}, task_queue="awaited"):
            await sender.register([GroupRecord("g1")], at=START)
            joins = [
                {"id": m, "kind": "join", "member": m, "group": "g1", "time": START} for m in ("m1", "m2")
            ]
            await sender.feed(joins)
            return await sender.flush(timeout=60), id(asyncio.get_running_loop())

    status, worker_loop = asyncio.run(main())
    assert sorted((member, template) for _, member, template in sent) == [
        ("m1", "hello"),
        ("m1", "rules"),
        ("m2", "hello"),
        ("m2", "rules"),
    ]
    m1 = [template for _, member, template in sent if member == "m1"]
    assert m1 == ["hello", "rules"]  # the retried one first, then the rest, in order
    assert status["executed"] == 4 and status.get("parked", 0) == 0
    assert loops == {worker_loop}


def test_an_async_executor_still_running_at_the_activitys_timeout_is_cancelled_and_parked(
    temporal_server: str,
) -> None:
    """A hung async call (an HTTP request without a timeout) does not hold a worker's activity
    thread: it is cancelled at the activity's timeout, and the action is parked once its tries are up."""
    from temporalio.client import Client

    from sopdsl.temporal.client import ShardClient
    from sopdsl.temporal.shapes import SIGNALLED, Retry
    from sopdsl.temporal.worker import make_worker

    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(PLAYBOOK, "welcome.sop")))
    cancelled: list[str] = []

    async def send(action: Any, key: str) -> None:
        try:
            await asyncio.Event().wait()  # never answers
        except asyncio.CancelledError:
            cancelled.append(key)
            raise

    async def main() -> dict[str, Any]:
        client = await Client.connect(temporal_server)
        retry = Retry(attempts=1, base=0.2, timeout=2)
        sender = ShardClient(
            client, plan, shard="hung", start=START, clock=SIGNALLED, retry=retry, task_queue="hung"
        )
        async with make_worker(client, plan, {"send": send}, task_queue="hung"):
            await sender.register([GroupRecord("g1")], at=START)
            await sender.feed([{"id": "m1", "kind": "join", "member": "m1", "group": "g1", "time": START}])
            return await sender.flush(timeout=60)

    status = asyncio.run(main())
    assert status.get("executed", 0) == 0 and status["parked"] == 2
    assert cancelled  # the hung call was cancelled, not left running
