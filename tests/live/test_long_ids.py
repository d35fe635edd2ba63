"""Ids too long for a store's index, refused at the door on every store alike.

A member id of 3,000 characters was journaled, and on PostgreSQL every apply of its action then
failed (`index row size 3032 exceeds btree version 4 maximum 2704 for index
"sopdsl_outbox_order"`): a send due after a wait failed the timer loop at every turn, so no other
member's timer of the shard ever went out again and `/readyz` stayed `failing`.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from asgiclient import Client
from livestores import KINDS, store_url
from test_admin import AUTH, START, admin_service

from sopdsl.live.app import create_app
from sopdsl.live.clock import ManualClock
from sopdsl.live.service import Service

WAITING = """
timezone "Asia/Shanghai"
template hello = "你好 {{ member.name }}"
playbook welcome "入群欢迎" {
    on member joins
    do {
        wait 1 minute
        send hello to member
    }
}
"""
JSON = {**AUTH, "Content-Type": "application/json"}
# Random, so that PostgreSQL cannot compress it into an index row.
LONG = secrets.token_hex(1500)
MAX_ID = 256  # characters of an id or a name (`intake.MAX_ID`)


@pytest.fixture(params=KINDS)
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Service]:
    svc = admin_service(store_url(request.param, tmp_path, request), ManualClock(START), WAITING)
    yield svc
    svc.runtime.close()


@pytest.fixture
def client(service: Service) -> Client:
    return Client(create_app(service))


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"kind": "join", "member": LONG, "group": "g1"}, "member"),
        ({"kind": "join", "member": "m9", "group": LONG}, "group"),
        ({"kind": "join", "member": "m9", "group": "g1", "id": LONG}, "id"),
        ({"kind": "join", "member": "m9", "group": "g1", "data": {"inviter": LONG}}, "data.inviter"),
        ({"kind": "tag", "member": "m9", "group": "g1", "name": LONG}, "name"),
    ],
)
def test_an_event_with_an_id_too_long_is_refused_and_the_shard_goes_on(
    client: Client, service: Service, event: dict[str, object], field: str
) -> None:
    answer = client.post("/events", json=event, headers=JSON)
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == field
    assert f"at most {MAX_ID}" in answer.json()["error"]
    assert "index row" not in answer.text and "postgresql://" not in answer.text
    # Another member's welcome, due after the wait, still goes out: the shard is not wedged.
    assert (
        client.post("/events", json={"kind": "join", "member": "m1", "group": "g1"}, headers=JSON).status_code
        == 202
    )
    service.runtime.clock.advance(61)  # type: ignore[attr-defined]
    sent = service.tick()
    assert [(a.kind, a.member) for a in sent] == [("send", "m1")]
    assert service.tick_errors == 0


def test_an_id_of_the_longest_length_is_taken(client: Client, service: Service) -> None:
    member = "会" * MAX_ID  # 768 bytes in UTF-8: within an index row
    answer = client.post("/events", json={"kind": "join", "member": member, "group": "g1"}, headers=JSON)
    assert answer.status_code == 202, answer.text
    service.runtime.clock.advance(61)  # type: ignore[attr-defined]
    assert [a.member for a in service.tick()] == [member]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (f"/admin/members/{LONG}", {"name": "x"}, "id"),
        (f"/admin/groups/{LONG}", {"name": "x"}, "id"),
        ("/admin/members/m1", {"groups": ["g1", LONG]}, "groups.1"),
        ("/admin/members/m1", {"referrer": LONG}, "referrer"),
    ],
)
def test_a_record_with_an_id_too_long_is_refused_naming_the_field(
    client: Client, path: str, body: dict[str, object], field: str
) -> None:
    answer = client.request("PUT", path, json=body, headers=AUTH)
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == field and f"at most {MAX_ID}" in answer.json()["error"]
    assert client.get(path, headers=AUTH).status_code == 404


def test_an_import_row_with_an_id_too_long_is_located_and_the_rest_imported(client: Client) -> None:
    rows = f"id,name,groups\nm1,甲,g1\n{LONG},乙,g1\nm3,丙,g1;{LONG}\nm4,丁,g1\n"
    answer = client.post("/admin/members/import", content=rows, headers={**AUTH, "Content-Type": "text/csv"})
    assert answer.status_code == 400, answer.text
    assert answer.json()["imported"] == 2
    assert [(f["line"], f["field"]) for f in answer.json()["failed"]] == [(3, "id"), (4, "groups.1")]
