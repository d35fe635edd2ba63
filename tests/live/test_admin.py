"""The admin API, in-process: groups and members registered over HTTP reach the engine (a birthday
playbook fires from a birthday given over HTTP), bulk imports stream and report each bad line,
a member's live state shows, and the task inbox lists, claims and finishes `assign` tasks."""

from __future__ import annotations

import io
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiclient import Client
from livestores import KINDS, store_url
from test_service import Recorder

import sopdsl
from sopdsl.live.app import create_app
from sopdsl.live.auth import allowed_hosts, parse_tokens
from sopdsl.live.clock import ManualClock
from sopdsl.live.runtime import Runtime
from sopdsl.live.service import Service
from sopdsl.live.store import Store
from sopdsl.plan import timeutil

TOKEN = "admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ZONE = timeutil.zone("Asia/Shanghai")
START = 1_773_014_400  # 2026-03-09 08:00 in Shanghai
PLAYBOOK = textwrap.dedent(
    """
    timezone "Asia/Shanghai"
    attribute birthday: date "生日"
    attribute level: number "等级"
    template wish = "{{ member.name }}，生日快乐！"
    template thanks = "{{ member.name }}，已处理"
    template sorry = "{{ member.name }}，稍后回复你"
    playbook birthday "生日祝福" {
        in groups tagged "normal"
        on member.birthday at 09:00
        do { send wish to member }
    }
    playbook reports "举报处理" {
        in groups tagged "normal"
        on member is reported
        do {
            assign "请处理 {{ member.name }} 的举报" to operator within 1 hours then {
                send thanks to member
            } else {
                send sorry to member
            }
        }
    }
    """
)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


def registered(service: Service) -> list[dict[str, Any]]:
    """The members and groups the service's shard journaled (registrations, not events)."""
    assert isinstance(service.runtime, Runtime)
    journal = service.runtime.store.journal(service.runtime.shard)
    return [e.body for e in journal if e.body["op"] in ("member", "group")]


def admin_service(store: str | Store, clock: ManualClock, playbook: str = PLAYBOOK) -> Service:
    """A service over `playbook` on `store`, started as the timer loop starts it."""
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(playbook, "admin.sop")))
    recorder = Recorder()
    runtime = Runtime(
        plan, store, executors=dict.fromkeys(("send", "task", "escalate"), recorder), clock=clock
    )
    svc = Service(
        runtime,
        zone=ZONE,
        tokens=parse_tokens(f"{TOKEN} default", "t"),
        allowed_hosts=allowed_hosts("127.0.0.1"),
        log=io.StringIO(),
    )
    svc.tick()  # as the timer loop does at start: the engine starts
    return svc


@pytest.fixture
def service(clock: ManualClock) -> Iterator[Service]:
    svc = admin_service("memory://", clock)
    yield svc
    svc.runtime.close()


@pytest.fixture
def client(service: Service) -> Client:
    return Client(create_app(service))


def sent(service: Service) -> list[tuple[str, str | None]]:
    recorder = service.runtime.executors["send"]
    assert isinstance(recorder, Recorder)
    return [(a.detail.get("template", a.kind), a.member) for a, _ in recorder.calls]


def test_a_group_registered_over_http_takes_its_tags_and_an_update_keeps_its_members(
    client: Client, service: Service
) -> None:
    answer = client.request(
        "PUT",
        "/admin/groups/g1",
        json={"name": "骑友群", "tags": ["normal"], "operator": "小美"},
        headers=AUTH,
    )
    assert answer.status_code == 200
    assert answer.json()["group"] | {"members": 0} == {
        "id": "g1",
        "name": "骑友群",
        "tags": ["normal"],
        "timezone": "Asia/Shanghai",
        "operator": "小美",
        "owner": None,
        "members": 0,
    }
    client.post("/events", json={"kind": "join", "member": "m1", "group": "g1"}, headers=AUTH)
    updated = client.request(
        "PUT", "/admin/groups/g1", json={"tags": ["normal", "vip"], "operator": "阿强"}, headers=AUTH
    )
    assert updated.json()["group"]["tags"] == ["normal", "vip"]
    assert updated.json()["group"]["members"] == 1 and updated.json()["group"]["operator"] == "阿强"
    bad = client.request("PUT", "/admin/groups/g2", json={"timezone": "Mars/Olympus"}, headers=AUTH)
    assert bad.status_code == 400 and bad.json()["field"] == "timezone"
    assert "unknown time zone 'Mars/Olympus'" in bad.json()["error"]
    assert client.get("/admin/groups/g1").status_code == 401  # the admin API needs a token


