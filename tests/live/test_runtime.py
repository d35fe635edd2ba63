"""The live runtime: outbox, retries and parking, agreement with the simulator, bad events,
member text as data, dry runs, restarts, custom-action schemas and the run loops."""

from __future__ import annotations

import asyncio
import logging
import random
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from livestores import KINDS, busy_fixture, fixture_events, fixture_setup, read_fixture, store_url
from pydantic import BaseModel

import sopdsl
from sopdsl.dryrun.simulate import simulate, to_epoch
from sopdsl.engine.actions import Action
from sopdsl.live.dispatch import ACTION_KINDS, ExecutorError, RetryPolicy
from sopdsl.live.intake import EventError
from sopdsl.live.runtime import ManualClock, PlanChangedError, RealClock, Runtime
from sopdsl.plan import Plan, timeutil

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


@pytest.fixture(params=KINDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url(request.param, tmp_path, request)


def runtime(
    url: str, clock: ManualClock, recorder: Recorder, plan: Plan | None = None, **options: Any
) -> Runtime:
    return Runtime(plan or plan_of(), url, executors=recorder.executors(), clock=clock, **options)


def join(member: str, at: int, name: str = "") -> dict[str, Any]:
    return {"kind": "join", "member": member, "group": "g1", "time": at, "data": {"name": name or member}}


# ---- the outbox -----------------------------------------------------------------------------------


def test_actions_are_executed_once_with_their_key(url: str) -> None:
    clock = ManualClock(START)
    recorder = Recorder(clock)
    rt = runtime(url, clock, recorder)
    [action] = rt.feed(join("m1", START, "张三"))
    assert (action.kind, action.detail["text"]) == ("send", "欢迎 张三")
    rt.tick()
    rt.tick()
    assert [(kind, key) for _, kind, key, _ in recorder.calls] == [("send", action.key)]
    clock.advance(3 * DAY)
    [bye] = rt.tick()
    assert bye.detail["text"] == "三天了，张三"
    assert recorder.texts() == ["欢迎 张三", "三天了，张三"]
    assert rt.stats() | {"timers_pending": 0} == {
        "events_in": 1,
        "actions_out": 2,
        "timers_pending": 0,
        "failures": 0,
        "parked": 0,
        "pending": 0,
        "actions_failed": 0,
    }
    rt.close()


def test_two_posts_in_one_second_are_two_actions_and_a_resent_id_is_one(url: str) -> None:
    clock = ManualClock(START)
    recorder = Recorder(clock)
    rt = runtime(url, clock, recorder)
    post = {"kind": "message", "member": "m1", "group": "g1", "time": START}
    # Two posts in the same second are two events: each decides its own send, under its own key
    # (keys come from the event's place in the journal, not from the second), and both go out.
    first = rt.feed(post)
    second = rt.feed(post)
    assert len(first) == len(second) == 1
    assert first[0].key != second[0].key
    rt.tick()
    assert len(recorder.calls) == 2
    # An event sent again with the id it had is taken once.
    clock.set(START + 5)
    assert len(rt.feed({**post, "id": "wx-1", "time": START + 5})) == 1
    assert rt.feed({**post, "id": "wx-1", "time": START + 5}) == []
    rt.tick()
    assert len(recorder.calls) == 3
    assert rt.stats()["events_in"] == 3
    rt.close()


def test_failing_executor_is_retried_with_backoff_then_parked_and_reported(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock(START)
    recorder = Recorder(clock, fail=ConnectionError("企业微信接口超时"))
    rt = runtime(url, clock, recorder, retry=RetryPolicy(attempts=4, base=10))
    rt.feed(join("m1", START))
    rt.feed({"kind": "message", "member": "m1", "group": "g1", "time": START + 1})  # queued behind it
    for _ in range(200):  # one second at a time: retries come when due, not before
        rt.tick()
        clock.advance(1)
    # Tries at +0, +10, +30 and +70 seconds, then parked; the member's next action waited its turn.
    welcome_tries = [t - START for t, _, _, d in recorder.calls if d["template"] == "welcome"]
    assert welcome_tries == [0, 10, 30, 70]
    thanks_tries = [t - START for t, _, _, d in recorder.calls if d["template"] == "thanks"]
    assert thanks_tries[0] == 70  # only once the welcome was parked
    [parked, *_] = rt.parked()
    assert parked.action["detail"]["template"] == "welcome"
    assert parked.error == "ConnectionError: 企业微信接口超时"
    assert parked.attempts == 4
    assert any(r.levelno == logging.ERROR and "parked send" in r.getMessage() for r in caplog.records)
    stats = rt.stats()
    assert (stats["parked"], stats["failures"], stats["actions_out"]) == (2, 8, 0)
    # Once the cause is fixed, an operator sends a parked action again, with fresh retries.
    recorder.fail = None
    assert rt.requeue(parked.key) is True
    assert rt.requeue(parked.key) is False  # pending now, not parked
    rt.tick()
    assert recorder.calls[-1][3]["template"] == "welcome"
    assert (rt.stats()["parked"], rt.stats()["actions_out"]) == (1, 1)
    rt.close()


class RefusedError(Exception):
    permanent = True


def test_permanent_failure_is_parked_without_retries() -> None:
    clock = ManualClock(START)
    recorder = Recorder(clock, fail=RefusedError("403 forbidden"))
    rt = runtime("memory://", clock, recorder)
    rt.feed(join("m1", START))
    rt.tick()
    clock.advance(3600)
    rt.tick()
    assert len(recorder.calls) == 1
    assert [r.error for r in rt.parked()] == ["RefusedError: 403 forbidden"]


def test_an_action_without_executor_is_parked_with_the_reason() -> None:
    clock = ManualClock(START)
    rt = Runtime(plan_of(), "memory://", clock=clock)
    assert rt.missing_executors() == ["send", "call crm_note"]
    rt.feed(join("m1", START))
    rt.tick()
    [row] = rt.parked()
    assert row.error == "ExecutorError: no executor is registered for 'send' actions"


def test_unknown_executor_name_is_refused() -> None:
    with pytest.raises(ExecutorError, match=r"executor 'sned' is neither an action kind"):
        Runtime(plan_of(), "memory://", executors={"sned": Recorder()})


# ---- the simulator and the live runtime agree ------------------------------------------------------

AGREEMENT = [
    "busy.yaml",
    "wait_for.yaml",
    "quiet_hours.yaml",
    "caps_defer.yaml",
    "silence.yaml",
    "repeat.yaml",
    "draw.yaml",  # the same winners, drawn live
    "team_wait.yaml",  # a correlated wait: each flow ends only on its own event
    "holidays.yaml",  # calendar exceptions and date tests, on the live clock
    "caps_scoped.yaml",  # a cap that counts only the promotions: the welcome after them goes out
    "silence.rejoin.yaml",  # silence counted per group: a second group starts a count of its own
    "attachments.yaml",  # attachments and a mention, typed in the send's detail, the same live
    "calc.yaml",  # arithmetic, counters reset, check-ins counted in a window, a failed `set` record
    "tasks.yaml",  # tasks to a contact's owner and a group's operator, with their message; escalations
    "platform.yaml",  # the platform's weekly limit, a task's message counted; a kick left to staff
]


def _live_log(plan: Plan, fixture_path: Path, url: str) -> list[dict[str, Any]]:
    fixture = read_fixture(fixture_path)
    zone = fixture.timezone or plan.declarations.timezone
    clock = ManualClock(to_epoch(fixture.start, zone))
    recorder = Recorder(clock)
    rt = Runtime(plan, url, executors=recorder.executors(), clock=clock, seed=fixture.seed)
    fixture_setup(rt, fixture, zone)
    decided: list[Action] = []
    for event in fixture_events(fixture, zone):
        clock.set(event["time"])
        decided.extend(rt.feed(event))
    assert fixture.end is not None
    clock.set(to_epoch(fixture.end, zone))
    decided.extend(rt.tick())
    done = [a for a in decided if a.status == "done"]
    executed = [key for _, _, key, _ in recorder.calls]
    assert sorted(executed) == sorted({a.key for a in done})
    # Dispatch interleaves members, but keeps each member's actions in the order decided.
    member_of = {a.key: a.member or a.group for a in done}
    for who in set(member_of.values()):
        mine = list(dict.fromkeys(a.key for a in done if member_of[a.key] == who))
        assert [k for k in executed if member_of[k] == who] == mine
    rt.close()
    tz = timeutil.zone(zone)
    return [a.to_json(tz) for a in decided]


@pytest.mark.parametrize("name", AGREEMENT)
def test_live_runtime_agrees_with_the_simulator(name: str, tmp_path: Path) -> None:
    path = CASES / name
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load(str(CASES / f"{name.split('.')[0]}.sop"))))
    fixture = read_fixture(path)
    tz = timeutil.zone(fixture.timezone or plan.declarations.timezone)
    expected = [a.to_json(tz) for a in simulate(plan, fixture).actions]
    assert expected
    assert _live_log(plan, path, f"sqlite:///{tmp_path / 'state.db'}") == expected


