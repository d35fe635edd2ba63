"""The runtime's loop: ticking on its clock until stopped, in a thread or under asyncio.

Input: a `Runtime` (its clock, store, wake-up event and `tick`). Output: timers run and due
actions dispatched as time passes, with a sleep until the next due work in between; a failing
turn is logged and retried, never ends the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import TYPE_CHECKING

from sopdsl.live.clock import RealClock

if TYPE_CHECKING:
    from sopdsl.live.runtime import Runtime

log = logging.getLogger("sopdsl.runtime")


def run(runtime: Runtime, stop: threading.Event | None = None, *, idle: float = 1.0) -> None:
    """Tick until `stop` is set (or the runtime is closed), sleeping until the next due work (at most `idle` s)."""
    stop = stop if stop is not None else threading.Event()
    while not stop.is_set() and not runtime.closed:
        delay = cycle(runtime, idle)
        if isinstance(runtime.clock, RealClock):
            # Sleep on the wake-up event so a fed event is dispatched at once; poll `stop` often.
            runtime.wake.wait(min(delay, 0.25))
            runtime.wake.clear()
        else:
            runtime.clock.sleep(delay)


async def run_async(runtime: Runtime, stop: asyncio.Event | None = None, *, idle: float = 1.0) -> None:
    """`run` for asyncio: the store and executors work in a thread, the loop stays free."""
    stop = stop if stop is not None else asyncio.Event()
    here = runtime.event_loop = asyncio.get_running_loop()
    woken = asyncio.Event()

    def wake() -> None:
        # Called from whichever thread fed the event; the loop may be gone by then.
        with contextlib.suppress(RuntimeError):
            here.call_soon_threadsafe(woken.set)

    runtime.on_wake = wake
    try:
        while not stop.is_set() and not runtime.closed:
            delay = await asyncio.to_thread(cycle, runtime, idle)
            if isinstance(runtime.clock, RealClock):
                await _first(stop, woken, delay)
                woken.clear()
            else:
                runtime.clock.sleep(delay)
                await asyncio.sleep(0)
    finally:
        runtime.on_wake = None
        runtime.event_loop = None


async def _first(stop: asyncio.Event, woken: asyncio.Event, delay: float) -> None:
    """Wait until `stop` or `woken` is set, or `delay` seconds have passed."""
    waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(woken.wait())]
    try:
        await asyncio.wait(waits, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()


def cycle(runtime: Runtime, idle: float) -> float:
    """One loop turn: timers, dispatch, then how long to sleep. A failing turn is logged and retried."""
    if runtime.closed:
        return 0.0
    clock = runtime.clock
    try:
        moment = clock.now()
        progressed = bool(runtime.run_timers(moment)) | bool(runtime.dispatch(moment))
        runtime.housekeep(moment)
    except Exception:
        log.exception("sopdsl runtime: tick failed; retrying in %.1f s", idle)
        return idle
    if progressed:
        return 0.0  # finishing work may have freed more (a member's next action)
    wake = runtime.store.next_wakeup()
    if wake is None or wake <= clock.now():
        # Nothing scheduled, or due work this worker cannot take yet (another worker's lease,
        # a member's earlier action waiting for its retry): poll, never spin.
        return idle
    return float(min(idle, wake - clock.now()))