def test_a_birthday_given_over_http_makes_the_birthday_playbook_fire(
    client: Client, service: Service, clock: ManualClock
) -> None:
    client.request("PUT", "/admin/groups/g1", json={"tags": ["normal"]}, headers=AUTH)
    answer = client.request(
        "PUT",
        "/admin/members/m1",
        json={"name": "张三", "groups": ["g1"], "attributes": {"birthday": "1990-03-10", "level": 3}},
        headers=AUTH,
    )
    assert answer.status_code == 200, answer.text
    state = answer.json()
    assert state["member"]["attributes"] == {"birthday": "1990-03-10", "level": 3}
    assert [t["playbook"] for t in state["timers"]] == ["birthday"]
    assert state["timers"][0]["due"] == "2026-03-10T09:00:00+08:00"
    clock.advance(86400 + 3600)
    service.tick()
    assert ("wish", "m1") in sent(service)
    unknown = client.request("PUT", "/admin/members/m2", json={"colour": "red"}, headers=AUTH)
    assert unknown.status_code == 400 and unknown.json()["field"] == "colour"


def test_members_import_streamed_from_csv_stores_the_good_rows_and_locates_the_bad(
    client: Client, service: Service
) -> None:
    client.request("PUT", "/admin/groups/g1", json={"tags": ["normal"]}, headers=AUTH)
    rows = ["id,name,groups,tags,attr.birthday,attr.level,counter.messages,joined_at"]
    rows += [
        f"m{i},成员{i},g1,koc;core,1990-03-1{i % 10},{i},{i * 10},2025-01-0{1 + i % 9}T10:00:00"
        for i in range(1200)
    ]
    rows.insert(3, "bad,坏行,g1,,1990-01-01,not-a-number,0,")
    rows.insert(5, "short,row")

    async def chunks() -> AsyncIterator[bytes]:  # streamed: no Content-Length, 4 KiB at a time
        data = ("\n".join(rows) + "\n").encode()
        for i in range(0, len(data), 4096):
            yield data[i : i + 4096]

    answer = client.post(
        "/admin/members/import", content=chunks(), headers={**AUTH, "Content-Type": "text/csv"}
    )
    assert answer.status_code == 400
    body = answer.json()
    assert body["imported"] == 1200
    assert [(f["line"], f["field"]) for f in body["failed"]] == [(4, "attr.level"), (6, None)]
    assert "not a number" in body["failed"][0]["error"] and "2 cells" in body["failed"][1]["error"]
    member = client.get("/admin/members/m7", headers=AUTH).json()["member"]
    assert member["tags"] == ["core", "koc"] and member["counters"]["messages"] == 70
    assert member["attributes"] == {"birthday": "1990-03-17", "level": 7}
    assert member["joined_at"] == "2025-01-08T10:00:00+08:00"


@pytest.mark.parametrize(
    ("header", "column", "said"),
    [
        ("id,name,birthday", "birthday", "write `attr.birthday` for an attribute"),
        ("id,attributes", "attributes", "give each attribute a column, `attr.NAME`"),
        ("id,attr.,tags", "attr.", "names no attribute: write `attr.NAME`"),
    ],
)
def test_a_csv_header_naming_no_member_column_is_refused_once_at_the_header(
    client: Client, header: str, column: str, said: str
) -> None:
    # Once a failure at every row ("unknown field"), with nothing imported and no word of `attr.`.
    rows = "\n".join([header, *(f"m{i},x" if header.count(",") == 1 else f"m{i},x,y" for i in range(50))])
    answer = client.post("/admin/members/import", content=rows, headers={**AUTH, "Content-Type": "text/csv"})
    assert answer.status_code == 400
    assert answer.json()["imported"] == 0
    [failed] = answer.json()["failed"]
    assert (failed["line"], failed["field"]) == (1, column) and said in failed["error"]


def test_a_csv_saved_by_excel_with_a_byte_order_mark_imports_and_a_line_not_utf8_is_located(
    client: Client, service: Service
) -> None:
    assert isinstance(service.runtime, Runtime)
    # Excel's "CSV UTF-8" starts with EF BB BF: the header read "\ufeffid", so no `id` column.
    rows = "\ufeffid,name\nm1,张三\n".encode() + "m2,李四".encode("gbk") + "\nm3,王五\n".encode()
    answer = client.post("/admin/members/import", content=rows, headers={**AUTH, "Content-Type": "text/csv"})
    assert answer.json()["imported"] == 2  # m1 and m3: the line after the bad one is read too
    assert answer.json()["failed"] == [
        {"line": 3, "error": "not UTF-8: save the file as UTF-8", "field": None}
    ]
    assert service.runtime.look("member", "m3")["member"]["name"] == "王五"


