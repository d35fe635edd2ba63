"""What the WeCom callbacks teach, kept in the store that the workers share: a callback handled by
one worker (or before a restart) and the send it causes executed by another (or after it).

Each worker is built as `sopdsl run` builds one: the docs' `wecom` table made into an executor in
its own process memory, its runtime on the shared store, its callback mounted on its service. On
SQLite the other worker is the same service restarted; on PostgreSQL it runs beside the first.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
import test_wecom_walkthrough as walkthrough
from asgiclient import Client
from livestores import store_url
from test_wecom_walkthrough import CHAT, DAYTIME, ENV, PLAYBOOKS, Bot, chat_xml, contact_xml
from wecom_mock import MockWeCom, callback_request, serving

import sopdsl
from sopdsl.live.app import create_app
from sopdsl.live.clock import ManualClock
from sopdsl.live.runtime import Runtime
from sopdsl.live.service import Service
from sopdsl.live.store import PARKED
from sopdsl.live.wecom.settings import build, receivers
from sopdsl.plan import timeutil

TABLE = {
    "corpid_env": "WECOM_CORPID",
    "secret_env": "WECOM_SECRET",
    "callback_token_env": "WECOM_TOKEN",
    "callback_aes_key_env": "WECOM_AES",
    "agent_id": 1000002,
}
NONCES = itertools.count(1)
mock = walkthrough.mock
bot = walkthrough.bot  # one service on a memory store, for what needs no second worker


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url(request.param, tmp_path, request)


@contextmanager
def worker(url: str, api: str, name: str) -> Iterator[Bot]:
    """One worker process's service on the shared store, with an executor of its own."""
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(PLAYBOOKS, "walk.sop")))
    executor, problems = build({**TABLE, "api": api}, ENV)
    assert executor is not None, problems
    executor.contacts.clock = lambda: float(DAYTIME)  # the wall clock, held still
    runtime = Runtime(
        plan, url, executors={"send": executor}, clock=ManualClock(DAYTIME), worker=name, lease=1.0
    )
    log = io.StringIO()
    service = Service(
        runtime,
        zone=timeutil.zone("Asia/Shanghai"),
        log=log,
        receivers=receivers([executor]),
        group_commit=False,
    )
    try:
        yield Bot(service, runtime, executor, Client(create_app(service)), log)
    finally:
        runtime.close()
        executor.api.close()


def post(bot: Bot, xml: str) -> None:
    """WeCom's callback to this worker, stored; its actions left for whichever worker dispatches."""
    query, body = callback_request(xml, nonce=str(next(NONCES)), timestamp=DAYTIME)
    answer = bot.client.post(f"/wecom/callback?{query}", content=body, headers={"Content-Type": "text/xml"})
    assert answer.status_code == 200, answer.text


@contextmanager
def two_workers(url: str, api: str) -> Iterator[tuple[Bot, AbstractContextManager[Bot]]]:
    """Worker a, and a way to have worker b: beside a on PostgreSQL, after a's restart on SQLite."""
    restart = url.startswith("sqlite")
    with worker(url, api, "a") as a:

        @contextmanager
        def then_b() -> Iterator[Bot]:
            if restart:
                a.runtime.close()
            with worker(url, api, "b") as b:
                yield b

        yield a, then_b()


def parked(bot: Bot) -> list[str]:
    return [str(row.error) for row in bot.runtime.store.outbox() if row.status == PARKED]


def test_a_welcome_code_received_by_one_worker_greets_when_another_sends(url: str, mock: MockWeCom) -> None:
    with serving(mock) as api, two_workers(url, api) as (a, later):
        post(a, contact_xml("add_external_contact", "wmCUST1", "zhangsan", code="CODE1"))
        assert mock.bodies("externalcontact/send_welcome_msg") == []  # nothing sent by a
        with later as b:
            b.service.tick()  # b's dispatcher takes the greeting a's callback caused
            assert mock.bodies("externalcontact/send_welcome_msg") == [
                {"welcome_code": "CODE1", "text": {"content": "你好 😀，我是你的专属顾问 🚴"}}
            ]
            assert mock.bodies("externalcontact/add_msg_template") == []
            assert mock.bodies("externalcontact/get") == []  # the owner came with the callback
            # The code is spent for every worker: a's next send to the customer is a mass send.
            assert b.executor.contacts.take_welcome_code("wmCUST1") is None
            assert parked(b) == []


