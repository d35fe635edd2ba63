"""A runtime on a PostgreSQL store started without a worker name says, at start, what that costs
at a restart (its shards wait out their leases: feeds return no actions and actions go late) and
how to avoid it; named, it says nothing, and a restart takes its leases back at once."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from livestores import store_url
from runtime_helpers import START, Recorder, join, plan_of

from sopdsl.live.runtime import ManualClock, Runtime


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_an_unnamed_worker_on_postgresql_is_warned_and_a_named_one_restarts_at_once(
    request: pytest.FixtureRequest, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = store_url("postgres", tmp_path, request)
    clock = ManualClock(START)
    with caplog.at_level(logging.WARNING, logger="sopdsl.runtime"):
        unnamed = Runtime(plan_of(), url, executors=Recorder(clock).executors(), clock=clock)
    [warning] = warnings_of(caplog)
    assert f"no worker name given, so this process is worker {unnamed.worker}" in warning
    assert "feed returns no actions" in warning
    assert "Runtime(worker=...), sopdsl run --worker NAME" in warning
    unnamed.close()
    caplog.clear()

    with caplog.at_level(logging.WARNING, logger="sopdsl.runtime"):
        bot = Runtime(plan_of(), url, executors=Recorder(clock).executors(), clock=clock, worker="bot")
        bot.feed(join("m1", START))
        # The process dies holding its lease (no close); started again under its name:
        again = Runtime(plan_of(), url, executors=Recorder(clock).executors(), clock=clock, worker="bot")
        assert [a.kind for a in again.feed(join("m2", START))] == ["send"]
    assert warnings_of(caplog) == []
    again.close()
    bot.store.close()


def test_an_unnamed_worker_on_sqlite_is_not_warned(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sopdsl.runtime"):
        Runtime(plan_of(), f"sqlite:///{tmp_path / 'state.db'}", clock=ManualClock(START)).close()
    assert warnings_of(caplog) == []
