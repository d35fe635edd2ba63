"""A bot developer's walk through the WeCom adapter, end to end: the docs' `wecom` table built
into an executor, its callback mounted on the service, callbacks encrypted by wechatpy as WeCom
sends them, the engine deciding, and the actions reaching the local WeCom mock. Each test is a
day-to-day turn of events (WeCom sending a callback again, a customer who already chatted, a
customer handed to another staff member, a group given a new owner) that once lost an action."""

from __future__ import annotations

import io
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from asgiclient import Client
from wecom_mock import (
    AES_KEY,
    CALLBACK_TOKEN,
    CORP_ID,
    SECRET,
    MockWeCom,
    callback_request,
    serving,
    verification_query,
)

import sopdsl
from sopdsl.engine.actions import Action
from sopdsl.live.app import create_app
from sopdsl.live.auth import parse_tokens
from sopdsl.live.clock import ManualClock
from sopdsl.live.executors_config import ExecutorConfigError, parse_executors
from sopdsl.live.runtime import Runtime
from sopdsl.live.service import Service
from sopdsl.live.store import PARKED
from sopdsl.live.wecom.api import WeComError
from sopdsl.live.wecom.executor import WeComExecutor
from sopdsl.live.wecom.settings import build, receivers
from sopdsl.plan import timeutil

DAYTIME = 1_773_021_600  # 2026-03-09 10:00 in Shanghai: no quiet hours in the way
CHAT = "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA"
ENV = {"WECOM_CORPID": CORP_ID, "WECOM_SECRET": SECRET, "WECOM_TOKEN": CALLBACK_TOKEN, "WECOM_AES": AES_KEY}

PLAYBOOKS = textwrap.dedent(
    """
    timezone "Asia/Shanghai"
    event wecom_contact_added "加好友" { owner: text }
    event wecom_contact_lost "被客户删除" { owner: text }
    template hi = "你好 😀，我是你的专属顾问 🚴"
    template tip = "骑行小贴士：出发前检查胎压 🛞"
    template welcome = "欢迎 {{ member.name }} 入群 🎉"
    playbook contact_hello "加好友欢迎" {
        on event wecom_contact_added
        repeat always
        do {
            send hi to member
        }
    }
    playbook group_tip "入群小贴士" {
        on member joins
        repeat always
        do {
            send tip to member
            send welcome to group
        }
    }
    """
)


def contact_xml(change: str, customer: str, owner: str, *, code: str = "", at: int = DAYTIME) -> str:
    """A `change_external_contact` callback, as WeCom documents it."""
    welcome = f"<WelcomeCode><![CDATA[{code}]]></WelcomeCode>" if code else ""
    return (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{at}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[change_external_contact]]></Event>"
        f"<ChangeType><![CDATA[{change}]]></ChangeType><UserID><![CDATA[{owner}]]></UserID>"
        f"<ExternalUserID><![CDATA[{customer}]]></ExternalUserID><State><![CDATA[qr-shop1]]></State>"
        f"{welcome}</xml>"
    )


def chat_xml(detail: str, members: list[str], *, version: str, at: int = DAYTIME) -> str:
    """A `change_external_chat` `update` callback (members joining, or another change)."""
    items = "".join(f"<Item><![CDATA[{m}]]></Item>" for m in members)
    listed = f"<MemChangeCnt>{len(members)}</MemChangeCnt><MemChangeList>{items}</MemChangeList>"
    return (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{at}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[change_external_chat]]></Event><ChatId><![CDATA[{CHAT}]]></ChatId>"
        f"<ChangeType><![CDATA[update]]></ChangeType><UpdateDetail><![CDATA[{detail}]]></UpdateDetail>"
        f"<JoinScene>1</JoinScene>{listed if members else ''}<CurMemVer>{version}</CurMemVer></xml>"
    )


@dataclass
class Bot:
    """The service as `sopdsl run` makes it from the docs' executors file, and WeCom posting to it."""

    service: Service
    runtime: Runtime
    executor: WeComExecutor
    client: Client
    log: io.StringIO
    nonce: int = 0

    def callback(self, xml: str) -> Any:
        """Post one change as WeCom does (encrypted, signed), then let the outbox run."""
        self.nonce += 1
        query, body = callback_request(xml, nonce=str(self.nonce), timestamp=DAYTIME)
        answer = self.client.post(
            f"/wecom/callback?{query}", content=body, headers={"Content-Type": "text/xml"}
        )
        self.service.tick()
        return answer

    def parked(self) -> list[str]:
        """The errors of the parked actions."""
        return [str(row.error) for row in self.runtime.store.outbox() if row.status == PARKED]


@pytest.fixture
def mock() -> MockWeCom:
    return MockWeCom(
        contacts={"wmCUST1": ["zhangsan", "lisi"]},
        groups={CHAT: "wangwu"},
        welcome_codes={"CODE1"},
    )


