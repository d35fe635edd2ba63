"""Group commit: requests arriving together share one transaction, and each still gets its own answer."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from test_service import JOIN, START, Recorder, plan

from sopdsl.errors import StoreError
from sopdsl.live.clock import ManualClock
from sopdsl.live.commit import ClosedError, GroupCommitter
from sopdsl.live.fed import Fed
from sopdsl.live.intake import EventError
from sopdsl.live.runtime import Runtime


@pytest.fixture
def runtime(tmp_path: Any) -> Any:
    rt = Runtime(
        plan(), f"sqlite:///{tmp_path / 's.db'}", executors={"send": Recorder()}, clock=ManualClock(START)
    )
    yield rt
    rt.close()


def test_requests_waiting_together_share_a_transaction_and_get_their_own_answers(runtime: Runtime) -> None:
    first_in = threading.Event()
    release = threading.Event()
    batches: list[int] = []

    def feed_batch(events: list[dict[str, Any]]) -> Fed:
        batches.append(len(events))
        if len(batches) == 1:
            first_in.set()
            release.wait(10)  # the first commit is slow: the others queue behind it
        return runtime.feed_batch(events)

    committer = GroupCommitter(feed_batch)
    answers: dict[str, Fed] = {}

    def post(member: str, event_id: str) -> None:
        answers[member] = committer.submit([{**JOIN, "member": member, "id": event_id}])

    threads = [threading.Thread(target=post, args=("m0", "e0"))]
    threads[0].start()
    assert first_in.wait(10)
    threads += [threading.Thread(target=post, args=(f"m{i}", f"e{i}")) for i in range(1, 8)]
    threads.append(threading.Thread(target=post, args=("dup", "e3")))  # a duplicate of m3's id
    for thread in threads[1:]:
        thread.start()
    while len(committer._queue) < 8:
        time.sleep(0.01)
    release.set()
    for thread in threads:
        thread.join(10)
    committer.close()
    assert batches == [1, 8] and committer.transactions == 2
    for i in range(8):
        [action] = answers[f"m{i}"].actions
        assert action.member == f"m{i}" and answers[f"m{i}"].duplicates == []
    assert answers["dup"].actions == [] and answers["dup"].duplicates == [0]


def test_a_bad_request_in_a_shared_transaction_fails_alone(runtime: Runtime) -> None:
    gate = threading.Event()
    calls: list[int] = []

    def feed_batch(events: list[dict[str, Any]]) -> Fed:
        calls.append(len(events))
        if len(calls) == 1:
            gate.wait(10)
        return runtime.feed_batch(events)

    committer = GroupCommitter(feed_batch)
    results: dict[str, Any] = {}

    def post(name: str, events: list[dict[str, Any]]) -> None:
        try:
            results[name] = committer.submit(events)
        except EventError as exc:
            results[name] = exc

    first = threading.Thread(target=post, args=("first", [JOIN]))
    first.start()
    while not calls:
        time.sleep(0.01)
    good = threading.Thread(target=post, args=("good", [{**JOIN, "member": "m2"}]))
    bad = threading.Thread(
        target=post, args=("bad", [{**JOIN, "member": "m3"}, {"kind": "tag", "member": "m3"}])
    )
    good.start()
    bad.start()
    while len(committer._queue) < 2:
        time.sleep(0.01)
    gate.set()
    for thread in (first, good, bad):
        thread.join(10)
    committer.close()
    assert isinstance(results["good"], Fed) and [a.member for a in results["good"].actions] == ["m2"]
    assert isinstance(results["bad"], EventError) and results["bad"].index == 1
    assert runtime.stats()["events_in"] == 2  # m1 and m2; nothing of the bad request
    with pytest.raises(ClosedError):
        committer.submit([JOIN])


class _Syncer:
    """A store's sync as the committer sees it: `inside` during `unsynced`, and each `sync`
    waits for `release` (or fails with `fail`)."""

    syncs_apart = True

    def __init__(self) -> None:
        self.inside = False
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail: Exception | None = None

    @contextmanager
    def unsynced(self) -> Iterator[None]:
        self.inside = True
        try:
            yield
        finally:
            self.inside = False

    def sync(self) -> None:
        self.entered.set()
        assert self.release.wait(10)
        if self.fail is not None:
            raise self.fail


def test_a_request_is_answered_after_the_sync_and_the_next_ones_apply_meanwhile(runtime: Runtime) -> None:
    syncer = _Syncer()
    batches: list[int] = []
    gate = threading.Event()

    def feed_batch(events: list[dict[str, Any]]) -> Fed:
        assert syncer.inside  # committed without its own sync
        batches.append(len(events))
        if len(batches) == 2:
            assert gate.wait(10)  # the second transaction is slow: the rest queue behind it
        return runtime.feed_batch(events)

    committer = GroupCommitter(feed_batch, syncer=syncer)
    answers: dict[str, Any] = {}

    def post(member: str) -> None:
        answers[member] = committer.submit([{**JOIN, "member": member, "id": f"e-{member}"}])

    first = threading.Thread(target=post, args=("m0",))
    first.start()
    assert syncer.entered.wait(10)
    time.sleep(0.05)
    assert answers == {}  # committed, but not answered before its sync
    others = [threading.Thread(target=post, args=(f"m{i}",)) for i in range(1, 9)]
    others[0].start()
    while len(batches) < 2:
        time.sleep(0.01)
    for thread in others[1:]:
        thread.start()
    while len(committer._queue) < 7:
        time.sleep(0.01)
    gate.set()
    while len(batches) < 3:  # applied while the first one's sync is still under way
        time.sleep(0.01)
    time.sleep(0.05)
    # The seven queued meanwhile go in one transaction: a transaction takes all that are queued.
    assert batches == [1, 1, 7] and answers == {}
    syncer.release.set()
    for thread in [first, *others]:
        thread.join(10)
    committer.close()
    assert sorted(answers) == [f"m{i}" for i in range(9)]
    assert all([a.member for a in answers[m].actions] == [m] for m in answers)


def test_a_failed_sync_refuses_the_requests_it_would_have_made_durable(runtime: Runtime) -> None:
    syncer = _Syncer()
    syncer.fail = StoreError("store sqlite:///s.db: cannot sync the WAL file: [Errno 5] I/O error")
    syncer.release.set()
    committer = GroupCommitter(runtime.feed_batch, syncer=syncer)
    with pytest.raises(StoreError, match="cannot sync"):
        committer.submit([JOIN])
    committer.close()