def test_members_import_from_jsonl(client: Client) -> None:
    lines = '{"id": "m1", "name": "张三", "tags": ["vip"]}\n\n{"name": "no id"}\n{"id": "m2"}'
    answer = client.post(
        "/admin/members/import", content=lines, headers={**AUTH, "Content-Type": "application/x-ndjson"}
    )
    assert answer.json()["imported"] == 2
    assert [(f["line"], f["field"]) for f in answer.json()["failed"]] == [(3, "id")]
    wrong = client.post("/admin/members/import", content="x", headers={**AUTH, "Content-Type": "text/plain"})
    assert wrong.status_code == 415


def test_the_task_inbox_lists_claims_and_finishes_tasks(
    client: Client, service: Service, clock: ManualClock
) -> None:
    client.request("PUT", "/admin/groups/g1", json={"tags": ["normal"], "operator": "小美"}, headers=AUTH)
    for member in ("m1", "m2"):
        client.post(
            "/events",
            json={"kind": "join", "member": member, "group": "g1", "data": {"name": member}},
            headers=AUTH,
        )
        client.post(
            "/events",
            json={"kind": "report", "member": member, "group": "g1", "data": {"reason": "广告"}},
            headers=AUTH,
        )
    tasks = client.get("/admin/tasks", headers=AUTH).json()["tasks"]
    assert [(t["member"], t["operator"], t["claimed_by"]) for t in tasks] == [
        ("m1", "小美", None),
        ("m2", "小美", None),
    ]
    assert tasks[0]["text"] == "请处理 m1 的举报" and tasks[0]["deadline"] == "2026-03-09T09:00:00+08:00"
    first, second = tasks[0]["key"], tasks[1]["key"]

    assert client.post(f"/admin/tasks/{first}/claim", json={"by": "小美"}, headers=AUTH).status_code == 200
    taken = client.post(f"/admin/tasks/{first}/claim", json={"by": "阿强"}, headers=AUTH)
    assert taken.status_code == 409 and "小美" in taken.json()["error"]
    assert client.get("/admin/tasks", headers=AUTH).json()["tasks"][0]["claimed_by"] == "小美"

    done = client.post(f"/admin/tasks/{first}/done", json={}, headers=AUTH)
    assert done.status_code == 202
    assert [(a["template"], a["status"]) for a in done.json()["actions"]] == [("thanks", "queued")]
    assert client.post(f"/admin/tasks/{first}/done", json={}, headers=AUTH).status_code == 404

    clock.advance(3600)  # the second task's deadline passes: its flow takes the else branch
    service.tick()
    assert ("sorry", "m2") in sent(service) and ("thanks", "m2") not in sent(service)
    assert client.get("/admin/tasks", headers=AUTH).json()["tasks"] == []
    late = client.post(f"/admin/tasks/{second}/done", json={}, headers=AUTH)
    assert late.status_code == 404 and "past its deadline" in late.json()["error"]


def test_a_members_state_shows_their_flows_and_waits(client: Client) -> None:
    client.request("PUT", "/admin/groups/g1", json={"tags": ["normal"]}, headers=AUTH)
    client.post("/events", json={"kind": "join", "member": "m1", "group": "g1"}, headers=AUTH)
    client.post(
        "/events",
        json={"kind": "report", "member": "m1", "group": "g1", "data": {"reason": "广告"}},
        headers=AUTH,
    )
    state = client.get("/admin/members/m1", headers=AUTH).json()
    [task] = client.get("/admin/tasks", headers=AUTH).json()["tasks"]
    # Words of the API, not the engine's class names (it said "WaitTask").
    assert [(f["playbook"], f["waiting"]) for f in state["flows"]] == [
        ("reports", {"for": "task", "task": task["key"]})
    ]
    assert [(t["timer"], t["playbook"], t["due"]) for t in state["timers"]] == [
        ("timeout", "reports", "2026-03-09T09:00:00+08:00")
    ]
    assert client.get("/admin/members/nobody", headers=AUTH).status_code == 404


def test_the_admin_api_takes_every_field_of_the_engines_records() -> None:
    # A field added to MemberRecord or GroupRecord (the trust issue's, say) must be added here too.
    from sopdsl.engine.records import GROUP_FIELDS, MEMBER_FIELDS
    from sopdsl.live.member_records import GroupIn, MemberIn

    assert set(MemberIn.model_fields) == set(MEMBER_FIELDS) - {"id"}
    assert set(GroupIn.model_fields) == set(GROUP_FIELDS) - {"id"}


class RefusedError(Exception):
    permanent = True  # parked at once, as the webhook's 4xx is


