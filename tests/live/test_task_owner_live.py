"""A task for a member without an owner, live: the same as in the dry run (one engine). Its action
is stored `unassigned` with the reason, still handed to the executors (WeCom finds the contact's
owner itself), shown in the inbox with why it names nobody, and at its deadline it escalates and
takes its `else`. It used to be stored done with `assignee: null` and shown as an ordinary task."""

from __future__ import annotations

from pathlib import Path

import pytest
from asgiclient import Client
from livestores import HOUR, KINDS, store_url
from test_admin import AUTH, START, admin_service
from test_service import Recorder
from test_task_inbox import REVIEWS, bad_reviews

from sopdsl.live.app import create_app
from sopdsl.live.clock import ManualClock
from sopdsl.live.runtime import Runtime

ELSE = REVIEWS.replace(
    "with message apology",
    'with message apology then { tag member "handled" } else { tag member "missed" }',
)
NOBODY = "the member has no owner (跟进人) to do it"


@pytest.mark.parametrize("kind", KINDS)
def test_a_task_for_a_member_without_an_owner_is_unassigned_live(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    clock = ManualClock(START)
    service = admin_service(store_url(kind, tmp_path, request), clock, ELSE)
    assert isinstance(service.runtime, Runtime)
    client = Client(create_app(service))
    bad_reviews(client, {"c1": "小周", "c2": None})
    tasks = client.get("/admin/tasks", headers=AUTH).json()["tasks"]
    assert [(t["member"], t["assignee"], t["status"], t["unassigned"]) for t in tasks] == [
        ("c1", "小周", "open", None),
        ("c2", None, "open", NOBODY),
    ]
    stored = {r.action["member"]: r.action for r in service.runtime.store.outbox() if r.kind == "task"}
    assert (stored["c2"]["status"], stored["c2"]["reason"]) == ("unassigned", NOBODY)
    assert (stored["c1"]["status"], stored["c1"]["reason"]) == ("done", None)
    # Handed to the executors all the same: one that can find the owner (WeCom) still does.
    service.tick()
    recorder = service.runtime.executors["task"]
    assert isinstance(recorder, Recorder)
    assert sorted(a.member or "" for a, _ in recorder.calls if a.kind == "task") == ["c1", "c2"]

    clock.set(START + 24 * HOUR + 1)
    service.tick()
    done = [
        (r.kind, r.action["member"], r.action["detail"].get("tags")) for r in service.runtime.store.outbox()
    ]
    assert ("tag", "c2", ["missed"]) in done and ("escalate", "c2", None) in done
    assert ("tag", "c2", ["handled"]) not in done
    service.runtime.close()
