"""Ids and names holding control characters, refused at the door: they went into the log as
they were.

A join for member `"m7\\nERROR sopdsl runtime: …"` was stored, and when its send was parked
the log read `parked send hello -> m7`, then a line of the sender's own making; an escape
(`\\u001b[2J`) cleared the terminal of whoever followed the log.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from asgiclient import Client
from test_admin import AUTH, START, admin_service

from sopdsl.live.app import create_app
from sopdsl.live.clock import ManualClock
from sopdsl.live.runtime import Runtime
from sopdsl.live.service import Service

JSON = {**AUTH, "Content-Type": "application/json"}
FORGED = "m7\nERROR sopdsl runtime: all sends done"


@pytest.fixture
def service() -> Iterator[Service]:
    svc = admin_service("memory://", ManualClock(START))
    yield svc
    svc.runtime.close()


@pytest.fixture
def client(service: Service) -> Client:
    return Client(create_app(service))


def journaled(service: Service) -> list[str]:
    assert isinstance(service.runtime, Runtime)
    return [
        e.body["member"]
        for e in service.runtime.store.journal(service.runtime.shard)
        if e.body["op"] == "event"
    ]


@pytest.mark.parametrize(
    ("event", "field", "shown"),
    [
        ({"kind": "join", "member": FORGED, "group": "g1"}, "member", "\\n"),
        ({"kind": "join", "member": "m1", "group": "g\x1b[2J"}, "group", "\\u001b"),
        ({"kind": "join", "member": "m1", "group": "g1", "id": "e\r1"}, "id", "\\r"),
        (
            {"kind": "join", "member": "m1", "group": "g1", "data": {"inviter": "m\x852"}},
            "data.inviter",
            "\\u0085",
        ),
        ({"kind": "tag", "member": "m1", "group": "g1", "name": "vip\t"}, "name", "\\t"),
    ],
)
def test_an_event_with_a_control_character_in_an_id_is_refused_naming_it(
    client: Client, service: Service, event: dict[str, object], field: str, shown: str
) -> None:
    answer = client.post("/events", content=json.dumps(event), headers=JSON)
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == field
    assert f"control character ({shown})" in answer.json()["error"]
    assert journaled(service) == []
    assert (
        client.post("/events", json={"kind": "join", "member": "m1", "group": "g1"}, headers=JSON).status_code
        == 202
    )


def test_a_name_in_the_data_may_hold_a_line_break(client: Client, service: Service) -> None:
    # A message's text and a member's name are not ids: they may hold one.
    event = {"kind": "join", "member": "m1", "group": "g1", "data": {"name": "张\n三"}}
    assert client.post("/events", json=event, headers=JSON).status_code == 202
    assert journaled(service) == ["m1"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/admin/members/m%1B1", {"name": "x"}, "id"),
        ("/admin/groups/g%1B1", {"name": "x"}, "id"),
        ("/admin/members/m1", {"groups": ["g1", "g\n2"]}, "groups.1"),
        ("/admin/members/m1", {"referrer": "r\x7f"}, "referrer"),
    ],
)
def test_a_record_with_a_control_character_in_an_id_is_refused(
    client: Client, path: str, body: dict[str, object], field: str
) -> None:
    answer = client.request("PUT", path, json=body, headers=AUTH)
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == field and "control character" in answer.json()["error"]
    assert client.get(path, headers=AUTH).status_code == 404
