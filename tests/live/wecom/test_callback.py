"""The WeCom callback receiver, with real encryption: each request is encrypted by wechatpy's
WeChatCrypto as WeCom would, posted to the service's app, and the events the runtime stored and
the actions they caused are checked."""

from __future__ import annotations

import io
import textwrap
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiclient import Client
from wecom_mock import AES_KEY, CALLBACK_TOKEN, callback_request, verification_query

import sopdsl
from sopdsl.engine.actions import Action
from sopdsl.live.app import create_app
from sopdsl.live.auth import parse_tokens
from sopdsl.live.clock import ManualClock
from sopdsl.live.runtime import Runtime
from sopdsl.live.service import Service
from sopdsl.live.wecom.callback import CallbackConfigError, WeComCallback

ROOT = Path(__file__).resolve().parents[3]
CORP = "ww1234567890abcdef"
BEARER = "tok-default-0123456789"
START = 1_773_000_000  # 2026-03-09 04:00 in Shanghai... quiet hours end at 08:00
DAYTIME = START + 6 * 3600  # 10:00
CHAT = "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA"

EXTRA = textwrap.dedent(
    """
    timezone "Asia/Shanghai"
    event wecom_contact_added "加企业微信好友" { owner: text }
    template hello = "你好，我是你的专属顾问"
    playbook contact_hello "加好友欢迎" {
        on event wecom_contact_added
        do {
            send hello to member
        }
    }
    """
)


def add_member_xml(
    members: list[str], *, version: str = "71217227bbd112ecfe3a49c482195cb4", at: int = DAYTIME
) -> str:
    items = "".join(f"<Item><![CDATA[{m}]]></Item>" for m in members)
    return (
        f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{at}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[change_external_chat]]></Event>"
        f"<ChatId><![CDATA[{CHAT}]]></ChatId><ChangeType><![CDATA[update]]></ChangeType>"
        "<UpdateDetail><![CDATA[add_member]]></UpdateDetail><JoinScene>3</JoinScene><QuitScene>0</QuitScene>"
        f"<MemChangeCnt>{len(members)}</MemChangeCnt><MemChangeList>{items}</MemChangeList>"
        f"<LastMemVer>9c3f97c2ada667dfb5f6d03308d963e1</LastMemVer><CurMemVer>{version}</CurMemVer></xml>"
    )


def contact_added_xml(customer: str, owner: str, code: str) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{DAYTIME}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[change_external_contact]]></Event>"
        "<ChangeType><![CDATA[add_external_contact]]></ChangeType>"
        f"<UserID><![CDATA[{owner}]]></UserID><ExternalUserID><![CDATA[{customer}]]></ExternalUserID>"
        f"<State><![CDATA[qr-shop1]]></State><WelcomeCode><![CDATA[{code}]]></WelcomeCode></xml>"
    )


class WeCom:
    """Posts callbacks as WeCom does: encrypted, signed, the signature in the query string."""

    def __init__(self, client: Client, corp: str = CORP) -> None:
        self.client = client
        self.corp = corp
        self.nonce = 0

    def post(self, xml: str, *, tamper: bool = False) -> Any:
        self.nonce += 1
        query, body = callback_request(
            xml, nonce=str(self.nonce), timestamp=DAYTIME, corp=self.corp, forged=tamper
        )
        return self.client.post(
            f"/wecom/callback?{query}", content=body, headers={"Content-Type": "text/xml"}
        )


@pytest.fixture
def sent() -> list[Action]:
    return []


@pytest.fixture
def service(sent: list[Action]) -> Iterator[Service]:
    j1 = sopdsl.load(ROOT / "playbooks" / "J1_welcome_ritual.sop")
    plan = sopdsl.compile_program(sopdsl.check(j1))
    runtime = Runtime(
        plan, "memory://", executors={"send": lambda a, k: sent.append(a)}, clock=ManualClock(DAYTIME)
    )
    runtime.add_group(CHAT, name="骑友交流1群", tags=["normal"])
    callback = WeComCallback(token=CALLBACK_TOKEN, aes_key=AES_KEY, corp_id=CORP)
    svc = Service(
        runtime,
        zone=plan_zone(),
        tokens=parse_tokens(f"{BEARER} default\n", "tokens.txt"),
        allowed_hosts=["127.0.0.1"],
        log=io.StringIO(),
        receivers=[callback],
        group_commit=False,
    )
    yield svc
    runtime.close()


def plan_zone() -> Any:
    from sopdsl.plan import timeutil

    return timeutil.zone("Asia/Shanghai")


@pytest.fixture
def wecom(service: Service) -> WeCom:
    return WeCom(Client(create_app(service)))


def test_url_verification_answers_the_decrypted_echostr(wecom: WeCom) -> None:
    query = verification_query("1616140317555161061")
    answer = wecom.client.get(f"/wecom/callback?{query}")
    assert answer.status_code == 200 and answer.text == "1616140317555161061"
    signature = urllib.parse.parse_qs(query)["msg_signature"][0]
    forged = query.replace(signature, "0" * 40)
    assert wecom.client.get(f"/wecom/callback?{forged}").status_code == 403


