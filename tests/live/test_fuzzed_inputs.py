"""Inputs found by fuzzing the service's HTTP API (schemathesis and by hand), each once a 500, a
traceback in the log or a misleading answer: every one is now a 4xx naming what is wrong."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from asgiclient import Client
from livestores import KINDS, store_url
from test_admin import AUTH, START, admin_service

from sopdsl.live.app import create_app
from sopdsl.live.clock import ManualClock
from sopdsl.live.runtime import Runtime
from sopdsl.live.service import Service


@pytest.fixture(params=KINDS)
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Service]:
    svc = admin_service(store_url(request.param, tmp_path, request), ManualClock(START))
    yield svc
    svc.runtime.close()


@pytest.fixture
def client(service: Service) -> Client:
    return Client(create_app(service))


JSON = {"Content-Type": "application/json"}


@pytest.fixture
def memory_client() -> Iterator[Client]:
    """A client of a service on a memory store, where the store makes no difference."""
    svc = admin_service("memory://", ManualClock(START))
    yield Client(create_app(svc))
    svc.runtime.close()


def logged(service: Service) -> str:
    assert isinstance(service.log, io.StringIO)
    return str(service.log.getvalue())


@pytest.mark.parametrize(
    "days",
    ["from=9999-12-31&to=9999-12-31", "from=0001-01-01&to=0001-01-01", "from=1969-12-31&to=1970-01-01"],
)
def test_a_report_of_days_at_the_ends_of_the_calendar_is_refused_not_a_500(
    client: Client, service: Service, days: str
) -> None:
    answer = client.get(f"/report?{days}&format=json", headers=AUTH)
    assert answer.status_code == 400, answer.text
    assert "out of range" in answer.json()["error"]
    assert "Traceback" not in logged(service)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"joined_at": 99999999999999999999}, "joined_at"),
        ({"joined_at": -(10**12)}, "joined_at"),
        ({"joined_at": "9999-12-31T23:59:59-14:00"}, "joined_at"),
        ({"last_order_at": "9999-12-31"}, "last_order_at"),
        ({"group_joined_at": {"g1": "0001-01-01"}}, "group_joined_at.g1"),
        ({"group_last_message_at": {"g1": 10**15}}, "group_last_message_at.g1"),
    ],
)
def test_a_member_time_out_of_range_is_refused_and_does_not_poison_the_member(
    client: Client, service: Service, fields: dict[str, object], field: str
) -> None:
    # Such a time was stored, and every later GET or PUT of the member was a 500.
    answer = client.request("PUT", "/admin/members/m1", json={"name": "张三", **fields}, headers=AUTH)
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == field and "out of range" in answer.json()["error"]
    assert client.get("/admin/members/m1", headers=AUTH).status_code == 404
    fine = client.request("PUT", "/admin/members/m1", json={"joined_at": "2026-03-01T09:00:00"}, headers=AUTH)
    assert fine.status_code == 200
    assert (
        client.get("/admin/members/m1", headers=AUTH).json()["member"]["joined_at"].startswith("2026-03-01")
    )
    assert "Traceback" not in logged(service)


def test_an_import_row_with_a_time_out_of_range_is_located() -> None:
    lines = '{"id": "m1", "joined_at": 99999999999999999999}\n{"id": "m2"}\n'
    svc = admin_service("memory://", ManualClock(START))
    answer = Client(create_app(svc)).post(
        "/admin/members/import", content=lines, headers={**AUTH, "Content-Type": "application/x-ndjson"}
    )
    assert answer.status_code == 400 and answer.json()["imported"] == 1
    assert [(f["line"], f["field"]) for f in answer.json()["failed"]] == [(1, "joined_at")]
    svc.runtime.close()


def events(service: Service) -> list[str]:
    """The members of the events journaled on the service's shard."""
    assert isinstance(service.runtime, Runtime)
    journal = service.runtime.store.journal(service.runtime.shard)
    return [e.body["member"] for e in journal if e.body["op"] == "event"]


def fed(client: Client, event: Mapping[str, object]) -> tuple[int, dict[str, object]]:
    # json.dumps escapes what is not ASCII, so a lone surrogate goes as the client's escape `\\ud800`.
    answer = client.post("/events", content=json.dumps(event), headers={**AUTH, **JSON})
    return answer.status_code, answer.json()


