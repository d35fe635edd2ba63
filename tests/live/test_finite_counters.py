"""Counters that are no number (`nan`, `inf`, `1e999`), refused wherever a member comes in.

Before, a CSV import's `counter.messages` cell `nan` or `inf`, and the same as JSON text in a
`PUT /admin/members/ID` or an import's line, was stored: the member was answered from then on
with `"messages": NaN` (or `Infinity`), which is no JSON (a browser's `JSON.parse` refuses the
whole answer), and a threshold on the counter could never be reached.
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


@pytest.fixture
def client() -> Iterator[Client]:
    svc = admin_service("memory://", ManualClock(START))
    yield Client(create_app(svc))
    svc.runtime.close()


def strict(text: str) -> Any:
    """JSON as a browser reads it: no NaN, no Infinity."""

    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-Infinity"])
def test_a_counter_given_as_nan_or_infinity_is_refused_naming_it(client: Client, value: str) -> None:
    answer = client.request("PUT", "/admin/members/m1", json={"counters": {"messages": value}}, headers=AUTH)
    assert answer.status_code == 400, answer.text
    assert strict(answer.text)["field"] == "counters.messages"
    assert "finite" in answer.json()["error"]
    assert client.get("/admin/members/m1", headers=AUTH).status_code == 404


def test_an_import_takes_only_finite_counters_and_every_member_reads_back_as_json(client: Client) -> None:
    rows = "id,name,counter.messages\nm1,甲,nan\nm2,乙,inf\nm3,丙,1e999\nm4,丁,12\n"
    answer = client.post("/admin/members/import", content=rows, headers={**AUTH, "Content-Type": "text/csv"})
    assert answer.status_code == 400, answer.text
    assert answer.json()["imported"] == 1
    failed = [(f["line"], f["field"]) for f in answer.json()["failed"]]
    assert failed == [(2, "counter.messages"), (3, "counter.messages"), (4, "counter.messages")]
    lines = '{"id": "m5", "counters": {"messages": "NaN"}}\n{"id": "m6", "counters": {"messages": 3}}\n'
    answer = client.post(
        "/admin/members/import", content=lines, headers={**AUTH, "Content-Type": "application/x-ndjson"}
    )
    assert answer.status_code == 400 and answer.json()["imported"] == 1
    assert [(f["line"], f["field"]) for f in answer.json()["failed"]] == [(1, "counters.messages")]
    for member, count in (("m4", 12.0), ("m6", 3.0)):
        assert strict(client.get(f"/admin/members/{member}", headers=AUTH).text)["member"]["counters"] == {
            "messages": count
        }
    for member in ("m1", "m2", "m3", "m5"):
        assert client.get(f"/admin/members/{member}", headers=AUTH).status_code == 404
