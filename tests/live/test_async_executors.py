"""Async executors (`async def send(action, key)`), as an asyncio bot writes them: awaited before
their action counts as done, on the bot's own event loop under `run_async`; failing or hanging
ones are retried and parked like any other, never taken for done unrun."""

from __future__ import annotations

import asyncio
import threading
import time
import warnings
from typing import Any

from pydantic import BaseModel
from runtime_helpers import START, join, plan_of

from sopdsl.engine.actions import Action
from sopdsl.live.runtime import ManualClock, RealClock, RetryPolicy, Runtime


def test_an_async_executor_runs_on_the_bots_loop_under_run_async() -> None:
    sent: list[tuple[str, bool]] = []

    async def main() -> None:
        bots_loop = asyncio.get_running_loop()
        ready = asyncio.Event()  # bound to the bot's loop, as an HTTP client session would be

        async def send(action: Action, key: str) -> None:
            ready.set()
            await asyncio.sleep(0.01)
            sent.append((action.detail["text"], asyncio.get_running_loop() is bots_loop))

        rt = Runtime(plan_of(), "memory://", executors={"send": send}, clock=RealClock())
        stop = asyncio.Event()
        task = asyncio.create_task(rt.run_async(stop))
        await asyncio.to_thread(rt.feed, {"kind": "join", "member": "m1", "group": "g1"})
        await asyncio.wait_for(ready.wait(), timeout=10)
        for _ in range(500):
            if sent:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, timeout=5)
        assert rt.stats()["actions_out"] == 1
        rt.close()

    asyncio.run(main())
    assert sent == [("欢迎 m1", True)]


def test_an_async_executor_and_an_async_custom_action_are_awaited_by_tick() -> None:
    got: list[Any] = []

    class Note(BaseModel):
        level: str
        score: float

    async def send(action: Action, key: str) -> None:
        await asyncio.sleep(0)
        got.append(action.detail["text"])

    async def note(args: BaseModel, action: Action, key: str) -> None:
        await asyncio.sleep(0)
        got.append(args)

    rt = Runtime(plan_of(), "memory://", executors={"send": send}, clock=ManualClock(START))
    rt.register_custom("crm_note", Note, note)
    rt.feed(join("m1", START))
    rt.feed(
        {
            "kind": "custom",
            "name": "share_photo",
            "member": "m1",
            "group": "g1",
            "data": {"image": "a.jpg", "likes": 3},
            "time": START,
        }
    )
    rt.tick()
    assert got == ["欢迎 m1", Note(level="vip", score=3)]
    rt.close()


def test_a_failing_async_executor_is_retried_then_parked_not_taken_for_done() -> None:
    clock = ManualClock(START)
    tries: list[str] = []

    async def send(action: Action, key: str) -> None:
        await asyncio.sleep(0)
        tries.append(key)
        raise ConnectionError("wechat gateway down")

    rt = Runtime(
        plan_of(),
        "memory://",
        executors={"send": send},
        clock=clock,
        retry=RetryPolicy(attempts=2, base=30, cap=60),
    )
    rt.feed(join("m1", START))
    rt.tick()
    clock.advance(30)
    rt.tick()
    assert len(tries) == 2
    assert rt.stats()["actions_out"] == 0
    [parked] = rt.parked()
    assert parked.error == "ConnectionError: wechat gateway down"
    rt.close()


def test_an_async_executor_that_hangs_is_cancelled_after_the_lease_and_retried() -> None:
    cancelled = threading.Event()

    async def send(action: Action, key: str) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    rt = Runtime(plan_of(), "memory://", executors={"send": send}, clock=ManualClock(START), lease=0.2)
    rt.feed(join("m1", START))
    rt.tick()
    assert cancelled.is_set()
    stats = rt.stats()
    assert (stats["failures"], stats["pending"], stats["actions_out"]) == (1, 1, 0)
    rt.close()


def test_an_async_executor_dispatched_on_the_loops_own_thread_is_parked_saying_why() -> None:
    async def send(action: Action, key: str) -> None:
        raise AssertionError("never awaited here")

    rt = Runtime(plan_of(), "memory://", executors={"send": send}, clock=ManualClock(START))
    rt.feed(join("m1", START))

    async def main() -> None:
        rt.tick()  # on the loop's thread: blocking it to await would hang the bot

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "coroutine was never awaited"
        asyncio.run(main())
    [parked] = rt.parked()
    assert parked.error is not None
    assert "run_async" in parked.error and "asyncio.to_thread" in parked.error
    rt.close()


def test_an_async_executor_on_a_blocked_event_loop_is_given_up_after_the_lease_and_retried() -> None:
    loop = asyncio.new_event_loop()
    release = threading.Event()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    loop.call_soon_threadsafe(release.wait, 30)  # the bot's loop, stuck in a blocking call
    ran: list[str] = []

    async def send(action: Action, key: str) -> None:
        ran.append(key)

    rt = Runtime(plan_of(), "memory://", executors={"send": send}, clock=ManualClock(START), lease=0.2)
    rt.event_loop = loop  # as run_async sets it
    rt.feed(join("m1", START))
    began = time.monotonic()
    rt.tick()
    assert time.monotonic() - began < 10
    stats = rt.stats()
    assert (stats["failures"], stats["pending"], stats["actions_out"]) == (1, 1, 0)
    rt.close()
    release.set()
    asyncio.run_coroutine_threadsafe(asyncio.sleep(0.05), loop).result(5)  # it catches up
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)
    loop.close()
    assert ran == []  # cancelled before the loop ever ran it