def test_live_runtime_agrees_with_the_simulator_on_postgres(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load(str(CASES / "busy.sop"))))
    fixture = read_fixture(CASES / "busy.yaml")
    tz = timeutil.zone(plan.declarations.timezone)
    expected = [a.to_json(tz) for a in simulate(plan, fixture).actions]
    assert _live_log(plan, CASES / "busy.yaml", store_url("postgres", tmp_path, request)) == expected


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_live_runtime_agrees_with_the_simulator_whenever_it_ticks(seed: int) -> None:
    """Random busy timelines, with the live loop ticking at random moments between events."""
    plan, fixture, line = busy_fixture(seed, 150)
    tz = timeutil.zone(plan.declarations.timezone)
    expected = [a.to_json(tz) for a in simulate(plan, fixture).actions]
    assert len(expected) > 100

    rng = random.Random(seed)
    clock = ManualClock(line["start"])
    rt = Runtime(plan, "memory://", clock=clock, seed=seed, dry_run=True)
    fixture_setup(rt, fixture, plan.declarations.timezone)
    decided: list[Action] = []
    for event in line["events"]:
        if rng.random() < 0.5 and event["time"] > clock.now():
            # A loop turn somewhere before the event: due timers run, nothing else may change.
            clock.set(rng.randint(clock.now(), event["time"] - 1))
            decided.extend(rt.tick())
        clock.set(event["time"])
        decided.extend(rt.feed(event))
    clock.set(line["end"])
    decided.extend(rt.tick())
    assert [a.to_json(tz) for a in decided] == expected


