"""The admin API with the shard on Temporal (`sopdsl run --engine temporal://...`), against a real
dev server: groups, members and imports registered over HTTP reach the shard's workflow and are
read back from its engine (the workflow's `look` update, once the entries sent are applied); the
task inbox lists, claims and finishes tasks kept in the workflow, across continue-as-new."""

from __future__ import annotations

import io
import textwrap
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from asgiclient import Client
from temporalserver import Recorder

import sopdsl
from sopdsl.live.app import create_app
from sopdsl.live.auth import allowed_hosts, parse_tokens
from sopdsl.live.service import Service
from sopdsl.plan import timeutil

TOKEN = "admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PLAYBOOK = textwrap.dedent(
    """
    timezone "Asia/Shanghai"
    attribute level: number "等级"
    template hello = "{{ member.name }}，你好"
    template thanks = "已处理"
    playbook later "一天后问候" {
        in groups tagged "normal"
        on member joins
        do { wait 1 days  send hello to member }
    }
    platform "企业微信" { cannot kick }
    playbook reports "举报处理" {
        in groups tagged "normal"
        on member is reported
        do { assign "请处理 {{ member.name }} 的举报" to operator within 1 hours then { send thanks to member } }
    }
    playbook spam "广告清退" {
        in groups tagged "normal"
        on member posts when event.text starts with "加微信"
        do { kick member because "发广告" }
    }
    """
)


@pytest.fixture
def front(temporal_server: str) -> Iterator[Any]:
    from sopdsl.temporal.front import TemporalFront

    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(PLAYBOOK, "admin.sop")))
    recorder = Recorder()
    front = TemporalFront(
        plan,
        f"temporal://{temporal_server}",
        executors=recorder.executors(),
        shard=f"admin-{uuid.uuid4().hex[:8]}",
        task_queue=f"admin-{uuid.uuid4().hex[:8]}",
    )
    front.recorder = recorder  # type: ignore[attr-defined]  # kept on the front for the tests' sent()
    front.client.continue_after = 40  # a new run every few requests: what the inbox keeps must cross
    try:
        yield front
    finally:
        front.close()


@pytest.fixture
def client(front: Any) -> Client:
    service = Service(
        front,
        zone=timeutil.zone("Asia/Shanghai"),
        tokens=parse_tokens(f"{TOKEN} *", "t"),
        allowed_hosts=allowed_hosts("127.0.0.1"),
        log=io.StringIO(),
    )
    return Client(create_app(service))


def test_groups_members_and_imports_reach_the_workflow_and_read_back(client: Client) -> None:
    assert client.get("/admin/groups/g1", headers=AUTH).status_code == 404  # no workflow yet
    group = client.request(
        "PUT",
        "/admin/groups/g1",
        json={"name": "骑友群", "tags": ["normal"], "operator": "小美"},
        headers=AUTH,
    )
    assert group.status_code == 200, group.text
    assert group.json()["group"] == {
        "id": "g1",
        "name": "骑友群",
        "tags": ["normal"],
        "timezone": "Asia/Shanghai",
        "operator": "小美",
        "owner": None,
        "members": 0,
    }
    member = client.request(
        "PUT", "/admin/members/m1", json={"name": "阿明", "attributes": {"level": 3}}, headers=AUTH
    )
    assert member.status_code == 200, member.text
    assert member.json()["member"]["attributes"] == {"level": 3}
    joined = client.post("/events", json={"kind": "join", "member": "m1", "group": "g1"}, headers=AUTH)
    assert joined.status_code == 202
    state = client.get("/admin/members/m1", headers=AUTH)
    assert state.status_code == 200, state.text
    assert state.json()["member"]["groups"] == ["g1"]
    assert [(f["playbook"], f["waiting"]) for f in state.json()["flows"]] == [("later", None)]
    assert [(t["timer"], t["playbook"]) for t in state.json()["timers"]] == [("resume", "later")]
    imported = client.post(
        "/admin/members/import",
        content="id,name,attr.level\nm2,小红,5\nm3,小刚,x\n",
        headers=AUTH | {"content-type": "text/csv"},
    )
    assert imported.status_code == 400 and imported.json()["imported"] == 1
    assert [f["line"] for f in imported.json()["failed"]] == [3]
    assert client.get("/admin/members/m2", headers=AUTH).json()["member"]["attributes"] == {"level": 5}
    assert client.get("/admin/members/nobody", headers=AUTH).status_code == 404
    assert client.get("/admin/groups/g1", headers=AUTH).json()["group"]["members"] == 1