JOINED = {"kind": "join", "member": "m1", "group": "g1"}


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({**JOINED, "data": {"\ud800": "x"}}, "data.\\ud800"),
        ({**JOINED, "data": {"name": "x", "a\ud800b": 1}}, "data.a\\ud800b"),
        ({**JOINED, "\udfff": 1}, "\\udfff"),
        ({**JOINED, "member": "m\x00"}, "member"),
        ({**JOINED, "id": "e\x00"}, "id"),
        ({**JOINED, "group": "g\x00"}, "group"),
    ],
)
def test_an_event_with_text_no_store_takes_is_refused_at_the_door_naming_the_field(
    client: Client, service: Service, event: dict[str, object], field: str
) -> None:
    # A lone surrogate in a data key passed intake and failed in the store (PostgreSQL: a NUL in
    # the member or the id): "applying to shard failed (UnicodeEncodeError...)", no field, a
    # traceback logged, and the shared transaction redone.
    status, body = fed(client, event)
    assert status == 400, body
    assert body["field"] == field, body
    assert "applying" not in str(body["error"])
    assert events(service) == []
    assert fed(client, JOINED)[0] == 202 and events(service) == ["m1"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/admin/groups/g1", '{"name": "G\\ud800"}', "name"),
        ("/admin/groups/g1", '{"tags": ["a", "\\udc00"]}', "tags.1"),
        ("/admin/members/m1", '{"name": "\\ud800"}', "name"),
        ("/admin/members/m1", '{"attributes": {"\\ud800": 1}}', "attributes.\\ud800"),
        ("/admin/members/m1", '{"attributes": {"level": ["\\ud800"]}}', "attributes.level.0"),
    ],
)
def test_a_record_with_a_lone_surrogate_is_refused_naming_the_field(
    client: Client, service: Service, path: str, body: str, field: str
) -> None:
    # A group's was a 500 (EngineError); an attribute key's a 500 while answering (the message
    # held the surrogate, which UTF-8 cannot encode).
    answer = client.request("PUT", path, content=body, headers={**AUTH, **JSON})
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == field and "lone surrogate" in answer.json()["error"]
    assert client.get(path, headers=AUTH).status_code == 404
    assert "Traceback" not in logged(service)


@pytest.mark.parametrize("path", ["/admin/groups/g%001", "/admin/members/m%001"])
def test_an_id_with_a_nul_is_refused_as_events_refuse_it(client: Client, service: Service, path: str) -> None:
    # Registered, it was a member or group no event could name (intake refuses a NUL there), and
    # its id went into the stores' text columns with every action for it.
    answer = client.request("PUT", path, json={"name": "x"}, headers=AUTH)
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == "id" and "NUL" in answer.json()["error"]
    assert client.get(path, headers=AUTH).status_code == 404


