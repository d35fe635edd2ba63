"""The runtime's Python API refuses the members and groups the HTTP door refuses, with its words.

`Runtime.add_member`, `add_group` and `register` took any record: on SQLite and in memory a
member id of 257 characters was journaled (and never reachable over `/admin/members/ID` again),
on PostgreSQL a long enough one failed as a raw store error. They now raise `RecordError` (an
`EventError`) naming the field, with the message `PUT /admin/...` answers, and store nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from asgiclient import Client
from livestores import KINDS, store_url
from test_admin import AUTH, START, admin_service, registered
from test_long_ids import WAITING

from sopdsl.engine.records import GroupRecord, MemberRecord
from sopdsl.errors import SopdslError
from sopdsl.live.app import create_app
from sopdsl.live.clock import ManualClock
from sopdsl.live.intake import EventError
from sopdsl.live.record_limits import RecordError
from sopdsl.live.runtime import Runtime
from sopdsl.live.service import Service

MAX_ID = 256  # characters of an id (`intake.MAX_ID`)
LONG_ID = "m" * (MAX_ID + 1)
LONG_NAME = "名" * (MAX_ID + 1)


@pytest.fixture(params=KINDS)
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Service]:
    svc = admin_service(store_url(request.param, tmp_path, request), ManualClock(START), WAITING)
    yield svc
    svc.runtime.close()


@pytest.fixture
def client(service: Service) -> Client:
    return Client(create_app(service))


# (kind, id, fields): the same record given as keywords to the runtime and as the admin API's body.
BAD = [
    ("member", "m1", {"groups": ["g1", LONG_ID]}, "groups.1"),
    ("member", "m1", {"referrer": "m\n2"}, "referrer"),
    ("member", "m1", {"name": LONG_NAME}, "name"),
    ("member", "m1", {"nickname": "阿\x1b[31m"}, "nickname"),
    ("member", "m1", {"owner": "小\n美"}, "owner"),
    ("member", "m1", {"tags": ["koc", "t" * (MAX_ID + 1)]}, "tags.1"),
    ("group", "g1", {"name": "骑友群\x00"}, "name"),
    ("group", "g1", {"operator": "小美\r\nERROR"}, "operator"),
    ("group", "g1", {"tags": ["\x07"]}, "tags.0"),
]


@pytest.mark.parametrize(("kind", "ident", "fields", "field"), BAD)
def test_a_record_the_admin_api_refuses_the_runtime_refuses_with_its_message(
    client: Client, service: Service, kind: str, ident: str, fields: dict[str, Any], field: str
) -> None:
    assert isinstance(service.runtime, Runtime)
    answer = client.request("PUT", f"/admin/{kind}s/{ident}", json=fields, headers=AUTH)
    assert answer.status_code == 400, answer.text
    add = service.runtime.add_member if kind == "member" else service.runtime.add_group
    with pytest.raises(EventError) as caught:
        add(ident, **fields)
    assert isinstance(caught.value, RecordError) and isinstance(caught.value, SopdslError)
    assert caught.value.field == field == answer.json()["field"]
    assert str(caught.value) == answer.json()["error"]
    assert registered(service) == []


def test_a_member_id_too_long_is_refused_on_every_store_and_nothing_stored(service: Service) -> None:
    assert isinstance(service.runtime, Runtime)
    with pytest.raises(RecordError) as caught:
        service.runtime.add_member(LONG_ID, name="李雷")
    assert caught.value.field == "id"
    # The id at fault is shown cut, as it would otherwise fill a log line.
    assert str(caught.value) == f"member '{'m' * 64}…': the id is 257 characters long; ids are at most 256"
    with pytest.raises(RecordError, match=r"^group '  ': the id is empty$"):
        service.runtime.add_group("  ")
    with pytest.raises(RecordError) as record:
        service.runtime.add_member(MemberRecord(id="m1", channel="c\x85"))
    assert record.value.field == "channel"
    assert registered(service) == []


def test_register_names_the_record_at_fault_and_stores_none_of_them(service: Service) -> None:
    assert isinstance(service.runtime, Runtime)
    records: list[GroupRecord | MemberRecord] = [
        GroupRecord(id="g1", name="骑友群"),
        MemberRecord(id="m1", groups=("g1",)),
        MemberRecord(id="m2", attributes={"c" * (MAX_ID + 1): "x"}),
    ]
    with pytest.raises(RecordError) as caught:
        service.runtime.register(records)
    assert (caught.value.index, caught.value.field) == (2, "attributes")
    assert str(caught.value).startswith("record 2: member 'm2': the name of one of attributes is 257")
    assert registered(service) == []
    service.runtime.register(records[:2])  # the good ones, on their own, are taken
    assert len(registered(service)) == 2


def test_a_field_that_is_not_text_is_refused_naming_it(service: Service) -> None:
    assert isinstance(service.runtime, Runtime)
    with pytest.raises(RecordError) as caught:
        service.runtime.add_member("m1", tags=cast(Any, ["koc", 5]))
    assert caught.value.field == "tags.1" and "should be text, got int" in str(caught.value)
    with pytest.raises(RecordError) as group:
        service.runtime.add_group(cast(Any, 42))
    assert group.value.field == "id"
    assert registered(service) == []


def test_fields_at_their_limits_are_taken_from_the_runtime(client: Client, service: Service) -> None:
    assert isinstance(service.runtime, Runtime)
    longest = "m" * MAX_ID
    service.runtime.add_group("g1", name="群" * MAX_ID, operator="小美", tags=["t" * MAX_ID])
    service.runtime.add_member(
        longest,
        name="名" * MAX_ID,
        tags=["t" * MAX_ID],
        channel="c" * MAX_ID,
        groups=["g1"],
        attributes={"a" * MAX_ID: "说" * 4096},
        counters={"c" * MAX_ID: 1},
    )
    answer = client.get(f"/admin/members/{longest}", headers=AUTH)
    assert answer.status_code == 200, answer.text
    assert answer.json()["member"]["attributes"] == {"a" * MAX_ID: "说" * 4096}


def test_the_temporal_client_refuses_the_same_records_before_sending_anything() -> None:
    pytest.importorskip("temporalio")
    import sopdsl
    from sopdsl.temporal.client import ShardClient

    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(WAITING, "door.sop")))
    # No Temporal server: a refused record never reaches the client, which is never touched.
    shard = ShardClient(cast(Any, None), plan)
    with pytest.raises(RecordError) as caught:
        asyncio.run(shard.register([MemberRecord(id="m1"), MemberRecord(id=LONG_ID)], at=START))
    assert (caught.value.index, caught.value.field) == (1, "id")
