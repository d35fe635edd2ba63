"""The task inbox over every store: a claim survives a restart of the service (the store's task
table), and a task finished before the restart stays finished."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, cast

import pytest
from asgiclient import Client
from livestores import HOUR, KINDS, store_url
from test_admin import AUTH, PLAYBOOK, START, admin_service

from sopdsl.live.admin_views import inbox_tasks
from sopdsl.live.app import create_app
from sopdsl.live.clock import ManualClock
from sopdsl.live.runtime import Runtime
from sopdsl.live.store import OutboxRow, open_store


@pytest.mark.parametrize("kind", KINDS)
def test_a_claim_survives_a_restart(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = store_url(kind, tmp_path, request)
    clock = ManualClock(START)
    store = open_store(url)
    first = admin_service(store, clock)
    client = Client(create_app(first))
    client.request("PUT", "/admin/groups/g1", json={"tags": ["normal"], "operator": "小美"}, headers=AUTH)
    for member in ("m1", "m2"):
        client.post("/events", json={"kind": "join", "member": member, "group": "g1"}, headers=AUTH)
        client.post("/events", json={"kind": "report", "member": member, "group": "g1"}, headers=AUTH)
    keys = [t["key"] for t in client.get("/admin/tasks", headers=AUTH).json()["tasks"]]
    assert client.post(f"/admin/tasks/{keys[0]}/claim", json={"by": "小美"}, headers=AUTH).status_code == 200
    assert client.post(f"/admin/tasks/{keys[1]}/claim", json={"by": "阿强"}, headers=AUTH).status_code == 200
    assert client.post(f"/admin/tasks/{keys[1]}/done", json={}, headers=AUTH).status_code == 202
    first.runtime.close()
    if kind != "memory":  # the memory store lives in this process: the same object is the restart
        store = open_store(url)

    again = Client(create_app(admin_service(store, clock)))
    tasks = again.get("/admin/tasks", headers=AUTH).json()["tasks"]
    assert [(t["key"], t["claimed_by"]) for t in tasks] == [(keys[0], "小美")]
    taken = again.post(f"/admin/tasks/{keys[0]}/claim", json={"by": "阿强"}, headers=AUTH)
    assert taken.status_code == 409 and "小美" in taken.json()["error"]
    assert again.post(f"/admin/tasks/{keys[1]}/done", json={}, headers=AUTH).status_code == 404
    store.close()


REVIEWS = """
timezone "Asia/Shanghai"
policy {
    escalate tasks to "陈主管"
}
event review "晒单评价" { stars: number }
template apology "差评致歉" = "{{ member.name }}，抱歉这次体验不好" with link "售后" to "https://example.com/a"
playbook bad_reviews "差评回访" {
    in private chats
    on event review
    when event.stars <= 2
    do {
        assign "{{ member.name }} 给了差评：请私聊安抚" to owner within 1 day with message apology
    }
}
"""


def bad_reviews(client: Client, owners: dict[str, str | None]) -> None:
    """Register each contact with its owner (None: none), then post a one-star review of theirs."""
    for member, owner in owners.items():
        client.request(
            "PUT",
            f"/admin/members/{member}",
            json={"name": member, "contact": True, "owner": owner},
            headers=AUTH,
        )
        client.post(
            "/events",
            json={"kind": "custom", "name": "review", "member": member, "data": {"stars": 1}},
            headers=AUTH,
        )


def test_the_inbox_shows_owner_message_deadline_and_escalation(tmp_path: Path) -> None:
    clock = ManualClock(START)
    service = admin_service(f"sqlite:///{tmp_path / 'state.db'}", clock, REVIEWS)
    client = Client(create_app(service))
    bad_reviews(client, {"c1": "小周", "c2": "小李"})
    tasks = client.get("/admin/tasks", headers=AUTH).json()["tasks"]
    first = tasks[0]
    assert [(t["member"], t["to"], t["assignee"], t["status"]) for t in tasks] == [
        ("c1", "owner", "小周", "open"),
        ("c2", "owner", "小李", "open"),
    ]
    assert first["text"] == "c1 给了差评：请私聊安抚" and first["deadline"] == "2026-03-10T08:00:00+08:00"
    assert first["template"] == "apology" and first["message"] == "c1，抱歉这次体验不好"
    assert first["attachments"] == [{"type": "link", "title": "售后", "url": "https://example.com/a"}]
    assert first["escalated_to"] is None
    assert (
        client.post(f"/admin/tasks/{first['key']}/claim", json={"by": "小周"}, headers=AUTH).status_code
        == 200
    )

    clock.advance(86400)  # both deadlines pass undone: each escalates to the chief owner
    service.tick()
    tasks = client.get("/admin/tasks", headers=AUTH).json()["tasks"]
    assert [(t["member"], t["status"], t["assignee"], t["escalated_to"], t["claimed_by"]) for t in tasks] == [
        ("c1", "escalated", "小周", "陈主管", "小周"),
        ("c2", "escalated", "小李", "陈主管", None),
    ]
    assert (
        tasks[1]["message"] == "c2，抱歉这次体验不好" and tasks[1]["deadline"] == "2026-03-10T08:00:00+08:00"
    )
    done = client.post(f"/admin/tasks/{tasks[1]['key']}/done", json={}, headers=AUTH)
    assert done.status_code == 200 and done.json()["status"] == "done"
    service.runtime.close()

    again = Client(create_app(admin_service(f"sqlite:///{tmp_path / 'state.db'}", clock, REVIEWS)))
    assert [t["member"] for t in again.get("/admin/tasks", headers=AUTH).json()["tasks"]] == ["c1"]


LEFT_TO_STAFF = """
timezone "Asia/Shanghai"
platform "企业微信" {
    cannot kick
}
playbook rule_breakers "违规清退" {
    in groups tagged "normal"
    on member is reported
    do {
        kick member because "发广告"
    }
}
"""


def test_a_kick_the_platform_cannot_do_waits_in_the_inbox_until_done(tmp_path: Path) -> None:
    clock = ManualClock(START)
    service = admin_service("memory://", clock, LEFT_TO_STAFF)
    client = Client(create_app(service))
    client.request("PUT", "/admin/groups/g1", json={"tags": ["normal"], "operator": "小美"}, headers=AUTH)
    client.post(
        "/events",
        json={"kind": "join", "member": "m1", "group": "g1", "data": {"name": "张三"}},
        headers=AUTH,
    )
    client.post("/events", json={"kind": "report", "member": "m1", "group": "g1"}, headers=AUTH)
    [task] = client.get("/admin/tasks", headers=AUTH).json()["tasks"]
    assert (task["instead_of"], task["because"], task["assignee"], task["status"]) == (
        "kick",
        "发广告",
        "小美",
        "open",
    )
    assert (
        task["text"] == "remove 张三 (m1) from g1 by hand: the platform cannot" and task["deadline"] is None
    )
    assert client.get("/admin/members/m1", headers=AUTH).json()["member"]["groups"] == ["g1"]
    done = client.post(f"/admin/tasks/{task['key']}/done", json={}, headers=AUTH)
    assert done.status_code == 200 and client.get("/admin/tasks", headers=AUTH).json()["tasks"] == []


BUSY = (  # the admin tests' playbooks, an escalation, and a welcome that fills the outbox with sends
    PLAYBOOK
    + """