def test_an_import_line_with_a_lone_surrogate_is_located_and_the_rest_imported(client: Client) -> None:
    # It failed the whole import with a 500 (the batch's register raised).
    lines = '{"id": "m1"}\n{"id": "m\\ud800"}\n{"id": "m3", "name": "\\udfff"}\n{"id": "m4"}\n'
    answer = client.post(
        "/admin/members/import", content=lines, headers={**AUTH, "Content-Type": "application/x-ndjson"}
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["imported"] == 2
    assert [(f["line"], f["field"]) for f in answer.json()["failed"]] == [(2, "id"), (3, "name")]
    assert client.get("/admin/members/m4", headers=AUTH).status_code == 200


def test_a_csv_import_whose_header_has_no_id_is_refused_at_its_header_not_a_500(
    client: Client, service: Service
) -> None:
    # The header was kept though refused, and the next row looked up its `id` cell: KeyError, 500.
    answer = client.post(
        "/admin/members/import",
        content="name,tags\n张三,vip\n李四,\n",
        headers={**AUTH, "Content-Type": "text/csv"},
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["imported"] == 0
    assert [(f["line"], f["field"]) for f in answer.json()["failed"]] == [(1, "id")]
    assert "Traceback" not in logged(service)


@pytest.mark.parametrize(
    "body",
    ['{"counters": {"x": 1e999}}', '{"attributes": {"level": -1e999}}', '{"counters": {"x": 1.5E+309}}'],
)
def test_a_number_beyond_a_float_is_refused_not_stored_as_infinity(
    client: Client, service: Service, body: str
) -> None:
    # 1e999 was read as infinity: stored, and answered as `Infinity`, which is not JSON.
    answer = client.request("PUT", "/admin/members/m1", content=body, headers={**AUTH, **JSON})
    assert answer.status_code == 400, answer.text
    assert "out of range" in answer.json()["error"]
    assert client.get("/admin/members/m1", headers=AUTH).status_code == 404


def test_an_import_line_nested_too_deep_or_with_infinity_is_located_not_a_500(client: Client) -> None:
    # A JSONL line was read with json.loads, without the limits of a body: 20,000 nested lists
    # raised RecursionError (500), 1e999 was stored as infinity.
    deep = '{"id": "m2", "attributes": {"level": ' + "[" * 20000 + "]" * 20000 + "}}"
    lines = f'{{"id": "m1"}}\n{deep}\n{{"id": "m3", "counters": {{"x": 1e999}}}}\n{{"id": "m4"}}\n'
    answer = client.post(
        "/admin/members/import", content=lines, headers={**AUTH, "Content-Type": "application/x-ndjson"}
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["imported"] == 2
    failed = answer.json()["failed"]
    assert [f["line"] for f in failed] == [2, 3]
    assert "deeper than" in failed[0]["error"] and "out of range" in failed[1]["error"]


def test_every_templated_path_declares_its_parameters(memory_client: Client) -> None:
    # `/admin/groups/{group}` and the rest named no parameter: a generated client or a fuzzer
    # could not call them (schemathesis: "Path parameter 'group' is not defined").
    described = memory_client.get("/openapi.json").json()
    for path, item in described["paths"].items():
        declared = {p["name"] for p in item.get("parameters", []) if p["in"] == "path"}
        for method, operation in item.items():
            if method != "parameters":
                declared |= {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
                named = set(re.findall(r"{(\w+)}", path))
                assert named == declared, (method, path)


UNDOCUMENTED = [
    # (method, path, body, content type, token): answers the description did not list.
    ("GET", "/admin/groups/nope", None, None, True),
    ("GET", "/admin/members/nope", None, None, True),
    ("GET", "/admin/tasks", None, None, False),
    ("GET", "/metrics", None, None, True),
    ("GET", "/metrics", None, None, False),
    ("GET", "/health", None, None, False),
    ("GET", "/report?from=2026-03-01&to=2026-03-01", None, None, False),
    ("PUT", "/admin/groups/g1", "{}", "application/json", True),
    ("PUT", "/admin/groups/g1", "{}", "text/plain", True),
    ("PUT", "/admin/members/m1", '{"tags": 1}', "application/json", True),
    ("POST", "/admin/members/import", "id\nm1\n", "text/csv", True),
    ("POST", "/admin/members/import", "name\nm1\n", "text/csv", True),
    ("POST", "/admin/members/import", "{}", "application/json", True),
    ("POST", "/admin/tasks/nope/claim", '{"by": "me"}', "application/json", True),
    ("POST", "/admin/tasks/nope/claim", "{}", "application/json", True),
    ("POST", "/admin/tasks/nope/done", None, None, True),
]


@pytest.mark.parametrize(("method", "path", "body", "kind", "token"), UNDOCUMENTED)
def test_the_description_lists_each_status_an_endpoint_answers(
    memory_client: Client, method: str, path: str, body: str | None, kind: str | None, token: bool
) -> None:
    described = memory_client.get("/openapi.json").json()
    headers = {**(AUTH if token else {}), **({"Content-Type": kind} if kind else {})}
    answer = memory_client.request(method, path, content=body, headers=headers)
    bare = path.split("?")[0]
    template = (
        bare
        if bare in described["paths"]
        else next(p for p in described["paths"] if re.fullmatch(re.sub(r"{\w+}", "[^/]+", p), bare))
    )
    operation = described["paths"][template][method.lower()]
    assert str(answer.status_code) in operation.get("responses", {}), (answer.status_code, answer.text)


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"kind": "message", "member": "m1", "group": "g1", "data": {"has_image": "yes"}}, "data.has_image"),
        ({"kind": "message", "member": "m1", "group": "g1", "data": {"text": 5}}, "data.text"),
        ({"kind": "order", "member": "m1", "data": {"amount": 5, "order_id": ["A1"]}}, "data.order_id"),
        ({"kind": "invite", "member": "m1", "data": {"invitee": {}}}, "data.invitee"),
        ({"kind": "report", "member": "m1", "group": "g1", "data": {"reason": 1}}, "data.reason"),
    ],
)
def test_a_payload_field_of_the_wrong_type_is_refused_as_amount_is(
    memory_client: Client, event: dict[str, object], field: str
) -> None:
    # Only join, order.amount, rename and task_done were checked: a message with
    # `has_image: "yes"` was stored, and `if event.has_image == true` silently never held.
    answer = memory_client.post("/events", json=event, headers=AUTH)
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == field and "should be" in answer.json()["error"]