# ---- bad events ------------------------------------------------------------------------------------

BAD_EVENTS = [
    ({"kind": "dance", "member": "m1"}, "kind", r"unknown event kind 'dance'"),
    ({"kind": "tag", "member": "m1"}, "name", r"a tag event needs a name"),
    ({"kind": "message"}, "member", r"a message event needs a member"),
    ({"member": "m1"}, "kind", r"'kind': field required"),
    ({"kind": "message", "member": 42}, "member", r"'member': input should be a valid string"),
    ({"kind": "message", "member": "m1", "colour": "红"}, "colour", r"unknown event field 'colour'"),
    ({"kind": "order", "member": "m1", "data": {"amount": "很多"}}, "data.amount", r"should be number"),
    (
        {"kind": "custom", "member": "m1", "name": "dance"},
        "name",
        r"unknown custom event 'dance'.*share_photo",
    ),
    (
        {"kind": "custom", "member": "m1", "name": "share_photo", "data": {"image": "a.jpg"}},
        "data.likes",
        r"needs data field 'likes' \(number\)",
    ),
    (
        {"kind": "custom", "member": "m1", "name": "share_photo", "data": {"image": 3, "likes": 1}},
        "data.image",
        r"'data.image' should be text, got 3",
    ),
    ({"kind": "message", "member": "m1", "time": "昨天"}, "time", r"not epoch seconds or an ISO 8601 time"),
    (
        {"kind": "message", "member": "m1", "time": START + 3 * DAY + 3600},
        "time",
        r"ahead of the runtime's clock",
    ),
    (
        {"kind": "message", "member": "m1", "time": START + 2 * DAY},
        "time",
        r"86400 s before the engine's clock",
    ),
    ({"kind": "task_done", "data": {}}, "data.task", r"needs data.task"),
    ({"kind": "message", "member": "m1", "time": START * 1000}, "time", r"looks like milliseconds"),
    ({"kind": "message", "member": "m1", "time": True}, "time", r"'time' should be epoch seconds .*got true"),
]


