"""A new plan version in the live runtime: journaled, replayed, refused or applied, on every store.

What a bot developer relies on: switching while members are mid-flow sends nothing twice and
loses no one, a restart replays the switch at the same point, a worker given the wrong plan is
stopped with a clear message, and an old store is upgraded only when asked.
"""

from __future__ import annotations

import logging
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from livestores import KINDS, as_the_engine_decided, fixture_setup, read_fixture, store_url
from pydantic import BaseModel

import sopdsl
from sopdsl.dryrun.simulate import simulate, to_epoch
from sopdsl.engine.actions import Action
from sopdsl.engine.engine import Engine
from sopdsl.engine.events import Event
from sopdsl.engine.versions import FINISHES, MOVED
from sopdsl.errors import StoreError
from sopdsl.live.dispatch import ACTION_KINDS, ExecutorError
from sopdsl.live.runtime import ManualClock, PlanChangedError, Runtime, open_store
from sopdsl.live.store import SCHEMA_VERSION
from sopdsl.plan import Plan, timeutil

START = 1_772_330_400  # 2026-03-01 10:00 in Shanghai
DAY = 86400

V1 = """
timezone "Asia/Shanghai"
action crm_note "写入CRM" { level: text }
template welcome = "欢迎 {{ member.name }}"
template day3 = "三天了，{{ member.name }}"
template day3_new = "三天了，{{ member.name }}，来看看本周直播"
playbook welcome {
    on member joins
    %s
    do {
        send welcome to member
        wait 3 days
        send %s to member
        call crm_note(level = "new")
    }
}
"""


def plan_of(text: str) -> Plan:
    return sopdsl.compile_program(sopdsl.check(sopdsl.load_text(textwrap.dedent(text), "inline.sop")))


def v1() -> Plan:
    return plan_of(V1 % ("", "day3"))


def v2(change: str = "") -> Plan:
    return plan_of(V1 % (change, "day3_new"))


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None, str]] = []

    def __call__(self, action: Action, key: str) -> None:
        self.calls.append((action.kind, action.member, str(action.detail.get("text", ""))))

    def executors(self) -> dict[str, Any]:
        return dict.fromkeys(ACTION_KINDS, self)


