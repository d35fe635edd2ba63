"""`Runtime.feed_many`: a burst of events in one transaction. It must decide exactly what feeding
them one by one decides, and store all of them or none."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from livestores import KINDS, store_url

import sopdsl
from sopdsl.live.dispatch import ACTION_KINDS
from sopdsl.live.intake import EventError
from sopdsl.live.runtime import ManualClock, Runtime

START = 1_772_330_400  # 2026-03-01 10:00 in Shanghai
PLAYBOOK = """
timezone "Asia/Shanghai"
template welcome = "欢迎 {{ member.name }}"
template thanks = "谢谢发言"
playbook welcome { on member joins do { send welcome to member } }
playbook chatter { on member posts repeat always do { send thanks to member } }
"""


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def url(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url(kind, tmp_path, request)


def burst() -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for i in range(30):
        events.append(
            {
                "kind": "join",
                "member": f"m{i}",
                "group": "g1",
                "time": START + i,
                "data": {"name": f"成员{i}"},
            }
        )
        events.append({"kind": "message", "member": f"m{i}", "group": "g1", "time": START + i})
    return events


def runtime(url: str, log: list[tuple[str, str]]) -> Runtime:
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(textwrap.dedent(PLAYBOOK), "inline.sop")))

    def execute(action: Any, key: str) -> None:
        log.append((key, action.detail.get("text", "")))

    return Runtime(plan, url, executors=dict.fromkeys(ACTION_KINDS, execute), clock=ManualClock(START + 60))


def test_a_burst_decides_what_one_by_one_decides(
    kind: str, url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    batched: list[tuple[str, str]] = []
    rt = runtime(url, batched)
    actions = rt.feed_many(burst())
    rt.tick()
    assert len(actions) == 60
    single: list[tuple[str, str]] = []
    (tmp_path / "one").mkdir()
    other = runtime(store_url(kind, tmp_path / "one", request), single)
    for event in burst():
        other.feed(event)
    other.tick()
    assert batched == single  # same keys, same texts, same order
    assert rt.stats()["events_in"] == 60
    rt.close()
    other.close()


def test_a_bad_event_stores_none_of_the_burst(url: str) -> None:
    log: list[tuple[str, str]] = []
    rt = runtime(url, log)
    events = burst()
    events[7] = {"kind": "tag", "member": "m3", "group": "g1", "time": START + 3}  # no tag name
    with pytest.raises(EventError, match=r"^event 7: a tag event needs a name") as caught:
        rt.feed_many(events)
    assert caught.value.field == "name"
    assert rt.stats()["events_in"] == 0
    rt.tick()
    assert log == []
    # The runtime goes on: the burst without the bad event is taken whole.
    del events[7]
    assert len(rt.feed_many(events)) == 59
    rt.close()


def test_an_event_older_than_the_engine_clock_is_named_by_its_place_and_stores_none(url: str) -> None:
    rt = runtime(url, [])
    rt.feed({"kind": "message", "member": "m0", "group": "g1", "time": START + 200})
    events = burst()[:5]
    events.append({"kind": "message", "member": "m9", "group": "g1", "time": START - 86400})
    with pytest.raises(EventError, match=r"^event 5: event time .* before the engine's clock") as caught:
        rt.feed_many(events)
    assert (caught.value.index, caught.value.field) == (5, "time")
    assert rt.stats()["events_in"] == 1
    rt.close()
