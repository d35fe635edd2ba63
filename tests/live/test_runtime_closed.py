"""A closed runtime refuses what would change its store, saying so, on every store: an event fed
while a bot shuts down is neither taken and never dispatched (memory) nor failed with a database
library's error (SQLite), and a service whose runtime closed under a request answers 503 (send
again), not 400 (a bad event, which a client drops)."""

from __future__ import annotations

import io
import urllib.error
import urllib.request
from collections.abc import Callable
from zoneinfo import ZoneInfo

import pytest
from runtime_helpers import START, Recorder, each_store, join, plan_of, runtime

from sopdsl.live.runtime import ManualClock, Runtime, RuntimeClosedError
from sopdsl.live.service import Service

__all__ = ["each_store"]

EDITED = """
timezone "Asia/Shanghai"
template hi = "你好"
playbook hello { on member joins do { send hi to member } }
"""


def test_a_closed_runtime_refuses_events_registrations_and_switches_and_stores_none(url: str) -> None:
    clock = ManualClock(START)
    recorder = Recorder(clock)
    rt = runtime(url, clock, recorder)
    rt.feed(join("m1", START))
    rt.close()
    edited = plan_of(EDITED)
    attempts: dict[str, Callable[[], object]] = {
        "feed": lambda: rt.feed(join("m2", START)),
        "feed_many": lambda: rt.feed_many([join("m3", START)]),
        "feed_batch on another shard": lambda: rt.feed_batch([join("m4", START)], shard="acme"),
        "enqueue": lambda: rt.enqueue(join("m5", START)),
        "add_group": lambda: rt.add_group("g2", name="二群"),
        "reload": lambda: rt.reload(edited),
        "requeue": lambda: rt.requeue("some-key"),
    }
    for what, attempt in attempts.items():
        with pytest.raises(
            RuntimeClosedError, match=r"this runtime is closed \(Runtime\.close\(\) was called\)"
        ):
            attempt()
            pytest.fail(f"{what} went through on a closed runtime")
    if url == "memory://":
        return  # nothing outlives a memory store
    again = runtime(url, clock, recorder)
    assert again.stats()["events_in"] == 1
    assert again.engine().groups.keys() == {"g1"}
    again.close()


@pytest.mark.parametrize("group_commit", [False, True])
def test_a_service_whose_runtime_closed_answers_503_not_a_bad_event(group_commit: bool) -> None:
    clock = ManualClock(START)
    rt = Runtime(plan_of(), "memory://", executors=Recorder(clock).executors(), clock=clock)
    service = Service(
        rt, zone=ZoneInfo("Asia/Shanghai"), port=0, tick_every=0.05, log=io.StringIO(), group_commit=False
    )
    service.start()
    try:
        rt.close()  # the bot closed it under the service
        request = urllib.request.Request(
            service.url + "/events",
            data=b'{"kind": "join", "member": "m1", "group": "g1"}',
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(request, timeout=10)
        assert answer.value.code == 503
    finally:
        service.stop()