@pytest.mark.parametrize("path", ["/admin/groups/g1", "/admin/members/m1"])
def test_a_405_names_every_method_the_path_takes_and_the_body_refuses_unknown_fields(
    memory_client: Client, path: str
) -> None:
    # `Allow: PUT` only, though GET is served too (two routes, and the first one answered); and
    # the body was described as any object, though an unknown field is a 400.
    answer = memory_client.request("DELETE", path, headers=AUTH)
    assert answer.status_code == 405
    assert set(answer.headers["allow"].replace(" ", "").split(",")) >= {"GET", "PUT"}
    described = memory_client.get("/openapi.json").json()
    template = path.rsplit("/", 1)[0] + ("/{group}" if "groups" in path else "/{member}")
    schema = described["paths"][template]["put"]["requestBody"]["content"]["application/json"]["schema"]
    assert schema["additionalProperties"] is False and "tags" in schema["properties"]
    refused = memory_client.request("PUT", path, json={"nmae": "x"}, headers=AUTH)
    assert refused.status_code == 400 and refused.json()["field"] == "nmae"


@pytest.mark.parametrize("who", ["\\ud800", "a\\u0000b"])
def test_a_claim_by_a_name_no_store_keeps_is_refused_naming_by(client: Client, who: str) -> None:
    # A lone surrogate was a 500 on every store (UnicodeEncodeError), a NUL a 500 on PostgreSQL
    # (DataError) while SQLite kept it.
    client.request("PUT", "/admin/groups/g1", json={"tags": ["normal"], "operator": "小美"}, headers=AUTH)
    client.post("/events", json={"kind": "join", "member": "m1", "group": "g1"}, headers=AUTH)
    client.post("/events", json={"kind": "report", "member": "m1", "group": "g1"}, headers=AUTH)
    [task] = client.get("/admin/tasks", headers=AUTH).json()["tasks"]
    path = f"/admin/tasks/{task['key']}/claim"
    answer = client.post(path, content=f'{{"by": "{who}"}}', headers={**AUTH, **JSON})
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == "by"
    assert client.get("/admin/tasks", headers=AUTH).json()["tasks"][0]["claimed_by"] is None
    assert client.post(path, json={"by": "小美"}, headers=AUTH).status_code == 200


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"joined_at": True}, "joined_at"),
        ({"last_order_at": False}, "last_order_at"),
        ({"group_joined_at": {"g1": True}}, "group_joined_at"),
    ],
)
def test_a_member_time_given_as_true_or_false_is_refused(
    memory_client: Client, fields: dict[str, object], field: str
) -> None:
    # Read as the integer it is in Python: `"joined_at": true` made the member join at 1970-01-01 00:00:01.
    answer = memory_client.request("PUT", "/admin/members/m1", json=fields, headers=AUTH)
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"].startswith(field) and "true or false" in answer.json()["error"]


def test_a_counter_given_as_true_or_false_is_refused(memory_client: Client) -> None:
    # A lax float took false as 0.0 (schemathesis: counters {"x": false} accepted).
    answer = memory_client.request("PUT", "/admin/members/m1", json={"counters": {"x": False}}, headers=AUTH)
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == "counters" and "true or false" in answer.json()["error"]