def test_members_added_to_a_customer_group_join_and_j1_welcomes_them(
    wecom: WeCom, service: Service, sent: list[Action]
) -> None:
    answer = wecom.post(add_member_xml(["wmAFENG", "wmXIAOYU"]))
    assert answer.status_code == 200 and answer.text == ""
    service.tick()
    welcomes = [a for a in sent if a.detail.get("template") == "welcome_rules"]
    assert [a.group for a in welcomes] == [CHAT, CHAT]
    assert "骑友交流1群" in str(welcomes[0].detail["text"])
    assert service.runtime.stats()["events_in"] == 2


def test_a_callback_wecom_delivers_again_is_a_duplicate_not_a_second_welcome(
    wecom: WeCom, service: Service, sent: list[Action]
) -> None:
    wecom.post(add_member_xml(["wmAFENG"]))
    wecom.post(add_member_xml(["wmAFENG"]))  # no answer within 5 s: WeCom sends it again
    service.tick()
    assert len([a for a in sent if a.detail.get("template") == "welcome_rules"]) == 1
    assert service.counters.duplicates == 1
    # A later join of the same member (a new member-list version) is welcomed again, as J1 says.
    wecom.post(add_member_xml(["wmAFENG"], version="a-later-version"))
    service.tick()
    assert len([a for a in sent if a.detail.get("template") == "welcome_rules"]) == 2


def test_the_bearer_token_is_not_asked_of_wecom_but_still_of_every_other_path(wecom: WeCom) -> None:
    assert wecom.post(add_member_xml(["wmAFENG"])).status_code == 200
    assert (
        wecom.client.post("/events", json={"kind": "join", "member": "x", "group": CHAT}).status_code == 401
    )


def test_a_forged_signature_is_refused_and_feeds_nothing(wecom: WeCom, service: Service) -> None:
    answer = wecom.post(add_member_xml(["wmAFENG"]), tamper=True)
    assert answer.status_code == 403 and "msg_signature" in answer.text
    assert service.runtime.stats()["events_in"] == 0


def test_a_callback_for_another_corp_is_refused(service: Service) -> None:
    other = WeCom(Client(create_app(service)), corp="wwSOMEONEELSE")
    answer = other.post(add_member_xml(["wmAFENG"]))
    assert answer.status_code == 403 and "corp" in answer.text
    assert service.runtime.stats()["events_in"] == 0


def test_a_body_that_is_not_wecoms_xml_is_a_400(wecom: WeCom) -> None:
    query = "msg_signature=abc&timestamp=1&nonce=2"
    assert wecom.client.post(f"/wecom/callback?{query}", content=b"not xml").status_code == 400
    assert wecom.client.post(f"/wecom/callback?{query}", content=b"<xml><A>1</A></xml>").status_code == 400
    assert wecom.client.post("/wecom/callback", content=b"<xml/>").status_code == 400


def test_an_undeclared_custom_event_is_acknowledged_logged_and_not_fed(
    wecom: WeCom, service: Service
) -> None:
    answer = wecom.post(contact_added_xml("wmCUST1", "zhangsan", "CODE1"))
    assert answer.status_code == 200
    assert service.runtime.stats()["events_in"] == 0
    assert isinstance(service.log, io.StringIO)
    assert "wecom_contact_added: the playbooks declare no such event" in service.log.getvalue()


def test_a_contact_added_is_fed_when_declared_and_its_welcome_code_kept_for_the_executor(
    sent: list[Action],
) -> None:
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(EXTRA, "contacts.sop")))
    runtime = Runtime(
        plan, "memory://", executors={"send": lambda a, k: sent.append(a)}, clock=ManualClock(DAYTIME)
    )
    callback = WeComCallback(token=CALLBACK_TOKEN, aes_key=AES_KEY, corp_id=CORP)
    svc = Service(runtime, zone=plan_zone(), log=io.StringIO(), receivers=[callback], group_commit=False)
    try:
        answer = WeCom(Client(create_app(svc))).post(contact_added_xml("wmCUST1", "zhangsan", "CODE1"))
        assert answer.status_code == 200
        svc.tick()
    finally:
        runtime.close()
    assert [(a.kind, a.member, a.detail["template"]) for a in sent] == [("send", "wmCUST1", "hello")]
    assert callback.contacts.owner("wmCUST1") == "zhangsan"
    assert callback.contacts.take_welcome_code("wmCUST1") == "CODE1"
    assert callback.contacts.take_welcome_code("wmCUST1") is None  # once


def test_an_encoding_aes_key_of_the_wrong_length_is_a_clear_error() -> None:
    with pytest.raises(CallbackConfigError, match="43 characters"):
        WeComCallback(token=CALLBACK_TOKEN, aes_key=AES_KEY[:-1], corp_id=CORP)


def test_a_wrong_encoding_aes_key_is_a_400_naming_it(sent: list[Action]) -> None:
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(EXTRA, "contacts.sop")))
    runtime = Runtime(
        plan, "memory://", executors={"send": lambda a, k: sent.append(a)}, clock=ManualClock(DAYTIME)
    )
    callback = WeComCallback(
        token=CALLBACK_TOKEN, aes_key="abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", corp_id=CORP
    )
    svc = Service(runtime, zone=plan_zone(), log=io.StringIO(), receivers=[callback], group_commit=False)
    try:
        answer = WeCom(Client(create_app(svc))).post(contact_added_xml("wmCUST1", "zhangsan", "CODE1"))
    finally:
        runtime.close()
    assert answer.status_code == 400 and "check the EncodingAESKey" in answer.text