@pytest.mark.parametrize("kind", KINDS)
def test_a_parked_action_is_listed_and_sent_again_once_requeued(
    kind: str, clock: ManualClock, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # Over HTTP, a service's parked actions could be counted (a gauge) but neither seen nor sent
    # again: `Runtime.requeue` was for those who embed the runtime.
    service = admin_service(store_url(kind, tmp_path, request), clock)
    request.addfinalizer(service.runtime.close)
    client = Client(create_app(service))
    recorder = service.runtime.executors["send"]
    assert isinstance(recorder, Recorder)
    broken = True

    def send(action: Any, key: str) -> None:
        if broken:
            raise RefusedError("bot offline: 40001 invalid credential")
        recorder(action, key)

    service.runtime.executors["send"] = send
    client.request("PUT", "/admin/groups/g1", json={"tags": ["normal"]}, headers=AUTH)
    client.request(
        "PUT",
        "/admin/members/m1",
        json={"groups": ["g1"], "attributes": {"birthday": "1990-03-09"}},
        headers=AUTH,
    )
    assert client.get("/admin/parked", headers=AUTH).json() == {"parked": []}
    clock.advance(3600)
    service.tick()
    [parked] = client.get("/admin/parked", headers=AUTH).json()["parked"]
    assert (parked["kind"], parked["action"]["member"], parked["attempts"]) == ("send", "m1", 1)
    assert "40001 invalid credential" in parked["error"] and parked["status"] == "parked"
    # The action as the executor got it: its JSON line, with times in the plan's zone.
    assert parked["action"]["idempotency_key"] == parked["key"]
    assert parked["action"]["at"].endswith("+08:00") and "time" not in parked["action"]
    assert client.get("/admin/parked").status_code == 401  # the admin API needs a token
    broken = False
    again = client.post(f"/admin/parked/{parked['key']}/requeue", headers=AUTH)
    assert again.status_code == 200 and again.json() == {"key": parked["key"], "status": "pending"}
    service.tick()
    assert [(a.detail["template"], a.member) for a, _ in recorder.calls] == [("wish", "m1")]
    assert client.get("/admin/parked", headers=AUTH).json() == {"parked": []}
    twice = client.post(f"/admin/parked/{parked['key']}/requeue", headers=AUTH)
    assert twice.status_code == 404 and twice.json()["error"] == f"no parked action '{parked['key']}'"


def test_every_kind_of_wait_a_flow_shows_is_told_in_the_apis_words() -> None:
    from sopdsl.engine.state import WAIT_TYPES, WaitDelivery, WaitEvent, WaitTask
    from sopdsl.live.admin_views import waiting_view

    samples: dict[type, WaitEvent | WaitTask | WaitDelivery] = {
        WaitEvent: WaitEvent("message"),
        WaitTask: WaitTask("k1"),
        WaitDelivery: WaitDelivery(),
    }
    assert set(samples) == set(WAIT_TYPES)  # a new kind of wait needs its words here too
    assert [waiting_view(samples[kind]) for kind in (WaitEvent, WaitTask, WaitDelivery)] == [
        {"for": "event", "event": "message"},
        {"for": "task", "task": "k1"},
        {"for": "delivery"},
    ]
    assert waiting_view(None) is None


def test_an_attribute_not_of_its_declared_type_is_refused_with_its_field(
    client: Client, service: Service
) -> None:
    assert isinstance(service.runtime, Runtime)
    # A birthday of 1988-13-40 (or a number) was stored, armed no greeting, and nobody was told.
    for value in ("1988-13-40", 19900310):
        answer = client.request(
            "PUT", "/admin/members/m1", json={"attributes": {"birthday": value}}, headers=AUTH
        )
        assert answer.status_code == 400 and answer.json()["field"] == "attributes.birthday"
        assert (
            "is not a date, which the playbooks declare it to be (like 1990-03-10)" in answer.json()["error"]
        )
    answer = client.request("PUT", "/admin/members/m1", json={"attributes": {"level": "三"}}, headers=AUTH)
    assert answer.status_code == 400 and answer.json()["field"] == "attributes.level"
    assert service.runtime.look("member", "m1") is None  # nothing was registered
    fine = {"attributes": {"birthday": "1990-03-10", "level": 3, "undeclared": "kept"}}
    assert client.request("PUT", "/admin/members/m1", json=fine, headers=AUTH).status_code == 200
    rows = "id,attr.birthday\nm2,1990-02-30\nm3,1990-02-28\n"
    answer = client.post("/admin/members/import", content=rows, headers={**AUTH, "Content-Type": "text/csv"})
    assert answer.json()["imported"] == 1
    assert [(f["line"], f["field"]) for f in answer.json()["failed"]] == [(2, "attributes.birthday")]
    lines = (
        '{"id": "m4", "attributes": {"birthday": "1990-02-30"}}\n{"id": "m5", "attributes": {"level": 2}}\n'
    )
    answer = client.post(
        "/admin/members/import", content=lines, headers={**AUTH, "Content-Type": "application/x-ndjson"}
    )
    assert answer.json()["imported"] == 1 and [f["line"] for f in answer.json()["failed"]] == [1]
