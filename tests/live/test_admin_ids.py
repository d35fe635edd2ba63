"""Ids with reserved characters in the admin API's paths: a member or group id holding a `/` (a
WeCom external user id may), sent percent-encoded (`wx%2Fabc`), reaches the right record."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from asgiclient import Client
from livestores import KINDS, store_url
from test_admin import AUTH, admin_service

from sopdsl.live.app import create_app
from sopdsl.live.clock import ManualClock
from sopdsl.live.service import Service

START = 1_773_014_400  # 2026-03-09 08:00 in Shanghai
IDS = ["wx/abc", "wm/Ab+c=/d", "50%off", "a?b#c", "张 三/二组"]


@pytest.fixture(params=KINDS)
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Service]:
    svc = admin_service(store_url(request.param, tmp_path, request), ManualClock(START))
    yield svc
    svc.runtime.close()


@pytest.fixture
def client(service: Service) -> Client:
    return Client(create_app(service))


@pytest.mark.parametrize("member", IDS)
def test_a_percent_encoded_member_id_is_put_and_got(client: Client, member: str) -> None:
    path = f"/admin/members/{quote(member, safe='')}"
    assert "/" not in path.removeprefix("/admin/members/")
    put = client.request("PUT", path, json={"name": "小鱼", "tags": ["vip"]}, headers=AUTH)
    assert put.status_code == 200, put.text
    got = client.get(path, headers=AUTH)
    assert got.status_code == 200, got.text
    assert got.json()["member"]["id"] == member and got.json()["member"]["tags"] == ["vip"]


def test_a_member_with_a_slash_is_not_another_member(client: Client) -> None:
    client.request("PUT", "/admin/members/wx", json={"name": "甲"}, headers=AUTH)
    client.request("PUT", "/admin/members/wx%2Fabc", json={"name": "乙"}, headers=AUTH)
    assert client.get("/admin/members/wx", headers=AUTH).json()["member"]["name"] == "甲"
    assert client.get("/admin/members/wx%2Fabc", headers=AUTH).json()["member"]["name"] == "乙"
    missing = client.get("/admin/members/wx%2Fnobody", headers=AUTH)
    assert missing.status_code == 404 and missing.json()["error"] == "no member 'wx/nobody'"


def test_a_percent_encoded_group_id_is_put_and_got(client: Client) -> None:
    put = client.request("PUT", "/admin/groups/wr%2Fg1", json={"tags": ["normal"]}, headers=AUTH)
    assert put.status_code == 200, put.text
    assert client.get("/admin/groups/wr%2Fg1", headers=AUTH).json()["group"]["id"] == "wr/g1"


def test_the_other_member_routes_answer_as_before(client: Client) -> None:
    # No id: no such endpoint, as when `{member}` was one segment; import is its own route.
    empty = client.get("/admin/members/", headers=AUTH)
    assert empty.status_code == 404 and "no such endpoint" in empty.json()["error"]
    assert client.request("DELETE", "/admin/members/wx%2Fabc", headers=AUTH).status_code == 405
    imported = client.post(
        "/admin/members/import",
        content=b"id,name\nwx/abc,\xe5\xb0\x8f\xe9\xb1\xbc\n",
        headers={**AUTH, "Content-Type": "text/csv"},
    )
    assert imported.json() == {"imported": 1, "failed": []}
    assert client.get("/admin/members/wx%2Fabc", headers=AUTH).json()["member"]["name"] == "小鱼"