def test_the_task_inbox_lists_claims_and_finishes_tasks_kept_in_the_workflow(
    client: Client, front: Any
) -> None:
    assert client.get("/admin/tasks", headers=AUTH).json() == {"tasks": []}  # no workflow yet
    client.request("PUT", "/admin/groups/g1", json={"tags": ["normal"], "operator": "小美"}, headers=AUTH)
    for member in ("m1", "m2"):
        client.post("/events", json={"kind": "join", "member": member, "group": "g1"}, headers=AUTH)
        client.post("/events", json={"kind": "report", "member": member, "group": "g1"}, headers=AUTH)
    spam = {"kind": "message", "member": "m2", "group": "g1", "data": {"text": "加微信领红包"}}
    client.post("/events", json=spam, headers=AUTH)
    tasks = client.get("/admin/tasks", headers=AUTH).json()["tasks"]
    assert [(t["member"], t["assignee"], t["status"], t["instead_of"], t["claimed_by"]) for t in tasks] == [
        ("m1", "小美", "open", None, None),
        ("m2", "小美", "open", None, None),
        ("m2", "小美", "open", "kick", None),
    ]
    assert tasks[0]["text"] == "请处理 m1 的举报" and tasks[0]["deadline"] is not None
    first, _, kick = (t["key"] for t in tasks)

    assert client.post(f"/admin/tasks/{first}/claim", json={"by": "小美"}, headers=AUTH).status_code == 200
    taken = client.post(f"/admin/tasks/{first}/claim", json={"by": "阿强"}, headers=AUTH)
    assert taken.status_code == 409 and "小美" in taken.json()["error"]
    done = client.post(f"/admin/tasks/{first}/done", json={}, headers=AUTH)
    assert done.status_code == 202, done.text
    assert client.post(f"/admin/tasks/{first}/done", json={}, headers=AUTH).status_code == 404
    kicked = client.post(f"/admin/tasks/{kick}/done", json={}, headers=AUTH)
    assert kicked.status_code == 200 and kicked.json()["status"] == "done"
    assert client.post(f"/admin/tasks/{kick}/claim", json={"by": "小美"}, headers=AUTH).status_code == 404
    # The flow went on with its `then`: the member is thanked, by the worker's executor.
    deadline = time.monotonic() + 30
    while "thanks" not in sent(front) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sent(front).count("thanks") == 1
    left = client.get("/admin/tasks", headers=AUTH).json()["tasks"]
    assert [(t["member"], t["claimed_by"]) for t in left] == [("m2", None)]
    # A claim, and the done marks, cross into the runs the workflow continues as new into.
    claimed = client.post(f"/admin/tasks/{left[0]['key']}/claim", json={"by": "阿强"}, headers=AUTH)
    assert claimed.status_code == 200
    runs = front._call(front.client.status())["runs"]
    for n in range(100):
        chat = {"kind": "message", "member": "m1", "group": "g1", "data": {"text": f"聊天 {n}"}}
        client.post("/events", json=chat, headers=AUTH)
        if front._call(front.client.status())["runs"] > runs:
            break
    assert front._call(front.client.status())["runs"] > runs
    after = client.get("/admin/tasks", headers=AUTH).json()["tasks"]
    assert [(t["member"], t["instead_of"], t["claimed_by"]) for t in after] == [("m2", None, "阿强")]


def sent(front: Any) -> list[str]:
    return [a.detail.get("template", a.kind) for _, a in front.recorder.calls if a.kind == "send"]