@pytest.fixture
def bot(mock: MockWeCom) -> Iterator[Bot]:
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(PLAYBOOKS, "walk.sop")))
    table = {
        "corpid_env": "WECOM_CORPID",
        "secret_env": "WECOM_SECRET",
        "callback_token_env": "WECOM_TOKEN",
        "callback_aes_key_env": "WECOM_AES",
        "agent_id": 1000002,
    }
    with serving(mock) as url:
        executor, problems = build({**table, "api": url}, ENV)
        assert executor is not None, problems
        runtime = Runtime(plan, "memory://", executors={"send": executor}, clock=ManualClock(DAYTIME))
        log = io.StringIO()
        service = Service(
            runtime,
            zone=timeutil.zone("Asia/Shanghai"),
            log=log,
            receivers=receivers([executor]),
            group_commit=False,
        )
        yield Bot(service, runtime, executor, Client(create_app(service)), log)
        runtime.close()
        executor.api.close()


def test_a_contact_callback_wecom_sends_again_does_not_spend_a_later_send_on_its_used_welcome_code(
    bot: Bot, mock: MockWeCom
) -> None:
    added = contact_xml("add_external_contact", "wmCUST1", "zhangsan", code="CODE1")
    assert bot.callback(added).status_code == 200
    assert mock.bodies("externalcontact/send_welcome_msg")[0]["welcome_code"] == "CODE1"
    # No answer within 5 s (a slow disk): WeCom sends the same callback again. It is a duplicate...
    assert bot.callback(added).status_code == 200
    assert bot.service.counters.duplicates == 1
    # ...and the customer then joins a customer group: the tip goes to them as a mass send.
    assert bot.callback(chat_xml("add_member", ["wmCUST1"], version="v1")).status_code == 200
    assert len(mock.bodies("externalcontact/send_welcome_msg")) == 1
    [single] = [b for b in mock.bodies("externalcontact/add_msg_template") if b["chat_type"] == "single"]
    assert single["external_userid"] == ["wmCUST1"] and "胎压 🛞" in single["text"]["content"]
    assert bot.parked() == []


def test_a_welcome_code_wecom_no_longer_takes_falls_back_to_a_mass_send(bot: Bot, mock: MockWeCom) -> None:
    # The customer wrote first, or staff greeted them by hand: WeCom refuses the code with 41051.
    bot.callback(contact_xml("add_external_contact", "wmCUST1", "zhangsan", code="CODE_SPENT"))
    [single] = mock.bodies("externalcontact/add_msg_template")
    assert (single["chat_type"], single["sender"], single["external_userid"]) == (
        "single",
        "zhangsan",
        ["wmCUST1"],
    )
    assert single["text"]["content"] == "你好 😀，我是你的专属顾问 🚴"
    assert bot.parked() == []


def test_a_customer_who_deleted_their_owner_is_sent_to_from_the_staff_member_they_still_have(
    bot: Bot, mock: MockWeCom
) -> None:
    bot.callback(contact_xml("add_external_contact", "wmCUST1", "zhangsan", at=DAYTIME - 60))
    assert mock.bodies("externalcontact/add_msg_template")[0]["sender"] == "zhangsan"
    # The customer deletes zhangsan; lisi, who added them too, is their contact now.
    mock.contacts["wmCUST1"] = ["lisi"]
    bot.callback(contact_xml("del_follow_user", "wmCUST1", "zhangsan"))
    bot.callback(chat_xml("add_member", ["wmCUST1"], version="v1"))
    singles = [b for b in mock.bodies("externalcontact/add_msg_template") if b["chat_type"] == "single"]
    assert [b["sender"] for b in singles] == ["zhangsan", "lisi"]
    assert bot.parked() == []


def test_a_group_given_a_new_owner_is_sent_to_from_the_new_owner(bot: Bot, mock: MockWeCom) -> None:
    bot.callback(chat_xml("add_member", ["wmA"], version="v1"))
    # wangwu leaves the company; the group is handed to zhaoliu (离职继承), and WeCom says so.
    mock.groups[CHAT] = "zhaoliu"
    assert bot.callback(chat_xml("change_owner", [], version="v1")).status_code == 200
    bot.callback(chat_xml("add_member", ["wmB"], version="v2"))
    groups = [b for b in mock.bodies("externalcontact/add_msg_template") if b["chat_type"] == "group"]
    assert [b["sender"] for b in groups] == ["wangwu", "zhaoliu"]
    assert "入群" in groups[1]["text"]["content"]
    assert not [e for e in bot.parked() if "welcome" in e or "40058" in e]