def test_a_staff_member_seen_joining_before_a_restart_is_not_fed_leaving_after_it(
    url: str, mock: MockWeCom
) -> None:
    mock.members[CHAT] = [
        {"userid": "zhangsan", "type": 1, "name": "张三"},
        {"userid": "wmCUST1", "type": 2, "name": "阿峰"},
    ]
    with serving(mock) as api, two_workers(url, api) as (a, later):
        post(a, chat_xml("add_member", ["zhangsan", "wmCUST1"], version="v1"))
        assert a.runtime.stats()["events_in"] == 1  # wmCUST1's join
        mock.members[CHAT] = []  # WeCom lists neither once they left
        with later as b:
            post(b, chat_xml("del_member", ["zhangsan", "wmCUST1"], version="v2"))
            assert b.runtime.stats()["events_in"] == 2  # wmCUST1's join and leave
            assert f"staff zhangsan left customer group {CHAT}; not a customer, not fed" in b.log.getvalue()
            b.service.tick()
            assert parked(b) == []


def test_a_half_added_contact_confirmed_on_another_worker_is_greeted_once(url: str, mock: MockWeCom) -> None:
    with serving(mock) as api, two_workers(url, api) as (a, later):
        post(a, contact_xml("add_half_external_contact", "wmCUST1", "zhangsan", code="CODE1"))
        with later as b:
            # zhangsan confirms: WeCom sends add_external_contact (without a code, WeCom's docs say).
            post(b, contact_xml("add_external_contact", "wmCUST1", "zhangsan", at=DAYTIME + 30))
            b.service.tick()
            assert b.runtime.stats()["events_in"] == 1
            assert [w["welcome_code"] for w in mock.bodies("externalcontact/send_welcome_msg")] == ["CODE1"]
            assert mock.bodies("externalcontact/add_msg_template") == []  # no second greeting
            assert "zhangsan confirmed wmCUST1, added (免验证) and fed before" in b.log.getvalue()


def test_a_customer_who_deleted_a_staff_member_and_added_them_again_is_greeted_again(
    bot: Bot, mock: MockWeCom
) -> None:
    at = DAYTIME - 90
    bot.callback(contact_xml("add_half_external_contact", "wmCUST1", "zhangsan", code="CODE1", at=at))
    bot.callback(contact_xml("add_external_contact", "wmCUST1", "zhangsan", at=at + 30))
    bot.callback(contact_xml("del_follow_user", "wmCUST1", "zhangsan", at=at + 60))
    bot.callback(contact_xml("add_external_contact", "wmCUST1", "zhangsan", at=at + 90))
    sent = [b["external_userid"] for b in mock.bodies("externalcontact/add_msg_template")]
    assert len(mock.bodies("externalcontact/send_welcome_msg")) == 1 and sent == [["wmCUST1"]]


def test_a_staff_member_already_in_a_group_is_not_fed_leaving_it(bot: Bot, mock: MockWeCom) -> None:
    # zhangsan was in the group before sopdsl ran; WeCom lists them as staff when a customer joins.
    mock.members[CHAT] = [
        {"userid": "zhangsan", "type": 1, "name": "张三"},
        {"userid": "wmCUST1", "type": 2, "name": "阿峰"},
    ]
    bot.callback(chat_xml("add_member", ["wmCUST1"], version="v1"))
    mock.members[CHAT] = [{"userid": "wmCUST1", "type": 2, "name": "阿峰"}]
    bot.callback(chat_xml("del_member", ["zhangsan"], version="v2"))
    assert bot.runtime.stats()["events_in"] == 1  # wmCUST1's join only
    assert f"staff zhangsan left customer group {CHAT}; not a customer, not fed" in bot.log.getvalue()


def test_a_known_staff_member_joining_is_not_greeted_when_wecom_cannot_list_the_group(
    bot: Bot, mock: MockWeCom
) -> None:
    # zhangsan added a customer (only staff add customers), then joins a group while groupchat/get fails.
    mock.contacts["wmCUST9"] = ["zhangsan"]
    bot.callback(contact_xml("add_external_contact", "wmCUST9", "zhangsan", at=DAYTIME - 60))
    mock.fail_next["externalcontact/groupchat/get"] = [48002]
    bot.callback(chat_xml("add_member", ["zhangsan", "wmCUST1"], version="v1"))
    singles = [b for b in mock.bodies("externalcontact/add_msg_template") if b["chat_type"] == "single"]
    assert [s["external_userid"] for s in singles] == [["wmCUST9"], ["wmCUST1"]]
    assert f"staff zhangsan joined customer group {CHAT}; not a customer, not fed" in bot.log.getvalue()
    assert bot.parked() == []
