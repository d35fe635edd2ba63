"""Dry runs and restarts of the live runtime: a dry run decides but executes nothing, a restart
keeps timers and sends nothing twice, a store of another plan is refused, firings missed while
down follow the playbook, a lost database connection loses nothing."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from livestores import store_url
from runtime_helpers import DAY, HOUR, PLAYBOOK, START, Recorder, join, plan_of, runtime

from sopdsl.live.runtime import ManualClock, PlanChangedError


def test_dry_run_decides_everything_but_executes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sopdsl.runtime")
    clock = ManualClock(START)
    recorder = Recorder(clock)
    rt = runtime("memory://", clock, recorder, dry_run=True)
    assert len(rt.feed(join("m1", START))) == 1
    clock.advance(3 * DAY)
    assert len(rt.tick()) == 1
    assert recorder.calls == []
    assert [r.status for r in rt.store.outbox()] == ["dry_run", "dry_run"]
    assert rt.stats()["actions_out"] == 2
    logged = [r.getMessage() for r in caplog.records if "dry run" in r.getMessage()]
    assert len(logged) == 2
    assert "would send welcome -> m1" in logged[0]


def test_a_restarted_runtime_keeps_its_timers_and_sends_nothing_twice(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    clock = ManualClock(START)
    recorder = Recorder(clock)
    first = runtime(url, clock, recorder)
    first.feed(join("m1", START, "张三"))
    first.feed(join("m2", START + 60, "李四"))
    first.tick()
    first.close()
    clock.set(START + 3 * DAY + 60)
    second = runtime(url, clock, recorder)
    second.tick()
    assert recorder.texts() == ["欢迎 张三", "欢迎 李四", "三天了，张三", "三天了，李四"]
    assert second.engine().members["m2"].name == "李四"
    second.close()


def test_a_store_written_under_another_plan_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    runtime(url, ManualClock(START), Recorder()).close()
    other = plan_of(PLAYBOOK.replace("三天了", "三天过去了"))
    with pytest.raises(
        PlanChangedError, match=r"shard 'default' .* runs plan [0-9a-f]{12}, not [0-9a-f]{12}"
    ):
        runtime(url, ManualClock(START), Recorder(), plan=other)


MISSED = """
timezone "Asia/Shanghai"
template evening = "晚安"
template digest = "日报"
calendar nightly = every day at 20:00
playbook skipper {
    missed skip
    at nightly: send evening to group
}
playbook catcher {
    missed run latest
    at nightly: send digest to group
}
"""


def test_firings_missed_while_down_follow_the_playbooks_missed_setting(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    clock = ManualClock(START)  # 10:00
    recorder = Recorder(clock)
    rt = runtime(url, clock, recorder, plan=plan_of(MISSED), missed_after=60)
    rt.add_group("g1")
    clock.set(START + 10 * HOUR)  # 20:00 the first evening: both go out
    rt.tick()
    assert [d["template"] for _, _, _, d in recorder.calls] == ["evening", "digest"]
    rt.close()
    # Down for three evenings; back at 12:00 on the fourth day.
    clock.set(START + 3 * DAY + 2 * HOUR)
    back = runtime(url, clock, recorder, plan=plan_of(MISSED), missed_after=60)
    back.tick()
    # `missed skip` sends nothing; `missed run latest` sends one digest, now.
    assert [(t - START, d["template"]) for t, _, _, d in recorder.calls[2:]] == [
        (3 * DAY + 2 * HOUR, "digest")
    ]
    clock.set(START + 3 * DAY + 10 * HOUR)  # and the next evening is on time again
    back.tick()
    assert [d["template"] for _, _, _, d in recorder.calls[3:]] == ["evening", "digest"]
    # A running loop held up (a slow executor) is late, not down: nothing is skipped.
    clock.set(START + 4 * DAY + 10 * HOUR + 600)
    back.tick()
    assert [d["template"] for _, _, _, d in recorder.calls[5:]] == ["evening", "digest"]
    back.close()


def test_a_lost_database_connection_loses_nothing(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    import psycopg

    from sopdsl.errors import StoreError

    url = store_url("postgres", tmp_path, request)
    clock = ManualClock(START)
    recorder = Recorder(clock)
    rt = runtime(url, clock, recorder)
    rt.feed(join("m1", START, "张三"))
    pid = rt.store._conn.info.backend_pid  # type: ignore[attr-defined]
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    # The event that met the dead connection is refused, clearly, and not half-stored ...
    with pytest.raises(StoreError, match="store postgresql://"):
        rt.feed(join("m2", START + 60, "李四"))
    # ... the runtime reconnects for the next one, and its state is what was committed.
    clock.set(START + 60)
    rt.feed(join("m2", START + 60, "李四"))
    rt.tick()
    assert recorder.texts() == ["欢迎 张三", "欢迎 李四"]
    assert rt.stats()["events_in"] == 2
    rt.close()
