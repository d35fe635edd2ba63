"""The live runtime's outbox and executors: each action executed once with its key, retries with
backoff then parking, permanent failures, missing and unknown executors, executors given at
construction, custom actions' argument schemas, leases and concurrency."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest
from pydantic import BaseModel
from runtime_helpers import DAY, START, Recorder, join, plan_of, runtime
from runtime_helpers import each_store as each_store  # the `url` fixture: each store

import sopdsl
from sopdsl.engine.actions import Action
from sopdsl.live.dispatch import ACTION_KINDS, ExecutorError, RetryPolicy
from sopdsl.live.runtime import ManualClock, Runtime


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
        "ids_over_limit": 0,
    }
    rt.close()


def test_feed_and_tick_say_queued_until_the_executor_ran_as_the_http_answer_does(url: str) -> None:
    """`done` read as "sent" by an embedding bot: an action only decided says `queued`, as
    `POST /events` answers; what went out is in the outbox."""
    clock = ManualClock(START)
    recorder = Recorder(clock)
    rt = runtime(url, clock, recorder)
    [welcome] = rt.feed(join("m1", START, "张三"))
    assert welcome.status == "queued" and recorder.calls == []
    [other] = rt.feed_many([join("m2", START, "李四")])
    assert other.status == "queued"
    assert [a.status for a in rt.feed_batch([join("m3", START, "王五")]).actions] == ["queued"]
    clock.advance(3 * DAY)
    assert {a.status for a in rt.tick()} == {"queued"}
    rt.tick()
    assert {r.status for r in rt.store.outbox()} == {"done"}  # sent, once the executors ran
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


def test_an_executor_that_is_not_a_function_is_refused_at_construction() -> None:
    # Before: accepted, then every send failed with a TypeError, was retried, and parked.
    with pytest.raises(ExecutorError, match=r"executor 'send' is int 5, not a function"):
        Runtime(plan_of(), "memory://", executors={"send": 5})  # type: ignore[dict-item]


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


def test_a_slow_batch_stops_before_its_lease_runs_out() -> None:
    wall = [1000.0]  # the wall clock both workers time their leases by
    store = sopdsl.open_store("memory://")
    clock = ManualClock(START)
    calls: list[tuple[str, str]] = []
    other: list[Runtime] = []

    def slow(action: Action, key: str) -> None:
        calls.append(("a", key))
        wall[0] += 0.3  # each call takes 0.3 s of a 1 s lease
        other[0].dispatch()  # meanwhile another worker claims whatever has an expired lease

    a = Runtime(
        plan_of(), store, clock=clock, executors={"send": slow}, lease=1.0, worker="a", wall=lambda: wall[0]
    )
    b = Runtime(
        plan_of(),
        store,
        clock=clock,
        executors={"send": lambda action, key: calls.append(("b", key))},
        worker="b",
        wall=lambda: wall[0],
    )
    other.append(b)
    for n in range(6):
        a.feed(join(f"m{n}", START))
    a.dispatch()
    # `a` stops each batch before its lease runs out (after 0.8 s) and claims the rest again with
    # a fresh lease; had it carried on past the lease, `b` would have taken those rows too and
    # they would have gone out twice.
    assert len(calls) == len({key for _, key in calls}) == 6


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
    for each in (rt, alone):
        # Each member gets two sends at once (the welcome, then the thanks for a post), in that order.
        each.feed_many(
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
