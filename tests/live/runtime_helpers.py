"""The live runtime's tests' shared parts: a playbook, its plan, a recording executor, a runtime
on a manual clock, a join event (`test_runtime_*.py`), a runtime with methods replaced."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from livestores import KINDS, store_url

import sopdsl
from sopdsl.engine.actions import Action
from sopdsl.live.dispatch import ACTION_KINDS
from sopdsl.live.runtime import ManualClock, Runtime
from sopdsl.live.service_types import RuntimeLike
from sopdsl.plan import Plan

CASES = Path(__file__).parent.parent / "engine_cases"
START = 1_772_330_400  # 2026-03-01 10:00 in Shanghai
DAY = 86400
HOUR = 3600

PLAYBOOK = """
timezone "Asia/Shanghai"
event share_photo "晒单" { image: text, likes: number }
action crm_note "写入CRM" { level: text, score: number }
template welcome = "欢迎 {{ member.name }}"
template bye = "三天了，{{ member.name }}"
template thanks = "谢谢发言"
playbook welcome {
    on member joins
    do {
        send welcome to member
        wait 3 days
        send bye to member
    }
}
playbook chatter {
    on member posts
    repeat always
    do { send thanks to member }
}
playbook photo {
    on event share_photo
    repeat always
    do { call crm_note(level = "vip", score = event.likes) }
}
"""


def plan_of(text: str = PLAYBOOK) -> Plan:
    return sopdsl.compile_program(sopdsl.check(sopdsl.load_text(textwrap.dedent(text), "inline.sop")))


class Recorder:
    """Executors for every kind that record (time, kind, key, detail), optionally failing."""

    def __init__(self, clock: ManualClock | None = None, fail: Exception | None = None) -> None:
        self.calls: list[tuple[int, str, str, dict[str, Any]]] = []
        self.clock = clock
        self.fail = fail

    def __call__(self, action: Action, key: str) -> None:
        self.calls.append((self.clock.now() if self.clock else 0, action.kind, key, dict(action.detail)))
        if self.fail is not None:
            raise self.fail

    def executors(self) -> dict[str, Any]:
        return dict.fromkeys(ACTION_KINDS, self)

    def texts(self) -> list[str]:
        return [d.get("text", "") for _, _, _, d in self.calls]


def runtime(
    url: str, clock: ManualClock, recorder: Recorder, plan: Plan | None = None, **options: Any
) -> Runtime:
    return Runtime(plan or plan_of(), url, executors=recorder.executors(), clock=clock, **options)


class Replaced:
    """A runtime with some methods replaced, the rest its own, to hand a `Service`: a compiled
    `Runtime`'s methods cannot be patched (its instances have no `__dict__`)."""

    def __init__(self, runtime: RuntimeLike, **methods: Callable[..., Any]) -> None:
        self._runtime = runtime
        self._methods = methods

    def __getattr__(self, name: str) -> Any:
        return self._methods[name] if name in self._methods else getattr(self._runtime, name)


def join(member: str, at: int, name: str = "") -> dict[str, Any]:
    return {"kind": "join", "member": member, "group": "g1", "time": at, "data": {"name": name or member}}


@pytest.fixture(params=KINDS, name="url")
def each_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """`url`: a store of each kind (`livestores.KINDS`), as a URL; a test asking for it runs on
    each (a test module imports `each_store` for it)."""
    return store_url(request.param, tmp_path, request)
