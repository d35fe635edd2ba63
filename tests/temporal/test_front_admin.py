"""The admin API with the shard on Temporal (`sopdsl run --engine temporal://...`), against a real
dev server: groups, members and imports registered over HTTP reach the shard's workflow and are
read back from its engine (the workflow's `look` update, once the entries sent are applied); the
task inbox, which needs a store, answers 501 with a body that says why."""

from __future__ import annotations

import io
import textwrap
import uuid
from collections.abc import Iterator

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
    playbook reports "举报处理" {
        in groups tagged "normal"
        on member is reported
        do { assign "请处理举报" to operator within 1 hours then { send thanks to member } }
    }
    """
)


@pytest.fixture
def client(temporal_server: str) -> Iterator[Client]:
    from sopdsl.temporal.front import TemporalFront

    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(PLAYBOOK, "admin.sop")))
    front = TemporalFront(
        plan,
        f"temporal://{temporal_server}",
        executors=Recorder().executors(),
        shard=f"admin-{uuid.uuid4().hex[:8]}",
        task_queue=f"admin-{uuid.uuid4().hex[:8]}",
    )
    service = Service(
        front,
        zone=timeutil.zone("Asia/Shanghai"),
        tokens=parse_tokens(f"{TOKEN} *", "t"),
        allowed_hosts=allowed_hosts("127.0.0.1"),
        log=io.StringIO(),
    )
    try:
        yield Client(create_app(service))
    finally:
        front.close()


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


def test_the_task_inbox_answers_501_saying_the_temporal_backend_has_no_store(client: Client) -> None:
    for method, path in (
        ("GET", "/admin/tasks"),
        ("POST", "/admin/tasks/k1/claim"),
        ("POST", "/admin/tasks/k1/done"),
    ):
        answer = client.request(method, path, json={"by": "小美"}, headers=AUTH)
        assert answer.status_code == 501, (path, answer.text)
        error = answer.json()["error"]
        assert "not available with the Temporal backend" in error and "store" in error
        assert error.startswith(f"{method} /admin/tasks")