@pytest.fixture(params=KINDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url(request.param, tmp_path, request)


@pytest.fixture(params=[k for k in KINDS if k != "memory"])
def durable_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store that outlives its runtime, for restarts."""
    return store_url(request.param, tmp_path, request)


def join(member: str, at: int) -> dict[str, Any]:
    return {"kind": "join", "member": member, "group": "g1", "time": at, "data": {"name": member}}


def decided(rt: Runtime) -> list[tuple[int, str, str | None, str | None]]:
    """The actions the runtime decided, from its outbox, in order."""
    return [
        (r.action["time"], r.kind, r.action["member"], r.action["detail"].get("text"))
        for r in rt.store.outbox()
    ]


def live_run(url: str, change: str = "") -> tuple[Runtime, Recorder, list[Any]]:
    """m1 joins on v1; a day later the runtime switches to v2; m2 joins; five days pass."""
    clock = ManualClock(START)
    recorder = Recorder()
    rt = Runtime(v1(), url, executors=recorder.executors(), clock=clock)
    rt.feed(join("m1", START))
    clock.set(START + DAY)
    rt.tick()
    changes = rt.reload(v2(change))
    clock.set(START + DAY + 600)
    rt.feed(join("m2", START + DAY + 600))
    for hour in range(1, 6 * 24):
        clock.set(START + DAY + hour * 3600)
        rt.tick()
    return rt, recorder, changes


def test_members_mid_flow_finish_on_the_old_version_and_newcomers_get_the_new(url: str) -> None:
    rt, recorder, changes = live_run(url)
    sends = [(m, text) for kind, m, text in recorder.calls if kind == "send"]
    assert sends == [
        ("m1", "欢迎 m1"),
        ("m2", "欢迎 m2"),
        ("m1", "三天了，m1"),
        ("m2", "三天了，m2，来看看本周直播"),
    ]
    assert [(c.member, c.outcome) for c in changes] == [("m1", FINISHES)]
    assert rt.plan.content_hash == v2().content_hash
    rt.close()


def test_migrate_moves_members_mid_flow_to_the_new_step(url: str) -> None:
    rt, recorder, changes = live_run(url, change="on change migrate")
    sends = [(m, text) for kind, m, text in recorder.calls if kind == "send"]
    assert ("m1", "三天了，m1，来看看本周直播") in sends and ("m1", "三天了，m1") not in sends
    assert [(c.member, c.outcome) for c in changes] == [("m1", MOVED)]
    rt.close()


def test_the_live_switch_agrees_with_the_engine_run_directly(url: str) -> None:
    rt, _, _ = live_run(url)
    live = decided(rt)
    rt.close()
    engine = Engine(v1(), start=START)
    engine.feed(Event("join", START, member="m1", group="g1", data={"name": "m1"}))
    engine.advance(START + DAY)
    engine.reload(v2(), at=START + DAY)
    engine.feed(Event("join", START + DAY + 600, member="m2", group="g1", data={"name": "m2"}))
    engine.advance(START + DAY + (6 * 24 - 1) * 3600)
    assert live == [(a.time, a.kind, a.member, a.detail.get("text")) for a in engine.log]


def test_a_restart_replays_the_switch_and_sends_nothing_again(durable_url: str, tmp_path: Path) -> None:
    url = durable_url
    rt, recorder, _ = live_run(url)
    before = decided(rt)
    rt.close()
    again = Recorder()
    # Given the plan it now runs, the default (refuse) mode opens the store without complaint.
    reopened = Runtime(v2(), url, executors=again.executors(), clock=ManualClock(START + 8 * DAY))
    reopened.tick()
    assert decided(reopened) == before
    assert reopened.engine().plan.content_hash == v2().content_hash
    assert again.calls == []  # everything was sent before the restart
    assert len(recorder.calls) == 6
    reopened.close()


def test_a_runtime_given_another_version_is_refused_with_the_way_out(durable_url: str) -> None:
    url = durable_url
    Runtime(v1(), url, clock=ManualClock(START)).close()
    with pytest.raises(
        PlanChangedError, match=r"runs plan [0-9a-f]{12}, not [0-9a-f]{12}.*on_plan_change='reload'"
    ):
        Runtime(v2(), url, clock=ManualClock(START))


def test_sopdsl_run_given_another_version_names_its_own_option_not_the_python_one(tmp_path: Path) -> None:
    """The command line's refusal says `--reload`, as an `error:` line with a `hint:`, where the
    Python API's names `on_plan_change='reload'`."""
    from click.testing import CliRunner

    from sopdsl.live.command import run_command

    url = f"sqlite:///{tmp_path / 's.db'}"
    Runtime(v1(), url, clock=ManualClock(START)).close()
    changed = tmp_path / "changed.json"
    changed.write_text(v2().dumps(), encoding="utf-8")
    result = CliRunner().invoke(
        run_command, [str(changed), "--store", url, "--port", "0", "--insecure-no-auth"]
    )
    assert result.exit_code == 1, result.output
    first, hint = result.stderr.splitlines()
    assert re.fullmatch(
        rf"error: shard 'default' in {re.escape(url)} runs plan [0-9a-f]{{12}}, not [0-9a-f]{{12}}", first
    )
    assert hint.startswith("hint: to switch the shard to this version") and "start with --reload" in hint
    assert "on_plan_change" not in result.stderr and "Traceback" not in result.stderr


def test_starting_with_reload_switches_a_running_shard_and_logs_each_flow(
    durable_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = durable_url
    clock = ManualClock(START)
    recorder = Recorder()
    first = Runtime(v1(), url, executors=recorder.executors(), clock=clock)
    first.feed(join("m1", START))
    first.close()
    clock.set(START + DAY)
    with caplog.at_level(logging.INFO, logger="sopdsl.runtime"):
        second = Runtime(v2(), url, executors=recorder.executors(), clock=clock, on_plan_change="reload")
    assert any("m1" in r.getMessage() and FINISHES in r.getMessage() for r in caplog.records)
    second.feed(join("m2", START + DAY + 60))
    clock.set(START + 5 * DAY)
    second.tick()
    sends = [(m, text) for kind, m, text in recorder.calls if kind == "send"]
    assert ("m1", "三天了，m1") in sends and ("m2", "三天了，m2，来看看本周直播") in sends
    second.close()
    # The store now records v2: a third start with v2 needs no reload option.
    Runtime(v2(), url, clock=clock).close()


class Note(BaseModel):
    level: str


def test_a_reload_whose_calls_the_registered_executor_cannot_take_changes_nothing(url: str) -> None:
    clock = ManualClock(START)
    rt = Runtime(v1(), url, clock=clock)
    rt.register_custom("crm_note", Note, lambda args, action, key: None)
    rt.feed(join("m1", START))
    before = rt.engine().plan.content_hash
    scored = V1.replace("{ level: text }", "{ level: text, score: number }").replace(
        'level = "new")', 'level = "new", score = 2)'
    )
    with pytest.raises(ExecutorError, match=r"crm_note.*'score', which Note has no field"):
        rt.reload(plan_of(scored % ("", "day3_new")))
    assert rt.engine().plan.content_hash == before == rt.plan.content_hash
    rt.close()


def test_a_reload_adding_a_custom_actions_argument_says_how_and_goes_through_as_it_says() -> None:
    clock = ManualClock(START)
    calls: list[tuple[str | None, BaseModel]] = []
    rt = Runtime(v1(), "memory://", executors={"send": lambda action, key: None}, clock=clock)
    rt.register_custom("crm_note", Note, lambda args, action, key: calls.append((action.member, args)))
    rt.feed(join("m1", START))  # m1's flow calls crm_note(level) in three days, on v1
    scored = V1.replace("{ level: text }", "{ level: text, score: number }").replace(
        'level = "new")', 'level = "new", score = 2)'
    )
    v3 = plan_of(scored % ("", "day3"))
    with pytest.raises(ExecutorError) as refused:
        rt.reload(v3)
    assert "register one model that takes both versions' calls" in str(refused.value)
    assert "(an argument only one version passes given a default)" in str(refused.value)

    class Scored(BaseModel):
        level: str
        score: float | None = None

    rt.register_custom("crm_note", Scored, lambda args, action, key: calls.append((action.member, args)))
    rt.reload(v3)
    clock.set(START + DAY)
    rt.feed(join("m2", START + DAY))
    clock.set(START + 5 * DAY)
    rt.tick()
    assert calls == [("m1", Scored(level="new")), ("m2", Scored(level="new", score=2))]
    rt.close()


def test_a_switch_offered_while_another_worker_holds_the_shard_is_applied_by_that_worker(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = store_url("postgres", tmp_path, request)
    clock = ManualClock(START)
    holder = Runtime(v1(), url, clock=clock, worker="A", lease=300)
    holder.feed(join("m1", START))
    other = Runtime(v2(), url, clock=clock, worker="B", lease=300, on_plan_change="reload")
    assert other.store.ensure_shard("default", start=0, seed=0, plan_hash="").plan_now == v1().content_hash
    holder.tick()  # the holder applies the switch B journaled
    assert holder.engine().plan.content_hash == v2().content_hash
    assert holder.plan.content_hash == v2().content_hash  # it checks events against the new version
    assert holder.store.ensure_shard("default", start=0, seed=0, plan_hash="").plan_now == v2().content_hash
    other.close()
    holder.close()


# ---- the store's schema: version 1 stores get plan_now only when asked ----------------------------


def _downgrade(url: str) -> None:
    """Make a current store look like one written by schema version 1."""
    statements = [
        "DROP TABLE sopdsl_snapshots",
        "ALTER TABLE sopdsl_shards DROP COLUMN plan_now",
        "UPDATE sopdsl_meta SET value = '1' WHERE key = 'schema_version'",
    ]
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            for statement in statements:
                conn.execute(statement)
    else:
        with psycopg.connect(url, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_version_1_store_is_upgraded_only_with_migrate_and_keeps_its_shards(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    assert SCHEMA_VERSION == 2
    url = store_url(kind, tmp_path, request)
    clock = ManualClock(START)
    recorder = Recorder()
    rt = Runtime(v1(), url, executors=recorder.executors(), clock=clock)
    rt.feed(join("m1", START))
    rt.close()
    _downgrade(url)
    with pytest.raises(StoreError, match=r"schema version 1.*migrate=True"):
        open_store(url)
    store = open_store(url, migrate=True)
    assert store.ensure_shard("default", start=0, seed=0, plan_hash="").plan_now == v1().content_hash
    clock.set(START + 4 * DAY)
    upgraded = Runtime(v1(), store, executors=recorder.executors(), clock=clock)
    upgraded.tick()
    assert [(m, text) for kind, m, text in recorder.calls if kind == "send"] == [
        ("m1", "欢迎 m1"),
        ("m1", "三天了，m1"),
    ]
    upgraded.close()


# ---- sopdsl run: --reload at start, SIGHUP while running -------------------------------------------


def _wait_for(lines: list[str], text: str, proc: subprocess.Popen[str], seconds: float = 30) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if any(text in line for line in lines):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not seen in:\n{''.join(lines)}")


def test_sopdsl_run_switches_on_sighup_and_keeps_running_on_a_broken_file(tmp_path: Path) -> None:
    import threading

    playbook = tmp_path / "welcome.sop"
    playbook.write_text(V1 % ("", "day3"), encoding="utf-8")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sopdsl",
            "run",
            str(playbook),
            "--store",
            f"sqlite:///{tmp_path / 's.db'}",
            "--port",
            "0",
            "--insecure-no-auth",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    assert proc.stderr is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        _wait_for(lines, "listening on", proc)
        playbook.write_text(V1 % ("", "day3_new"), encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        _wait_for(lines, "now running plan ", proc)
        playbook.write_text("playbook broken {", encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        _wait_for(lines, "reload refused", proc)
        assert proc.poll() is None, "the service stopped on a broken playbook"
        playbook.write_text(V1 % ("", "day3_new"), encoding="utf-8")  # fixed: the running version again
        proc.send_signal(signal.SIGHUP)
        _wait_for(lines, "the playbooks are unchanged", proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        reader.join(timeout=5)
    text = "".join(lines)
    started = text.split("sopdsl run: plan ", 1)[1][:12]
    switched = text.split("now running plan ", 1)[1][:12]
    assert started != switched
    assert f"still running plan {switched}" in text
    assert "Traceback" not in text


def test_the_same_files_compiled_from_another_folder_are_not_a_new_version(durable_url: str) -> None:
    text = textwrap.dedent(V1 % ("", "day3"))
    here = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(text, "playbooks/welcome.sop")))
    there = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(text, "/srv/bot/playbooks/welcome.sop")))
    assert here.content_hash == there.content_hash  # locations are relative to the root file's folder
    # A store created before plans held relative locations recorded the path as it was typed.
    earlier = sopdsl.compile_program(
        sopdsl.check(sopdsl.load_text(text, "/srv/bot/playbooks/welcome.sop")), relative=False
    )
    assert earlier.content_hash != here.content_hash and "/srv/bot/" in earlier.playbooks[0].code[0].loc
    clock = ManualClock(START)
    Runtime(earlier, durable_url, clock=clock).close()
    again = Runtime(there, durable_url, clock=clock)  # refuse mode: no error, and no switch
    assert again.plan.content_hash == earlier.content_hash
    assert again.reload(there) == []
    entries = again.store.journal("default")
    assert not [e for e in entries if e.body["op"] == "plan"]
    again.close()
    # Another line number is a new version (harmless: the steps are the same), not another folder.
    moved = sopdsl.compile_program(sopdsl.check(sopdsl.load_text("# v2\n" + text, "playbooks/welcome.sop")))
    with pytest.raises(PlanChangedError):
        Runtime(moved, durable_url, clock=clock)


def test_the_live_runtime_agrees_with_the_simulator_across_a_plan_change(tmp_path: Path) -> None:
    # The dry run ops look at before a deploy and the deploy itself: one engine, two clocks.
    folder = Path(__file__).parent.parent.parent / "playbooks"
    path = folder / "J3_self_introduction.reload.yaml"
    fixture = read_fixture(path)

    def compiled(name: str) -> Plan:
        return sopdsl.compile_program(sopdsl.check(sopdsl.load(str(folder / name))))

    plan, edited = compiled("J3_self_introduction.sop"), compiled("J3_self_introduction.v2.sop")
    zone = fixture.timezone or plan.declarations.timezone
    expected = simulate(plan, fixture, versions={("J3_self_introduction.v2.sop",): edited})
    assert expected.passed and expected.reloads

    clock = ManualClock(to_epoch(fixture.start, zone))
    rt = Runtime(plan, f"sqlite:///{tmp_path / 'state.db'}", clock=clock, executors=Recorder().executors())
    fixture_setup(rt, fixture, zone)
    decided: list[Action] = []
    for index, event in enumerate(fixture.events):
        clock.set(to_epoch(event.at, zone))
        if event.reload_files:
            rt.reload(edited)
            continue
        body: dict[str, Any] = {"id": f"e{index}", "kind": event.kind, "time": clock.now()}
        body.update(
            {k: getattr(event, k) for k in ("member", "group", "name") if getattr(event, k) is not None}
        )
        body["data"] = dict(event.data or {})
        decided.extend(rt.feed(body))
    assert fixture.end is not None
    clock.set(to_epoch(fixture.end, zone))
    decided.extend(rt.tick())
    rt.close()
    tz = timeutil.zone(zone)
    live = as_the_engine_decided(decided)
    assert [a.to_json(tz) for a in live] == [a.to_json(tz) for a in expected.actions]


def test_text_that_looks_like_a_path_is_still_compared() -> None:
    from sopdsl.engine.versions import same_files

    def compiled(path: str, text: str) -> Plan:
        source = f'timezone "Asia/Shanghai"\ntemplate t = "{text}"\nplaybook p {{\n on member joins\n do {{ send t to member }}\n}}\n'
        return sopdsl.compile_program(sopdsl.check(sopdsl.load_text(source, path)))

    assert same_files(compiled("shop/w.sop", "see x"), compiled("/srv/shop/w.sop", "see x"))
    assert not same_files(compiled("shop/w.sop", "shop/sale.html"), compiled("w.sop", "sale.html"))


def test_switching_to_a_version_that_counts_unrecorded_windows_is_logged_as_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rt = Runtime(v1(), "memory://", clock=ManualClock(START))
    counting = plan_of(
        (V1 % ("", "day3_new")).replace(
            "    on member joins\n", "    on member joins\n    when messages in last 7 days == 0\n"
        )
    )
    with caplog.at_level(logging.WARNING, logger="sopdsl.runtime"):
        rt.reload(counting)
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "counts message events over time windows" in warning and "start from zero now" in warning
    rt.close()


SCOPED = """
timezone "Asia/Shanghai"
template welcome = "欢迎 {{ member.name }}"
playbook welcome {
    in groups tagged "normal"
    on member joins
    do { send welcome to member }
}
"""


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_reload_that_newly_declares_a_known_group_makes_it_fire(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = store_url(kind, tmp_path, request)
    clock = ManualClock(START)
    first = Runtime(plan_of(SCOPED), url, clock=clock)
    assert first.feed({"kind": "join", "member": "m1", "group": "g1", "data": {"name": "张三"}}) == []
    first.close()  # the store knows g1 now, untagged
    declared = plan_of(SCOPED + '\ngroup g1 "骑友群" { tagged "normal" }\n')
    clock.advance(60)
    second = Runtime(declared, url, clock=clock, on_plan_change="reload")  # `sopdsl run --reload`
    try:
        actions = second.feed({"kind": "join", "member": "m2", "group": "g1", "data": {"name": "李四"}})
        assert [(a.kind, a.member) for a in actions] == [("send", "m2")]
    finally:
        second.close()
    # A restart replays the switch to the same state.
    third = Runtime(declared, url, clock=clock)
    try:
        assert "normal" in third.engine().groups["g1"].tags
    finally:
        third.close()
