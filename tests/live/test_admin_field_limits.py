"""Tags, channels, the names of attributes and counters, and attributes' text, within limits.

Ids and names were held to 256 characters at the door, but the admin API and its imports took a
tag, a channel, an attribute's or a counter's name of any length and with any control character,
though an event's tag name is held to an id's limits; and an attribute's text of 60 KB (an import
line's limit) was kept in every journal entry and snapshot of its member. Labels are now held as
ids are, an attribute's text to `record_limits.MAX_TEXT`; a join's `data.channel` as the admin
field it becomes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from asgiclient import Client
from test_admin import AUTH, START, admin_service, registered

from sopdsl.live.app import create_app
from sopdsl.live.clock import ManualClock
from sopdsl.live.service import Service

JSON = {**AUTH, "Content-Type": "application/json"}
MAX_ID = 256  # characters of an id, and now of a label (`intake.MAX_ID`)
MAX_TEXT = 4096  # characters of an attribute's text (`record_limits.MAX_TEXT`)
LONG = "签" * (MAX_ID + 1)
ISO = "2026-03-09T08:00:00+08:00"  # a time as text: the careful path of intake, not the everyday one


@pytest.fixture
def service() -> Iterator[Service]:
    svc = admin_service("memory://", ManualClock(START))
    yield svc
    svc.runtime.close()


@pytest.fixture
def client(service: Service) -> Client:
    return Client(create_app(service))


@pytest.mark.parametrize(
    ("path", "body", "field", "says"),
    [
        ("/admin/members/m1", {"tags": ["koc", LONG]}, "tags.1", f"ids are at most {MAX_ID}"),
        ("/admin/members/m1", {"tags": ["k\noc"]}, "tags.0", "control character (\\n)"),
        ("/admin/members/m1", {"channel": LONG}, "channel", f"ids are at most {MAX_ID}"),
        ("/admin/members/m1", {"channel": "海报\x1b[2J"}, "channel", "control character (\\u001b)"),
        ("/admin/members/m1", {"attributes": {LONG: 1}}, "attributes", f"ids are at most {MAX_ID}"),
        ("/admin/members/m1", {"attributes": {"ci\tty": "沪"}}, "attributes", "control character (\\t)"),
        ("/admin/members/m1", {"counters": {LONG: 1}}, "counters", f"ids are at most {MAX_ID}"),
        ("/admin/members/m1", {"counters": {"x\x00": 1}}, "counters", "control character (\\u0000)"),
        (
            "/admin/members/m1",
            {"attributes": {"note": "注" * (MAX_TEXT + 1)}},
            "attributes.note",
            f"a text attribute is at most {MAX_TEXT}",
        ),
        ("/admin/groups/g1", {"tags": [LONG]}, "tags.0", f"ids are at most {MAX_ID}"),
        ("/admin/groups/g1", {"tags": ["vip\r"]}, "tags.0", "control character (\\r)"),
    ],
)
def test_a_label_or_text_over_its_limit_is_refused_naming_the_field(
    client: Client, service: Service, path: str, body: dict[str, object], field: str, says: str
) -> None:
    answer = client.request("PUT", path, json=body, headers=AUTH)
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == field
    assert says in answer.json()["error"], answer.json()["error"]
    assert answer.json()["error"].startswith(("member 'm1': ", "group 'g1': "))
    assert client.get(path, headers=AUTH).status_code == 404
    assert registered(service) == []


def test_labels_and_text_at_their_limits_are_taken(client: Client) -> None:
    body = {
        "tags": ["t" * MAX_ID],
        "channel": "c" * MAX_ID,
        "attributes": {"a" * MAX_ID: "注" * MAX_TEXT, "note": "第一行\n第二行"},
        "counters": {"c" * MAX_ID: 3},
    }
    answer = client.request("PUT", "/admin/members/m1", json=body, headers=AUTH)
    assert answer.status_code == 200, answer.text
    member = answer.json()["member"]
    assert (member["tags"], member["channel"]) == (body["tags"], body["channel"])
    assert member["attributes"] == body["attributes"]


def test_an_import_locates_each_row_over_a_limit_and_imports_the_rest(client: Client) -> None:
    rows = [
        "id,tags,channel,attr.note",
        "m1,koc,海报,好",
        f"m2,koc;{LONG},,",
        "m3,,\x1b[2J,",
        f"m4,,,{'注' * (MAX_TEXT + 1)}",
        "m5,vip,群,",
    ]
    answer = client.post(
        "/admin/members/import", content="\n".join(rows) + "\n", headers={**AUTH, "Content-Type": "text/csv"}
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["imported"] == 2
    failed = answer.json()["failed"]
    assert [(f["line"], f["field"]) for f in failed] == [
        (3, "tags.1"),
        (4, "channel"),
        (5, "attributes.note"),
    ]


def test_a_csv_column_naming_an_attribute_too_long_is_refused_once_at_the_header(client: Client) -> None:
    rows = f"id,attr.{LONG},counter.ok\nm1,1,2\nm2,3,4\n"
    answer = client.post("/admin/members/import", content=rows, headers={**AUTH, "Content-Type": "text/csv"})
    assert answer.status_code == 400, answer.text
    assert answer.json()["imported"] == 0
    [failed] = answer.json()["failed"]
    assert (failed["line"], failed["field"]) == (1, f"attr.{LONG}")
    assert f"ids are at most {MAX_ID}" in failed["error"]


def test_a_jsonl_line_with_a_tag_too_long_is_located(client: Client) -> None:
    lines = [{"id": "m1", "tags": ["koc"]}, {"id": "m2", "counters": {LONG: 1}}]
    body = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n"
    answer = client.post(
        "/admin/members/import", content=body, headers={**AUTH, "Content-Type": "application/x-ndjson"}
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["imported"] == 1
    assert [(f["line"], f["field"]) for f in answer.json()["failed"]] == [(2, "counters")]


@pytest.mark.parametrize("careful", [False, True], ids=["everyday", "careful"])
@pytest.mark.parametrize(
    ("channel", "says"), [(LONG, f"ids are at most {MAX_ID}"), ("海报\n", "control character (\\n)")]
)
def test_a_join_with_a_channel_over_the_limits_is_refused_naming_it(
    client: Client, service: Service, channel: str, says: str, careful: bool
) -> None:
    event = {"kind": "join", "member": "m1", "group": "g1", "data": {"channel": channel}}
    answer = client.post(
        "/events", content=json.dumps(event | ({"time": ISO} if careful else {})), headers=JSON
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == "data.channel" and says in answer.json()["error"]
    ok = {**event, "data": {"channel": "c" * MAX_ID}}
    assert client.post("/events", json=ok, headers=JSON).status_code == 202
