"""A bot on PostgreSQL restarted without a worker name finds its shards held by its own earlier
process's lease: its feeds return no actions until the lease lapses. It is told so, once, with
how to avoid it; named, it takes its leases back at once and nothing is logged."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from livestores import store_url
from runtime_helpers import START, Recorder, join, plan_of

from sopdsl.live.runtime import ManualClock, Runtime


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_a_bot_restarted_without_a_name_is_told_why_its_feeds_do_nothing_and_a_named_one_restarts_at_once(
    request: pytest.FixtureRequest, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = store_url("postgres", tmp_path, request)
    clock = ManualClock(START)
    before = Runtime(plan_of(), url, executors=Recorder(clock).executors(), clock=clock)
    before.feed(join("m1", START))
    # The process dies holding its lease (no close); a new one starts, under a new made-up name:
    with caplog.at_level(logging.WARNING, logger="sopdsl.runtime"):
        after = Runtime(plan_of(), url, executors=Recorder(clock).executors(), clock=clock)
        assert after.feed(join("m2", START)) == []
        assert after.feed(join("m3", START)) == []
    [warning] = warnings_of(caplog)  # once, not at every event
    assert "shard 'default' is held by another worker's lease, so events fed here are stored" in warning
    assert "once its lease lapses, up to 30 s from its last apply" in warning
    assert "(Runtime(worker=...), sopdsl run --worker NAME)" in warning
    after.close()
    before.close()
    caplog.clear()

    with caplog.at_level(logging.WARNING, logger="sopdsl.runtime"):
        bot = Runtime(plan_of(), url, executors=Recorder(clock).executors(), clock=clock, worker="bot")
        bot.feed(join("m4", START))
        again = Runtime(plan_of(), url, executors=Recorder(clock).executors(), clock=clock, worker="bot")
        assert [a.kind for a in again.feed(join("m5", START))] == ["send"]
    assert warnings_of(caplog) == []
    again.close()
    bot.store.close()
