"""The task inbox over every store: a claim survives a restart of the service (the store's task
table), and a task finished before the restart stays finished."""

from __future__ import annotations

from pathlib import Path

import pytest
from livestores import KINDS, store_url
from test_admin import AUTH, START, admin_service
from test_app import Client

from sopdsl.live.app import create_app
from sopdsl.live.clock import ManualClock
from sopdsl.live.store import open_store


@pytest.mark.parametrize("kind", KINDS)
def test_a_claim_survives_a_restart(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = store_url(kind, tmp_path, request)
    clock = ManualClock(START)
    store = open_store(url)
    first = admin_service(store, clock)
    client = Client(create_app(first))
    client.request("PUT", "/admin/groups/g1", json={"tags": ["normal"], "operator": "小美"}, headers=AUTH)
    for member in ("m1", "m2"):
        client.post("/events", json={"kind": "join", "member": member, "group": "g1"}, headers=AUTH)
        client.post("/events", json={"kind": "report", "member": member, "group": "g1"}, headers=AUTH)
    keys = [t["key"] for t in client.get("/admin/tasks", headers=AUTH).json()["tasks"]]
    assert client.post(f"/admin/tasks/{keys[0]}/claim", json={"by": "小美"}, headers=AUTH).status_code == 200
    assert client.post(f"/admin/tasks/{keys[1]}/claim", json={"by": "阿强"}, headers=AUTH).status_code == 200
    assert client.post(f"/admin/tasks/{keys[1]}/done", json={}, headers=AUTH).status_code == 202
    first.runtime.close()
    if kind != "memory":  # the memory store lives in this process: the same object is the restart
        store = open_store(url)

    again = Client(create_app(admin_service(store, clock)))
    tasks = again.get("/admin/tasks", headers=AUTH).json()["tasks"]
    assert [(t["key"], t["claimed_by"]) for t in tasks] == [(keys[0], "小美")]
    taken = again.post(f"/admin/tasks/{keys[0]}/claim", json={"by": "阿强"}, headers=AUTH)
    assert taken.status_code == 409 and "小美" in taken.json()["error"]
    assert again.post(f"/admin/tasks/{keys[1]}/done", json={}, headers=AUTH).status_code == 404
    store.close()
