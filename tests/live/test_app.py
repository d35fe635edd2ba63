"""The service's ASGI app, called in-process through httpx: tokens, hosts, bodies, answers, metrics.

Each defect found in the hand-written server is a test here (or in test_http.py, for what needs a
real socket): anyone could post, `text/plain` was taken, answers misled, malformed bodies went
uncounted.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from asgiclient import Client
from test_service import JOIN, START, ZONE, Recorder, plan

import sopdsl
from sopdsl.live.app import create_app
from sopdsl.live.auth import Tokens, allowed_hosts, parse_tokens
from sopdsl.live.clock import ManualClock
from sopdsl.live.runtime import Runtime
from sopdsl.live.service import Service

TOKEN = "tok-default-0123456789"
OTHER = "tok-elsewhere-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def make_service(
    tokens: Tokens | None, recorder: Recorder, host: str = "127.0.0.1", group_commit: bool = True
) -> Service:
    runtime = Runtime(
        plan(), "memory://", executors=dict.fromkeys(("send", "call"), recorder), clock=ManualClock(START)
    )
    return Service(
        runtime,
        zone=ZONE,
        host=host,
        tokens=tokens,
        allowed_hosts=allowed_hosts(host),
        log=io.StringIO(),
        group_commit=group_commit,
    )


@pytest.fixture
def service() -> Iterator[Service]:
    svc = make_service(parse_tokens(f"{TOKEN} default\n{OTHER} shop2,shop3\n", "tokens.txt"), Recorder())
    yield svc
    svc.runtime.close()


@pytest.fixture
def client(service: Service) -> Client:
    return Client(create_app(service))


def post(client: Client, body: Any, **headers: str) -> tuple[int, Any]:
    answer = client.post(
        "/events", content=json.dumps(body), headers={"Content-Type": "application/json", **AUTH, **headers}
    )
    return answer.status_code, answer.json()


def metric(client: Client, name: str) -> float:
    text = client.get("/metrics", headers=AUTH).text
    values = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line[:1] != "#"
    }
    return values.get(name, 0.0)


# ---- who may post ---------------------------------------------------------------------------------


def test_an_event_without_a_known_token_is_refused_and_not_fed(client: Client, service: Service) -> None:
    for headers in ({}, {"Authorization": "Bearer nope-nope-nope-nope"}, {"Authorization": TOKEN}):
        answer = client.post("/events", json=JOIN, headers=headers)
        assert answer.status_code == 401, headers
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert service.runtime.stats()["events_in"] == 0
    assert client.get("/metrics").status_code == 401  # metrics need a token too
    assert client.get("/healthz").status_code == 200  # probes do not


def test_a_token_of_other_shards_is_forbidden(client: Client) -> None:
    answer = client.post("/events", json=JOIN, headers={"Authorization": f"Bearer {OTHER}"})
    assert answer.status_code == 403
    assert "tokens.txt:2" in answer.json()["error"] and OTHER not in answer.text
    assert post(client, JOIN)[0] == 202


def test_a_body_not_declared_json_is_415_so_a_web_page_cannot_post_without_a_preflight(
    client: Client, service: Service
) -> None:
    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None):
        headers = {**AUTH, **({"Content-Type": kind} if kind else {})}
        answer = client.post("/events", content=json.dumps(JOIN), headers=headers)
        assert answer.status_code == 415, kind
        assert "Content-Type: application/json" in answer.json()["error"]
    assert service.runtime.stats()["events_in"] == 0
    assert post(client, JOIN, **{"Content-Type": "application/json; charset=utf-8"})[0] == 202


def test_a_dns_rebinding_host_is_refused_on_loopback(client: Client) -> None:
    answer = client.post("/events", json=JOIN, headers={**AUTH, "Host": "attacker.example:8080"})
    assert answer.status_code == 421
    assert "attacker.example" in answer.json()["error"]
    for host in ("127.0.0.1:8080", "localhost", "[::1]:8080"):
        assert client.get("/healthz", headers={"Host": host}).status_code == 200, host


def test_without_tokens_the_app_takes_requests_on_loopback() -> None:
    svc = make_service(None, Recorder())
    try:
        client = Client(create_app(svc))
        assert client.post("/events", json=JOIN).status_code == 202
    finally:
        svc.runtime.close()


# ---- what the answers say -------------------------------------------------------------------------


def test_a_duplicate_event_id_is_told_apart(client: Client) -> None:
    event = {**JOIN, "id": "evt-1"}
    status, first = post(client, event)
    assert (status, first["accepted"], first["duplicate"]) == (202, 1, 0)
    status, again = post(client, event)
    assert (status, again["accepted"], again["duplicate"], again["duplicate_ids"]) == (202, 0, 1, ["evt-1"])
    assert again["actions"] == [] and again["stored"] == []
    second = {**JOIN, "member": "m2", "id": "evt-2"}
    status, listed = post(client, [event, second, second])
    assert (listed["accepted"], listed["stored"], listed["duplicate"]) == (1, [1], 2)
    assert listed["duplicate_ids"] == ["evt-1", "evt-2"]
    assert metric(client, "sopdsl_events_duplicate_total") == 3


def test_actions_are_queued_until_the_executor_runs(client: Client, service: Service) -> None:
    recorder = service.runtime.executors["send"]
    assert isinstance(recorder, Recorder)
    status, body = post(client, JOIN)
    assert status == 202 and [a["status"] for a in body["actions"]] == ["queued"]
    assert recorder.calls == []  # the answer came before the executor ran
    service.tick()
    assert [a.member for a, _ in recorder.calls] == ["m1"]


def test_a_list_says_which_events_were_stored_and_which_failed(client: Client) -> None:
    events = [JOIN, {**JOIN, "member": "m2"}, {"kind": "tag", "member": "m3"}, {**JOIN, "member": "m4"}]
    status, body = post(client, events)
    assert status == 400
    assert body["stored"] == [0, 1] and body["accepted"] == 2
    assert body["failed"] == [{"index": 2, "error": body["error"], "field": "name"}]
    assert "needs a name" in body["error"]
    assert body["not_tried"] == [3]
    assert metric(client, "sopdsl_events_in_total") == 2


def test_without_group_commit_a_list_is_answered_the_same(client: Client) -> None:
    # Fed in a thread rather than by the group committer: the same answers, the same refusals.
    events = [JOIN, {**JOIN, "member": "m2"}, {"kind": "tag", "member": "m3"}, {**JOIN, "member": "m4"}]
    alone = make_service(parse_tokens(f"{TOKEN} default", "tokens.txt"), Recorder(), group_commit=False)
    try:
        plain = Client(create_app(alone))
        assert post(plain, events) == post(client, events)
        assert post(plain, {**JOIN, "id": "d1"}) == post(client, {**JOIN, "id": "d1"})
        assert post(plain, {**JOIN, "id": "d1"})[1]["duplicate_ids"] == ["d1"]
        assert metric(plain, "sopdsl_events_in_total") == metric(client, "sopdsl_events_in_total") == 3
    finally:
        alone.runtime.close()


# ---- malformed bodies: answered, counted, never a traceback -------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("[" * 100_000 + "]" * 100_000, "nests lists or objects deeper than 32"),
        ('{"kind": "join", "x": ' + "[" * 40 + "]" * 40 + "}", "nests lists or objects deeper than 32"),
        ('{"kind": "order", "data": {"amount": ' + "9" * 5000 + "}}", "a number of 5000 characters"),
        ('{"kind": "order", "data": {"amount": NaN}}', "holds NaN, which is not JSON"),
        ('{"kind": ', "the body is not JSON"),
    ],
)
def test_malformed_bodies_are_400_and_counted(
    client: Client, service: Service, raw: str, message: str
) -> None:
    answer = client.post("/events", content=raw, headers={"Content-Type": "application/json", **AUTH})
    assert answer.status_code == 400
    assert message in answer.json()["error"]
    assert metric(client, "sopdsl_events_rejected_total") == 1
    assert metric(client, 'sopdsl_requests_refused_total{status="400"}') == 1
    assert isinstance(service.log, io.StringIO)
    assert "Traceback" not in service.log.getvalue()
    assert post(client, JOIN)[0] == 202


def test_an_oversized_declared_body_is_413(client: Client) -> None:
    big = json.dumps([JOIN] * 80_000)
    assert len(big) > 4 * 1024 * 1024
    answer = client.post("/events", content=big, headers={"Content-Type": "application/json", **AUTH})
    assert answer.status_code == 413
    assert "send fewer events per request" in answer.json()["error"]
    assert metric(client, 'sopdsl_requests_refused_total{status="413"}') == 1


# ---- health, readiness, description -------------------------------------------------------------


def test_readiness_waits_for_the_timer_loop_and_liveness_does_not(client: Client, service: Service) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 503
    service._ticked.set()
    assert client.get("/readyz").status_code == 200
    service.request_stop()
    assert client.get("/readyz").status_code == 503 and client.get("/healthz").status_code == 503
    assert post(client, JOIN)[0] == 503  # stopping: no new events


def test_the_openapi_description_names_every_route(client: Client) -> None:
    described = client.get("/openapi.json").json()
    assert described["openapi"].startswith("3.")
    served = {route.path for route in _routes(client)}
    assert served <= set(described["paths"]), served - set(described["paths"])
    assert "bearer" in described["components"]["securitySchemes"]


def _routes(client: Client) -> list[Any]:
    # The app is wrapped by the guards: its Starlette app is in the closure.
    guarded = client.app
    inner = next(c.cell_contents for c in guarded.__closure__ if hasattr(c.cell_contents, "routes"))
    return list(inner.routes)


def test_unknown_paths_and_methods_are_json_errors(client: Client) -> None:
    missing = client.get("/nowhere", headers=AUTH)
    assert missing.status_code == 404 and "/openapi.json" in missing.json()["error"]
    wrong = client.get("/events", headers=AUTH)
    assert wrong.status_code == 405 and wrong.headers["Allow"] == "POST"


# ---- several shards ---------------------------------------------------------------------------------


def test_events_for_another_shard_go_to_that_shard_if_the_token_allows_it(
    client: Client, service: Service
) -> None:
    answer = client.post("/events?shard=shop2", json=JOIN, headers={"Authorization": f"Bearer {OTHER}"})
    assert answer.status_code == 202 and answer.json()["stored"] == [0]
    runtime = service.runtime
    assert isinstance(runtime, Runtime)
    assert [e.body["member"] for e in runtime.store.journal("shop2") if e.body["op"] == "event"] == ["m1"]
    assert not [e for e in runtime.store.journal("default") if e.body["op"] == "event"]
    # The token must be allowed the shard named, not the service's own.
    assert (
        client.post(
            "/events?shard=shop4", json=JOIN, headers={"Authorization": f"Bearer {OTHER}"}
        ).status_code
        == 403
    )
    assert client.post("/events?shard=shop2", json=JOIN, headers=AUTH).status_code == 403
    assert client.post("/events?shard=default", json=JOIN, headers=AUTH).status_code == 202


def test_a_bad_shard_name_is_a_located_400(client: Client, service: Service) -> None:
    for query in ("shard=", "shard=a/b", "shard=" + "x" * 65, "shard=a&shard=b", "shard=%00"):
        answer = client.post(f"/events?{query}", json=JOIN, headers=AUTH)
        assert answer.status_code == 400, query
        assert answer.json()["field"] == "shard"
    assert service.runtime.stats()["events_in"] == 0


def test_an_action_held_back_by_quiet_hours_is_answered_deferred_until_it_goes() -> None:
    # 2026-03-09 04:00 in Shanghai: inside 22:00-08:00, so the welcome waits for 08:00.
    runtime = Runtime(
        sopdsl.compile_program(sopdsl.check(sopdsl.load_text(PLAYBOOK_QUIET, "quiet.sop"))),
        "memory://",
        executors={"send": (recorder := Recorder())},
        clock=(clock := ManualClock(START)),
    )
    svc = Service(
        runtime, zone=ZONE, tokens=None, allowed_hosts=allowed_hosts("127.0.0.1"), log=io.StringIO()
    )
    try:
        client = Client(create_app(svc))
        status, body = post(client, JOIN)
        assert status == 202
        (held,) = body["actions"]
        assert (held["status"], held["at"], held["reason"]) == (
            "deferred",
            "2026-03-09T08:00:00+08:00",
            "quiet hours",
        )
        assert held["planned"] == "2026-03-09T04:00:00+08:00" and held["member"] == "m1"
        # Nothing is stored to go out before 08:00, and the embedded API lists only what was decided.
        assert runtime.store.outbox() == [] and runtime.feed({**JOIN, "member": "m2"}) == []
        svc.tick()
        assert recorder.calls == []
        clock.set(START + 4 * 3600)
        svc.tick()
        went = {a.member: a for a, _ in recorder.calls}
        assert sorted(went, key=str) == ["m1", "m2"] and went["m1"].key == held["key"]
        assert went["m1"].time == START + 4 * 3600
    finally:
        runtime.close()


PLAYBOOK_QUIET = """
timezone "Asia/Shanghai"
template welcome = "欢迎！"
policy { quiet hours 22:00 - 08:00 }
playbook welcome "新人欢迎" {
    on member joins
    do { send welcome to member }
}
"""


def test_a_query_parameter_a_path_does_not_read_is_refused_not_ignored(
    client: Client, service: Service
) -> None:
    assert isinstance(service.runtime, Runtime)
    # `?shrd=shop2` fed the default shard, and `?shard=` on the admin API changed it, not shop2.
    answer = client.post("/events?shrd=shop2", json=JOIN, headers=AUTH)
    assert answer.status_code == 400 and answer.json()["field"] == "shrd"
    assert "it takes shard" in answer.json()["error"]
    answer = client.request("PUT", "/admin/groups/sg?shard=shop2", json={"tags": ["normal"]}, headers=AUTH)
    assert answer.status_code == 400 and answer.json()["field"] == "shard"
    assert "POST /events only" in answer.json()["error"]
    answer = client.get("/report?from=2026-03-09&to=2026-03-09&fmt=json", headers=AUTH)
    assert answer.status_code == 400 and answer.json()["field"] == "fmt"
    assert metric(client, "sopdsl_events_in_total") == 0
    assert service.runtime.look("group", "sg") is None  # nothing was registered anywhere
    assert client.get("/report?from=2026-03-09&to=2026-03-09&format=json", headers=AUTH).status_code == 200
    assert post(client, JOIN)[0] == 202
