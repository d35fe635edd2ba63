"""Marking a task done once its deadline has come, before the timer loop's next turn took the
`else`: a 409 that says so, not a 202.

Before, the `task_done` was stored after the deadline, the engine took the `else` (as it must:
the deadline came first) and the answer was a `202` listing the else's send, with the task marked
done: staff read their late click as in time, and with a chief owner the escalation went out
for a task the inbox no longer showed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from asgiclient import Client
from test_admin import AUTH, PLAYBOOK, START, admin_service

from sopdsl.live.app import create_app
from sopdsl.live.clock import ManualClock
from sopdsl.live.runtime import Runtime
from sopdsl.live.service import Service

JSON = {**AUTH, "Content-Type": "application/json"}
ESCALATING = PLAYBOOK.replace(
    'timezone "Asia/Shanghai"', 'timezone "Asia/Shanghai"\npolicy { escalate tasks to "陈主管" }'
)


@pytest.fixture(params=["plain", "escalating"])
def service(request: pytest.FixtureRequest) -> Iterator[Service]:
    svc = admin_service(
        "memory://", ManualClock(START), ESCALATING if request.param == "escalating" else PLAYBOOK
    )
    yield svc
    svc.runtime.close()


def sent(service: Service) -> list[str | None]:
    recorder = service.runtime.executors["send"]
    calls = recorder.calls
    return [action.detail.get("template") for action, _ in calls if action.kind == "send"]


def test_done_after_the_deadline_is_a_409_and_the_else_goes(service: Service) -> None:
    assert isinstance(service.runtime, Runtime)
    client = Client(create_app(service))
    group = {"name": "骑友群", "tags": ["normal"], "operator": "小美"}
    assert client.request("PUT", "/admin/groups/g1", json=group, headers=AUTH).status_code == 200
    report = {"kind": "report", "member": "m1", "group": "g1", "data": {"reason": "ad"}}
    assert client.post("/events", json=report, headers=JSON).status_code == 202
    [task] = client.get("/admin/tasks", headers=AUTH).json()["tasks"]

    service.runtime.clock.advance(3601)  # type: ignore[attr-defined]  # past the deadline; no loop turn yet
    late = client.post(f"/admin/tasks/{task['key']}/done", json={}, headers=JSON)
    assert late.status_code == 409, late.text
    assert "passed its deadline" in late.json()["error"] and "else" in late.json()["error"]

    service.tick()
    assert sent(service) == ["sorry"]
    escalated = client.get("/admin/tasks", headers=AUTH).json()["tasks"]
    if "陈主管" in str(service.runtime.plan.declarations.policy):
        assert [(t["key"], t["status"]) for t in escalated] == [(task["key"], "escalated")]
        done = client.post(f"/admin/tasks/{task['key']}/done", json={}, headers=JSON)
        assert done.status_code == 200 and done.json()["status"] == "done"
    else:
        assert escalated == []
        assert client.post(f"/admin/tasks/{task['key']}/done", json={}, headers=JSON).status_code == 404
    assert sent(service) == ["sorry"]


def test_done_at_the_deadline_itself_is_in_time_as_the_engine_takes_it(service: Service) -> None:
    client = Client(create_app(service))
    group = {"name": "骑友群", "tags": ["normal"], "operator": "小美"}
    client.request("PUT", "/admin/groups/g1", json=group, headers=AUTH)
    client.post("/events", json={"kind": "report", "member": "m1", "group": "g1"}, headers=JSON)
    [task] = client.get("/admin/tasks", headers=AUTH).json()["tasks"]
    service.runtime.clock.advance(3600)  # type: ignore[attr-defined]
    done = client.post(f"/admin/tasks/{task['key']}/done", json={}, headers=JSON)
    assert done.status_code == 202, done.text
    assert [a["template"] for a in done.json()["actions"]] == ["thanks"]
