"""A store written by an earlier sopdsl (plan format 2) opens with this one and goes on as it was.

`data/wait_for.format2.sqlite` was made once by sopdsl at f9e709e: tests/engine_cases/wait_for.sop
run live until 2026-03-01 12:00, four members joined (four welcomes sent) and `quick` answered
(its thanks sent); `silent`, `on_the_dot` and `just_late` wait until 2026-03-02 10:00.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

import sopdsl
from sopdsl.dryrun.simulate import to_epoch
from sopdsl.engine.actions import Action
from sopdsl.live.clock import ManualClock
from sopdsl.live.dispatch import ACTION_KINDS
from sopdsl.live.runtime import Runtime

DATA = Path(__file__).parent / "data" / "wait_for.format2.sqlite"
CASES = Path(__file__).parent.parent / "engine_cases"
EARLIER_KEYS = {  # what the earlier sopdsl executed, by key: none of it may go out again
    "105b06cffc87dc6175f01aa0",
    "914fce5bd6c78f7892c45593",
    "6f3e5204e93978e884d843b8",
    "2e1af35820be3c0899d72e0a",
    "1b5cd2e8bb142b34a540b142",
}


def _at(text: str) -> int:
    return to_epoch(text, "Asia/Shanghai")


def test_a_store_of_plan_format_2_goes_on_under_this_sopdsl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store.sqlite"
    shutil.copyfile(DATA, store)
    monkeypatch.chdir(CASES)
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load("wait_for.sop")))
    calls: list[tuple[int, str, str, str | None, str]] = []
    clock = ManualClock(_at("2026-03-01 13:00"))

    def record(action: Action, key: str) -> None:
        calls.append((clock.now(), action.kind, key, action.member, str(action.detail.get("text"))))

    executors: dict[str, Any] = dict.fromkeys(ACTION_KINDS, record)
    # The same playbook compiled today is a plan of format 3 with another hash; it is the same
    # files, so the runtime goes on with the recorded plan instead of refusing the store.
    rt = Runtime(plan, f"sqlite:///{store}", executors=executors, clock=clock)
    assert rt.plan.content_hash != plan.content_hash and rt.plan.content_hash.startswith("2a4fc023870d")
    clock.set(_at("2026-03-02 10:00"))
    rt.feed(
        {
            "kind": "message",
            "member": "on_the_dot",
            "group": "g1",
            "time": clock.now(),
            "data": {"text": "来了"},
        }
    )
    clock.set(_at("2026-03-02 10:01"))
    rt.feed(
        {
            "kind": "message",
            "member": "just_late",
            "group": "g1",
            "time": clock.now(),
            "data": {"text": "晚了"},
        }
    )
    clock.set(_at("2026-03-04 00:00"))
    rt.tick()
    rt.close()
    sent = sorted((member, text) for _, _, _, member, text in calls)
    assert sent == [
        ("just_late", "还没看到你的自我介绍哦"),
        ("on_the_dot", "谢谢你的自我介绍：来了"),
        ("silent", "还没看到你的自我介绍哦"),
    ]
    assert not EARLIER_KEYS & {key for _, _, key, _, _ in calls}, (
        "an action the earlier sopdsl sent went again"
    )