@pytest.mark.parametrize(("event", "field", "message"), BAD_EVENTS)
def test_bad_events_are_refused_clearly_and_nothing_is_lost(
    event: dict[str, Any], field: str, message: str, tmp_path: Path
) -> None:
    clock = ManualClock(START)
    recorder = Recorder(clock)
    url = f"sqlite:///{tmp_path / 'state.db'}"
    rt = runtime(url, clock, recorder)
    rt.feed(join("m1", START, "张三"))
    clock.set(START + DAY)
    rt.feed(join("m2", START + DAY, "李四"))
    clock.set(START + 3 * DAY)
    rt.tick()  # m1's farewell: the engine's clock is now three days on
    journal = rt.store.journal("default")
    with pytest.raises(EventError, match=message) as info:
        rt.feed(event)
    assert info.value.field == field
    assert rt.store.journal("default") == journal
    # The runtime carries on: the next good event works, the pending timer still fires.
    assert [a.detail["template"] for a in rt.feed({"kind": "message", "member": "m1", "group": "g1"})] == [
        "thanks"
    ]
    clock.set(START + 4 * DAY)
    rt.tick()
    assert recorder.texts() == ["欢迎 张三", "欢迎 李四", "三天了，张三", "谢谢发言", "三天了，李四"]
    rt.close()


def test_an_event_that_is_not_an_object_is_refused() -> None:
    rt = runtime("memory://", ManualClock(START), Recorder())
    with pytest.raises(EventError, match="an event must be an object, got list"):
        rt.feed(["join"])  # type: ignore[arg-type]


def test_iso_times_and_event_objects_are_accepted() -> None:
    clock = ManualClock(START)
    rt = runtime("memory://", clock, Recorder())
    clock.set(START + 60)
    [a] = rt.feed({"kind": "join", "member": "m1", "group": "g1", "time": "2026-03-01 10:00"})
    assert a.time == START
    [b] = rt.feed(sopdsl.Event("message", START + 30, member="m1", group="g1"))
    assert b.time == START + 30
    [c] = rt.feed({"kind": "message", "member": "m1", "group": "g1"})  # no time: the clock's
    assert c.time == START + 60
    # A float, as Python's time.time() gives, is taken to the second.
    assert [
        a.kind for a in rt.feed({"kind": "message", "member": "m1", "group": "g1", "time": START + 59.75})
    ] == ["send"]


# ---- member text is data ---------------------------------------------------------------------------


def test_member_named_like_template_code_is_greeted_literally(tmp_path: Path) -> None:
    clock = ManualClock(START)
    recorder = Recorder(clock)
    url = f"sqlite:///{tmp_path / 'state.db'}"
    rt = runtime(url, clock, recorder)
    rt.feed(join("m1", START, "{{ 7*7 }}"))
    rt.tick()
    rt.close()
    # And after a restart, rebuilt from the journal, the name is still only a name.
    clock.set(START + 3 * DAY)
    again = runtime(url, clock, recorder)
    again.tick()
    assert recorder.texts() == ["欢迎 {{ 7*7 }}", "三天了，{{ 7*7 }}"]
    again.close()


# ---- dry runs, restarts ----------------------------------------------------------------------------


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


# ---- custom actions --------------------------------------------------------------------------------


class CrmNote(BaseModel):
    level: str
    score: float


class WrongType(BaseModel):
    level: int
    score: float


class NeedsMore(BaseModel):
    level: str
    score: float
    owner: str


def test_custom_action_gets_validated_arguments() -> None:
    clock = ManualClock(START)
    got: list[tuple[CrmNote, str]] = []
    rt = runtime("memory://", clock, Recorder())
    rt.register_custom("crm_note", CrmNote, lambda args, action, key: got.append((args, key)))  # type: ignore[arg-type]
    [action] = rt.feed(
        {"kind": "custom", "name": "share_photo", "member": "m1", "data": {"image": "a.jpg", "likes": 12}}
    )
    rt.tick()
    assert got == [(CrmNote(level="vip", score=12), action.key)]


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            WrongType,
            r"inline\.sop:\d+: call crm_note\(\.\.\.\): argument 'level' = 'vip' does not fit WrongType",
        ),
        (NeedsMore, r"inline\.sop:\d+: call crm_note\(\.\.\.\) passes no 'owner', which NeedsMore requires"),
    ],
)
def test_custom_action_schema_is_checked_when_the_plan_loads(model: type[BaseModel], message: str) -> None:
    rt = runtime("memory://", ManualClock(START), Recorder())
    with pytest.raises(ExecutorError, match=message):
        rt.register_custom("crm_note", model, lambda args, action, key: None)
    with pytest.raises(ExecutorError, match=r"no custom action 'crm' is declared"):
        rt.register_custom("crm", CrmNote, lambda args, action, key: None)


