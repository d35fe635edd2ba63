"""Names too long or holding control characters, refused at the door as ids are.

Ids were held to 256 characters without control characters, but names were not: a member's name
of 1 MB (a join's `data.name`, the admin API's `name`) was journaled, kept in every snapshot and
rendered into every send to the member, and an escape in a group's operator went on to staff as
it was. A name is at most `intake.MAX_NAME` characters; a member's or a group's may hold a line
break (`test_id_controls.py`), the name of staff (an operator, an owner, a task's claimer) none.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from asgiclient import Client
from test_admin import AUTH, START, admin_service

from sopdsl.live.app import create_app
from sopdsl.live.clock import ManualClock
from sopdsl.live.intake import EventError, intake
from sopdsl.live.runtime import Runtime
from sopdsl.live.service import Service

JSON = {**AUTH, "Content-Type": "application/json"}
MAX_NAME = 256  # characters of a name (`intake.MAX_NAME`)
LONG = "名" * (MAX_NAME + 1)
ISO = "2026-03-01T08:00:00+08:00"  # a time as text: the careful path, not the everyday one


@pytest.fixture
def service() -> Iterator[Service]:
    svc = admin_service("memory://", ManualClock(START))
    yield svc
    svc.runtime.close()


@pytest.fixture
def client(service: Service) -> Client:
    return Client(create_app(service))


def journaled(service: Service) -> list[dict[str, Any]]:
    assert isinstance(service.runtime, Runtime)
    return [e.body for e in service.runtime.store.journal(service.runtime.shard)]


def events(service: Service) -> list[str]:
    return [str(b.get("member")) for b in journaled(service) if b["op"] == "event"]


@pytest.mark.parametrize("careful", [False, True], ids=["everyday", "careful"])
@pytest.mark.parametrize(
    ("event", "field", "says"),
    [
        ({"kind": "join", "data": {"name": LONG}}, "data.name", f"names are at most {MAX_NAME}"),
        ({"kind": "join", "data": {"nickname": LONG}}, "data.nickname", f"names are at most {MAX_NAME}"),
        (
            {"kind": "rename", "data": {"nickname": "阿\x1b[2J"}},
            "data.nickname",
            "control character (\\u001b)",
        ),
        ({"kind": "join", "data": {"name": "张\x00三"}}, "data.name", "control character (\\u0000)"),
        # The engine names a member it first meets by the `name` of whatever event it is.
        (
            {"kind": "message", "data": {"text": "hi", "name": "张\x07"}},
            "data.name",
            "control character (\\u0007)",
        ),
    ],
)
def test_an_event_with_a_bad_name_is_refused_naming_the_field(
    client: Client, service: Service, event: dict[str, Any], field: str, says: str, careful: bool
) -> None:
    sent = {**event, "member": "m1", "group": "g1"} | ({"time": ISO} if careful else {})
    answer = client.post("/events", content=json.dumps(sent), headers=JSON)
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == field
    assert says in answer.json()["error"] and f"'{field}'" in answer.json()["error"]
    assert events(service) == []
    ok = client.post("/events", json={"kind": "join", "member": "m1", "group": "g1"}, headers=JSON)
    assert ok.status_code == 202


def test_both_paths_of_intake_refuse_a_name_alike(service: Service) -> None:
    assert isinstance(service.runtime, Runtime)
    declarations = service.runtime.plan.declarations
    found = []
    for event in (
        {"kind": "join", "member": "m1", "data": {"name": LONG}},
        {"kind": "join", "member": "m1", "data": {"name": LONG}, "time": ISO},
    ):
        with pytest.raises(EventError) as caught:
            intake(event, declarations, START)
        found.append((caught.value.field, str(caught.value)))
    assert found[0] == found[1]


def test_a_name_of_the_longest_length_is_taken_and_kept(client: Client, service: Service) -> None:
    name = "会" * MAX_NAME
    event = {"kind": "join", "member": "m1", "group": "g1", "data": {"name": name, "nickname": name}}
    assert client.post("/events", json=event, headers=JSON).status_code == 202
    member = client.get("/admin/members/m1", headers=AUTH).json()["member"]
    assert (member["name"], member["nickname"]) == (name, name)


def test_a_list_with_a_bad_name_stores_the_events_before_it_only(client: Client, service: Service) -> None:
    batch = [
        {"kind": "join", "member": "m1", "group": "g1"},
        {"kind": "join", "member": "m2", "group": "g1", "data": {"name": LONG}},
        {"kind": "join", "member": "m3", "group": "g1"},
    ]
    answer = client.post("/events", json=batch, headers=JSON)
    assert answer.status_code == 400, answer.text
    assert (answer.json()["index"], answer.json()["field"]) == (1, "data.name")
    assert events(service) == ["m1"]


@pytest.mark.parametrize(
    ("path", "body", "field", "says"),
    [
        ("/admin/members/m1", {"name": LONG}, "name", f"names are at most {MAX_NAME}"),
        ("/admin/members/m1", {"nickname": "阿\x1b[31m"}, "nickname", "control character (\\u001b)"),
        ("/admin/members/m1", {"owner": "小\n美"}, "owner", "control character (\\n)"),
        ("/admin/members/m1", {"owner": LONG}, "owner", f"names are at most {MAX_NAME}"),
        ("/admin/groups/g1", {"name": LONG}, "name", f"names are at most {MAX_NAME}"),
        ("/admin/groups/g1", {"name": "骑友群\x00"}, "name", "control character (\\u0000)"),
        ("/admin/groups/g1", {"operator": LONG}, "operator", f"names are at most {MAX_NAME}"),
        ("/admin/groups/g1", {"operator": "小美\r\nERROR"}, "operator", "control character (\\r)"),
        ("/admin/groups/g1", {"owner": "陈\t主管"}, "owner", "control character (\\t)"),
    ],
)
def test_a_record_with_a_bad_name_is_refused_and_nothing_stored(
    client: Client, service: Service, path: str, body: dict[str, object], field: str, says: str
) -> None:
    answer = client.request("PUT", path, json=body, headers=AUTH)
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == field and says in answer.json()["error"]
    assert answer.json()["error"].startswith(("member 'm1': ", "group 'g1': "))
    assert client.get(path, headers=AUTH).status_code == 404
    assert [b for b in journaled(service) if b["op"] in ("member", "group")] == []


def test_a_member_or_group_name_may_hold_a_line_break(client: Client) -> None:
    # As an event's `data.name` may (`test_id_controls.py`): a message renders it as a line.
    member = client.request("PUT", "/admin/members/m1", json={"name": "张\n三"}, headers=AUTH)
    assert member.status_code == 200, member.text
    group = client.request("PUT", "/admin/groups/g1", json={"name": "骑友群\n二群"}, headers=AUTH)
    assert group.status_code == 200, group.text


def test_an_import_locates_each_bad_name_and_imports_the_rest(client: Client) -> None:
    rows = f"id,name,nickname,owner\nm1,甲,,\nm2,{LONG},,\nm3,丙,\x1b[2J,\nm4,丁,,小\x7f美\nm5,戊,,\n"
    answer = client.post("/admin/members/import", content=rows, headers={**AUTH, "Content-Type": "text/csv"})
    assert answer.status_code == 400, answer.text
    assert answer.json()["imported"] == 2
    assert [(f["line"], f["field"]) for f in answer.json()["failed"]] == [
        (3, "name"),
        (4, "nickname"),
        (5, "owner"),
    ]
    assert all(f["error"].startswith(f["field"]) for f in answer.json()["failed"])
    assert client.get("/admin/members/m2", headers=AUTH).status_code == 404
    assert client.get("/admin/members/m5", headers=AUTH).status_code == 200

    lines = "\n".join(
        json.dumps(m) for m in ({"id": "j1", "name": "甲"}, {"id": "j2", "nickname": LONG}, {"id": "j3"})
    )
    answer = client.post(
        "/admin/members/import", content=lines, headers={**AUTH, "Content-Type": "application/x-ndjson"}
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["imported"] == 2
    assert [(f["line"], f["field"]) for f in answer.json()["failed"]] == [(2, "nickname")]


def test_a_claim_by_a_bad_name_is_refused_and_the_task_stays_free(client: Client, service: Service) -> None:
    client.request("PUT", "/admin/groups/g1", json={"tags": ["normal"], "operator": "小美"}, headers=AUTH)
    client.post("/events", json={"kind": "join", "member": "m1", "group": "g1"}, headers=AUTH)
    client.post("/events", json={"kind": "report", "member": "m1", "group": "g1"}, headers=AUTH)
    [task] = client.get("/admin/tasks", headers=AUTH).json()["tasks"]
    for who, says in ((LONG, f"names are at most {MAX_NAME}"), ("小美\nERROR", "control character (\\n)")):
        answer = client.post(f"/admin/tasks/{task['key']}/claim", json={"by": who}, headers=AUTH)
        assert answer.status_code == 400, answer.text
        assert answer.json()["field"] == "by" and says in answer.json()["error"]
    [task] = client.get("/admin/tasks", headers=AUTH).json()["tasks"]
    assert task["claimed_by"] is None
    taken = client.post(f"/admin/tasks/{task['key']}/claim", json={"by": "会" * MAX_NAME}, headers=AUTH)
    assert taken.status_code == 200, taken.text
