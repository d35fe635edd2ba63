"""The live runtime's run loops (manual clock, real clock, asyncio): they fire timers, dispatch,
poll without spinning and stop; and the README's example runs as written."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from runtime_helpers import DAY, START, Recorder, join, plan_of, runtime

from sopdsl.live.runtime import ManualClock, RealClock, Runtime


def test_run_loop_on_a_manual_clock_fires_timers_and_stops() -> None:
    clock = ManualClock(START)
    recorder = Recorder(clock)
    rt = runtime("memory://", clock, recorder)
    rt.feed(join("m1", START))
    stop = threading.Event()
    thread = threading.Thread(target=rt.run, args=(stop,), kwargs={"idle": 3600})
    thread.start()
    deadline = time.monotonic() + 10
    while len(recorder.calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert [(t - START, d["template"]) for t, _, _, d in recorder.calls] == [(0, "welcome"), (3 * DAY, "bye")]


def test_run_loop_on_the_real_clock_dispatches_a_fed_event_and_stops() -> None:
    recorder = Recorder()
    rt = Runtime(plan_of(), "memory://", executors=recorder.executors(), clock=RealClock())
    stop = threading.Event()
    thread = threading.Thread(target=rt.run, args=(stop,))
    thread.start()
    rt.feed({"kind": "join", "member": "m1", "group": "g1"})
    deadline = time.monotonic() + 10
    while not recorder.calls and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert recorder.texts() == ["欢迎 m1"]
    rt.close()


def test_async_run_loop_dispatches_and_stops() -> None:
    recorder = Recorder()
    rt = Runtime(plan_of(), "memory://", executors=recorder.executors(), clock=RealClock())

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(rt.run_async(stop))
        rt.feed({"kind": "join", "member": "m1", "group": "g1"})
        for _ in range(500):
            if recorder.calls:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, timeout=5)

    asyncio.run(main())
    assert recorder.texts() == ["欢迎 m1"]


def test_async_run_loop_dispatches_a_fed_event_at_once_not_at_its_next_poll() -> None:
    recorder = Recorder()
    rt = Runtime(plan_of(), "memory://", executors=recorder.executors(), clock=RealClock())
    waited: list[float] = []

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(rt.run_async(stop, idle=30))
        await asyncio.sleep(0.3)  # the loop has found nothing due and sleeps
        for member in ("m1", "m2"):  # the second while it sleeps after dispatching the first
            fed = time.monotonic()
            await asyncio.to_thread(rt.feed, {"kind": "join", "member": member, "group": "g1"})
            while len(recorder.calls) < len(waited) + 1 and time.monotonic() - fed < 10:
                await asyncio.sleep(0.01)
            waited.append(time.monotonic() - fed)
        stop.set()
        await asyncio.wait_for(task, timeout=5)

    asyncio.run(main())
    rt.close()
    assert recorder.texts() == ["欢迎 m1", "欢迎 m2"]
    assert max(waited) < 2, waited  # the loop was woken, as `run` is, not left to sleep out `idle`


def test_readme_example_runs_as_written(tmp_path: Path) -> None:
    readme = (Path(__file__).parent.parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Embedding the runtime", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "playbooks").symlink_to(Path(__file__).parent.parent.parent / "playbooks")
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "g1 <- 🎉 欢迎 @张三 加入骑友群！" in result.stdout
    assert "'actions_out': 1" in result.stdout


def test_run_loop_polls_but_never_spins_on_work_it_cannot_take() -> None:
    recorder = Recorder(fail=ConnectionError("down"))
    rt = Runtime(plan_of(), "memory://", executors=recorder.executors(), clock=RealClock())
    rt.feed({"kind": "join", "member": "m1", "group": "g1"})
    rt.feed({"kind": "message", "member": "m1", "group": "g1"})  # due now, but behind the failed welcome
    claims = 0
    claim = rt.store.claim

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal claims
        claims += 1
        return claim(*args, **kwargs)

    rt.store.claim = counted  # type: ignore[method-assign]
    stop = threading.Event()
    thread = threading.Thread(target=rt.run, args=(stop,))
    thread.start()
    time.sleep(1.0)
    stop.set()
    thread.join(timeout=5)
    assert len(recorder.calls) == 1  # the welcome failed once; its retry is 30 s away
    assert claims < 20  # a few polls a second, not a busy loop
    rt.close()


def test_closing_the_runtime_ends_its_run_loop() -> None:
    rt = Runtime(plan_of(), "memory://", executors=Recorder().executors(), clock=RealClock())
    thread = threading.Thread(target=rt.run)
    thread.start()
    time.sleep(0.1)
    rt.close()
    thread.join(timeout=5)
    assert not thread.is_alive()