def test_a_send_to_an_operator_wecom_cannot_reach_is_parked_not_marked_done(
    bot: Bot, mock: MockWeCom
) -> None:
    mock.users = {"chenzg"}  # the app sees chenzg; the playbooks name the operator 陈主管
    notice = Action(
        DAYTIME,
        "send",
        "p",
        "k1",
        group=CHAT,
        target="operator",
        detail={"template": "notice", "text": "今晚 8 点直播 📺", "operator": "陈主管"},
    )
    # WeCom answers errcode 0 and names the receiver it dropped in `invaliduser`.
    with pytest.raises(WeComError, match="陈主管 is not a userid the app can reach") as caught:
        bot.executor(notice, "k1")
    assert caught.value.permanent
    bot.executor.userids["陈主管"] = "chenzg"
    bot.executor(notice, "k1")
    assert [b["touser"] for b in mock.bodies("message/send")] == ["陈主管", "chenzg"]


def test_a_send_refused_for_want_of_privilege_is_parked_saying_what_to_fix(bot: Bot, mock: MockWeCom) -> None:
    mock.fail_next["externalcontact/add_msg_template"] = [60011]  # the tip to the member
    bot.callback(chat_xml("add_member", ["wmCUST1"], version="v1"))
    [parked] = bot.parked()
    assert "errcode 60011" in parked and "visible range" in parked and "requeue" in parked
    assert [b["chat_type"] for b in mock.bodies("externalcontact/add_msg_template")] == ["single", "group"]


def test_a_member_joining_a_customer_group_is_greeted_by_name_not_by_their_wecom_id(
    bot: Bot, mock: MockWeCom
) -> None:
    mock.members[CHAT] = [{"userid": "wmCUST1", "type": 2, "name": "阿峰🚴", "group_nickname": "杭州-阿峰"}]
    bot.callback(chat_xml("add_member", ["wmCUST1"], version="v1"))
    [group] = [b for b in mock.bodies("externalcontact/add_msg_template") if b["chat_type"] == "group"]
    assert group["text"]["content"] == "欢迎 阿峰🚴 入群 🎉"
    assert mock.bodies("externalcontact/groupchat/get")[0] == {"chat_id": CHAT, "need_name": 1}


def test_a_join_whose_names_wecom_cannot_give_is_fed_all_the_same(bot: Bot, mock: MockWeCom) -> None:
    mock.fail_next["externalcontact/groupchat/get"] = [48002]
    assert bot.callback(chat_xml("add_member", ["wmCUST1"], version="v1")).status_code == 200
    assert bot.runtime.stats()["events_in"] == 1
    assert f"no names for the members joining {CHAT}" in bot.log.getvalue()


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/admin/parked", "is the service's /admin, which would then answer without a token"),
        ("/events", "is the service's /events"),
        ("/metrics/", "is the service's /metrics"),
        ("wecom/callback", "must be a URL path starting with /"),
    ],
)
def test_a_callback_path_that_would_open_the_service_or_cannot_be_routed_is_refused_at_load(
    path: str, expected: str
) -> None:
    text = textwrap.dedent(
        f"""\
        send: wecom
        wecom:
          corpid_env: WECOM_CORPID
          secret_env: WECOM_SECRET
          callback_token_env: WECOM_TOKEN
          callback_aes_key_env: WECOM_AES
          callback_path: {path}
        """
    )
    with pytest.raises(ExecutorConfigError) as caught:
        parse_executors(text, "executors.yaml", zone=timeutil.zone("Asia/Shanghai"), environ=ENV)
    assert "executors.yaml:7:3: error: wecom: " in str(caught.value) and expected in str(caught.value)


def test_a_callback_at_its_own_path_leaves_the_admin_api_behind_the_token(mock: MockWeCom) -> None:
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(PLAYBOOKS, "walk.sop")))
    with serving(mock) as url:
        table = {"corpid_env": "WECOM_CORPID", "secret_env": "WECOM_SECRET", "api": url}
        callback = {"callback_token_env": "WECOM_TOKEN", "callback_aes_key_env": "WECOM_AES"}
        executor, _ = build({**table, **callback, "callback_path": "/hooks/wecom"}, ENV)
        assert executor is not None
        runtime = Runtime(plan, "memory://", executors={"send": executor}, clock=ManualClock(DAYTIME))
        service = Service(
            runtime,
            zone=timeutil.zone("Asia/Shanghai"),
            log=io.StringIO(),
            tokens=parse_tokens("tok-default-0123456789 default\n", "tokens.txt"),
            allowed_hosts=["127.0.0.1"],
            receivers=receivers([executor]),
            group_commit=False,
        )
        client = Client(create_app(service))
        answer = client.get(f"/hooks/wecom?{verification_query('echo-1')}")
        assert (answer.status_code, answer.text) == (200, "echo-1")
        assert client.get("/admin/parked").status_code == 401
        runtime.close()
        executor.api.close()