policy {
    escalate tasks to "陈主管"
}
template hello = "{{ member.name }}，欢迎"
playbook welcome "欢迎" {
    in groups tagged "normal"
    on member joins
    do { send hello to member }
}
"""
)


@pytest.mark.parametrize("kind", KINDS)
def test_the_inbox_reads_only_task_rows_and_answers_as_from_the_whole_outbox(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ManualClock(START)
    store = open_store(store_url(kind, tmp_path, request))
    service = admin_service(store, clock, BUSY)
    client = Client(create_app(service))
    client.request("PUT", "/admin/groups/g1", json={"tags": ["normal"], "operator": "小美"}, headers=AUTH)
    for n in range(40):  # the outbox fills with sends the inbox has no business reading
        client.post("/events", json={"kind": "join", "member": f"m{n}", "group": "g1"}, headers=AUTH)
    for member in ("m1", "m2", "m3"):
        client.post("/events", json={"kind": "report", "member": member, "group": "g1"}, headers=AUTH)
    runtime = cast(Runtime, service.runtime)
    shard = runtime.shard
    whole_outbox = store.outbox

    def from_whole_outbox() -> list[dict[str, Any]]:  # the inbox as it was read before: every row
        rows = {(r.kind, r.key): r.action for r in whole_outbox(shard) if r.kind in ("task", "escalate")}
        marks = {k: {"claimed_by": m.claimed_by, "done": m.done} for k, m in store.task_marks(shard).items()}
        return inbox_tasks(runtime.look("tasks", ""), rows, marks)

    def refused(shard: str | None = None) -> list[OutboxRow]:
        raise AssertionError("the task inbox read the whole outbox")

    monkeypatch.setattr(store, "outbox", refused)
    tasks = client.get("/admin/tasks", headers=AUTH).json()["tasks"]
    assert [t["member"] for t in tasks] == ["m1", "m2", "m3"] and tasks == from_whole_outbox()
    keys = [t["key"] for t in tasks]
    assert client.post(f"/admin/tasks/{keys[0]}/claim", json={"by": "小美"}, headers=AUTH).status_code == 200
    assert client.post(f"/admin/tasks/{keys[1]}/done", json={}, headers=AUTH).status_code == 202
    assert client.post(f"/admin/tasks/{keys[1]}/claim", json={"by": "小美"}, headers=AUTH).status_code == 404
    assert client.post("/admin/tasks/nope/done", json={}, headers=AUTH).status_code == 404

    clock.advance(HOUR)  # m1's and m3's tasks escalate; the inbox keys each by its task
    service.tick()
    tasks = client.get("/admin/tasks", headers=AUTH).json()["tasks"]
    assert [(t["key"], t["status"], t["claimed_by"]) for t in tasks] == [
        (keys[0], "escalated", "小美"),
        (keys[2], "escalated", None),
    ]
    assert tasks == from_whole_outbox()
    taken = client.post(f"/admin/tasks/{keys[0]}/claim", json={"by": "阿强"}, headers=AUTH)
    assert taken.status_code == 409 and "小美" in taken.json()["error"]
    assert client.post(f"/admin/tasks/{keys[2]}/done", json={}, headers=AUTH).json()["status"] == "done"
    assert client.post(f"/admin/tasks/{keys[2]}:escalate/done", json={}, headers=AUTH).status_code == 404
    tasks = client.get("/admin/tasks", headers=AUTH).json()["tasks"]
    assert [t["key"] for t in tasks] == [keys[0]] and tasks == from_whole_outbox()
    service.runtime.close()


def test_the_inbox_query_uses_the_staff_index(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    connection = sqlite3.connect(tmp_path / "state.db")
    for key in (None, "k"):
        where = "shard = ? AND kind IN ('task', 'escalate')" + (" AND key IN (?, ?)" if key else "")
        params = ("s",) + ((key, f"{key}:escalate") if key else ())
        plan = connection.execute(
            f"EXPLAIN QUERY PLAN SELECT id FROM sopdsl_outbox WHERE {where} ORDER BY id", params
        ).fetchall()
        assert "sopdsl_outbox_staff" in str(plan) or key is not None, plan
        assert "SCAN sopdsl_outbox" not in str(plan), plan
    connection.close()
    store.close()
