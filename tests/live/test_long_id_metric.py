"""Ids over `MAX_ID` that a shard was loaded with are counted where an operator looks: the
`sopdsl_ids_over_limit` gauge (`Runtime.stats()["ids_over_limit"]`), not only a log line that
scrolls away once the shard is loaded (`long_ids.tell`)."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from livestores import KINDS, store_url
from test_long_id_store import START, runtime
from test_service import Recorder

from sopdsl.live.clock import ManualClock
from sopdsl.live.metrics import ServiceCounters, exposition, registry
from sopdsl.live.store import open_store

LONG_MEMBER = secrets.token_hex(1500)
LONG_GROUP = secrets.token_hex(1500)


def gauge(stats: dict[str, int]) -> str:
    """The gauge's line as `GET /metrics` serves it."""
    text = exposition(registry(lambda: stats, ServiceCounters()))
    [line] = [row for row in text.splitlines() if row.startswith("sopdsl_ids_over_limit ")]
    return line


@pytest.mark.parametrize("kind", KINDS)
def test_the_ids_over_the_limit_a_loaded_shard_holds_are_a_gauge(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = store_url(kind, tmp_path, request)
    clock = ManualClock(START)
    store = open_store(url)
    first = runtime(store, clock, Recorder())
    first.feed({"kind": "join", "member": "m1", "group": "g1"})
    assert first.stats()["ids_over_limit"] == 0
    assert gauge(first.stats()) == "sopdsl_ids_over_limit 0.0"
    # As sopdsl journaled them before ids were limited: two members' ids, and a group's.
    first.store.append(
        first.shard,
        [
            {"op": "event", "kind": "join", "member": LONG_MEMBER, "group": "g1", "time": START},
            {"op": "event", "kind": "join", "member": LONG_MEMBER[::-1], "group": "g1", "time": START},
            {"op": "event", "kind": "join", "member": "m5", "group": LONG_GROUP, "time": START},
        ],
    )
    first.close()

    second = runtime(store if kind == "memory" else open_store(url), clock, Recorder())
    try:
        second.feed({"kind": "join", "member": "m2", "group": "g1"})  # the shard is loaded
        assert second.stats()["ids_over_limit"] == 3
        assert gauge(second.stats()) == "sopdsl_ids_over_limit 3.0"
        second.feed({"kind": "join", "member": "m3", "group": "g1"})
        assert second.stats()["ids_over_limit"] == 3  # counted once, not at every apply
    finally:
        second.close()