# ---- the loops -------------------------------------------------------------------------------------


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


def test_enqueued_events_are_applied_by_the_next_tick(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    clock = ManualClock(START)
    recorder = Recorder(clock)
    front = runtime(url, clock, recorder)
    assert front.enqueue(join("m1", START, "张三")) is True
    assert front.enqueue({**join("m1", START, "张三"), "id": "j1"}) is True
    assert front.enqueue({**join("m1", START, "张三"), "id": "j1"}) is False
    with pytest.raises(EventError, match="ahead of the runtime's clock"):
        front.enqueue(join("m2", START + DAY))
    assert recorder.calls == []
    [welcome] = front.tick()
    assert welcome.detail["text"] == "欢迎 张三"
    assert recorder.texts() == ["欢迎 张三"]
    front.close()


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


def test_custom_executors_can_be_given_at_construction() -> None:
    from sopdsl.live.dispatch import CustomAction

    got: list[Any] = []
    clock = ManualClock(START)
    rt = Runtime(
        plan_of(),
        "memory://",
        clock=clock,
        executors={"crm_note": CustomAction(CrmNote, lambda args, action, key: got.append(args))},
    )
    rt.feed({"kind": "custom", "name": "share_photo", "member": "m1", "data": {"image": "a.jpg", "likes": 3}})
    rt.tick()
    assert got == [CrmNote(level="vip", score=3)]
    with pytest.raises(ExecutorError, match=r"inline\.sop:\d+: .*does not fit WrongType"):
        Runtime(
            plan_of(),
            "memory://",
            clock=clock,
            executors={"crm_note": CustomAction(WrongType, lambda args, action, key: None)},
        )


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


def test_a_slow_batch_stops_before_its_lease_runs_out(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from sopdsl.live import outbox, runtime, shards

    wall = [1000.0]
    for module in (runtime, shards, outbox):  # every module of the runtime that reads the wall clock
        monkeypatch.setattr(module, "time", SimpleNamespace(time=lambda: wall[0]))
    store = sopdsl.open_store("memory://")
    clock = ManualClock(START)
    calls: list[tuple[str, str]] = []
    other: list[Runtime] = []

    def slow(action: Action, key: str) -> None:
        calls.append(("a", key))
        wall[0] += 0.3  # each call takes 0.3 s of a 1 s lease
        other[0].dispatch()  # meanwhile another worker claims whatever has an expired lease

    a = Runtime(plan_of(), store, clock=clock, executors={"send": slow}, lease=1.0, worker="a")
    b = Runtime(
        plan_of(),
        store,
        clock=clock,
        executors={"send": lambda action, key: calls.append(("b", key))},
        worker="b",
    )
    other.append(b)
    for n in range(6):
        a.feed(join(f"m{n}", START))
    a.dispatch()
    # `a` stops each batch before its lease runs out (after 0.8 s) and claims the rest again with
    # a fresh lease; had it carried on past the lease, `b` would have taken those rows too and
    # they would have gone out twice.
    assert len(calls) == len({key for _, key in calls}) == 6


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


def test_members_attributes_are_stored_as_a_replay_sees_them(tmp_path: Path) -> None:
    import datetime as dt

    from sopdsl.errors import EngineError

    url = f"sqlite:///{tmp_path / 'state.db'}"
    rt = runtime(url, ManualClock(START), Recorder())
    rt.add_member("m1", groups=["g1"], attributes={"birthday": dt.date(1990, 5, 1), "level": 3})
    assert rt.engine().members["m1"].attributes == {"birthday": "1990-05-01", "level": 3}
    with pytest.raises(EngineError, match="member 'm2': object is not JSON data"):
        rt.add_member("m2", attributes={"x": object()})
    rt.close()
    again = runtime(url, ManualClock(START), Recorder())
    assert again.engine().members["m1"].attributes == {"birthday": "1990-05-01", "level": 3}
    assert "m2" not in again.engine().members
    again.close()


def test_run_loop_polls_but_never_spins_on_work_it_cannot_take() -> None:
    recorder = Recorder(fail=ConnectionError("down"))
    rt = Runtime(plan_of(), "memory://", executors=recorder.executors(), clock=RealClock())
    rt.feed({"kind": "join", "member": "m1", "group": "g1"})
    rt.feed({"kind": "message", "member": "m1", "group": "g1"})  # due now, but behind the failed welcome
    claims = 0
    claim = rt.store.claim

    def counted(*args: Any) -> Any:
        nonlocal claims
        claims += 1
        return claim(*args)

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


def test_a_member_registered_while_running_counts_silent_from_then(url: str) -> None:
    plan = plan_of(
        """
        timezone "Asia/Shanghai"
        template nudge = "好久不见"
        playbook quiet {
            on member silent for 7 days
            do { send nudge to member }
        }
        """
    )
    clock = ManualClock(START)
    recorder = Recorder(clock)
    rt = runtime(url, clock, recorder, plan=plan)
    rt.feed(join("m1", START))
    clock.set(START + 8 * DAY)
    rt.tick()  # m1 nudged at day 7; no timer is left, so the engine's clock stays there
    clock.set(START + 10 * DAY)
    rt.add_member("late", groups=["g1"])  # a bot syncing its member list
    clock.set(START + 30 * DAY)
    rt.tick()
    assert [(row.action["time"] - START) // DAY for row in rt.store.outbox()] == [7, 17]
    rt.close()


def test_with_concurrency_a_batch_runs_side_by_side_and_each_members_actions_stay_in_order() -> None:
    started: list[tuple[str | None, str]] = []
    running = [0]
    most = [0]
    guard = threading.Lock()

    def slow(action: Action, key: str) -> None:
        with guard:
            started.append((action.member, str(action.detail.get("text", action.kind))))
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with guard:
            running[0] -= 1

    clock = ManualClock(START)
    rt = Runtime(
        plan_of(), "memory://", executors=dict.fromkeys(ACTION_KINDS, slow), clock=clock, concurrency=4
    )
    alone = Runtime(
        plan_of(), "memory://", executors=dict.fromkeys(ACTION_KINDS, slow), clock=ManualClock(START)
    )
    for runtime in (rt, alone):
        # Each member gets two sends at once (the welcome, then the thanks for a post), in that order.
        runtime.feed_many(
            [
                e
                for n in range(8)
                for e in (join(f"m{n}", START), {"kind": "message", "member": f"m{n}", "time": START})
            ]
        )
    began = time.monotonic()
    rt.dispatch()
    took = time.monotonic() - began
    side_by_side = list(started)
    started.clear()
    alone.dispatch()
    assert len(started) == 16 and sorted(side_by_side) == sorted(started)  # the same actions
    assert 1 < most[0] <= 4
    # Each member's actions in the order one executor at a time gives them.
    for member in {m for m, _ in started}:
        assert [t for m, t in side_by_side if m == member] == [t for m, t in started if m == member]
    assert took < 0.05 * len(started) * 0.75
    rt.close()
    alone.close()


def test_a_batch_for_a_shard_another_worker_holds_still_tells_duplicates_apart() -> None:
    store = sopdsl.open_store("memory://")
    clock = ManualClock(START)
    holder = Runtime(plan_of(), store, clock=clock, shard="acme", worker="holder")
    holder.feed(join("m1", START) | {"id": "e1"})  # `holder` leases the shard
    other = Runtime(plan_of(), store, clock=clock, worker="other")
    fed = other.feed_batch([join("m2", START) | {"id": "e2"}, join("m1", START) | {"id": "e1"}], shard="acme")
    assert fed.actions == [] and fed.duplicates == [1]  # journaled for the holder; e1 it had
    assert [e.body.get("id") for e in store.journal("acme") if e.body["op"] == "event"] == ["e1", "e2"]
    holder.close()
    other.close()
