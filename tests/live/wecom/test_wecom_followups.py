"""Follow-ups to the WeCom walkthrough: the callback signature checked in constant time before
wechatpy sees it, a 413 that speaks to WeCom's operator, a half-added contact (免验证) greeted with
its welcome code, and staff members joining a customer group not greeted as customers."""

from __future__ import annotations

import urllib.parse
from typing import Any

import pytest
import test_wecom_walkthrough as walkthrough
from asgiclient import Client
from test_wecom_walkthrough import CHAT, Bot, chat_xml, contact_xml
from wecom_mock import MockWeCom, callback_request, verification_query

from sopdsl.live.app import create_app
from sopdsl.live.wecom.callback import MAX_CALLBACK, WeComCallback

DAYTIME = 1_773_021_600
# The walkthrough's fixtures: the service as `sopdsl run` makes it, and the WeCom mock it calls.
bot = walkthrough.bot
mock = walkthrough.mock


def callback_of(bot: Bot) -> WeComCallback:
    [callback] = [r for r in bot.service.receivers if isinstance(r, WeComCallback)]
    return callback


def watch(callback: WeComCallback, name: str, *, refuse: bool) -> list[tuple[Any, ...]]:
    """Replace the crypto object's `name` by one that records its calls (and then refuses, as
    wechatpy refuses a forged signature, or does what wechatpy does)."""
    calls: list[tuple[Any, ...]] = []
    original = getattr(callback.crypto, name)

    def watched(*args: Any) -> Any:
        calls.append(args)
        if refuse:
            from wechatpy.exceptions import InvalidSignatureException

            raise InvalidSignatureException()
        return original(*args)

    setattr(callback.crypto, name, watched)
    return calls


@pytest.mark.parametrize("forged", ["0" * 40, "é" * 40, "short"])
def test_a_forged_signature_is_refused_before_wechatpy_compares_it(bot: Bot, forged: str) -> None:
    callback = callback_of(bot)
    decrypts = watch(callback, "decrypt_message", refuse=True)
    checks = watch(callback, "check_signature", refuse=True)
    query, body = callback_request(
        chat_xml("add_member", ["wmCUST1"], version="v1"), nonce="1", timestamp=DAYTIME
    )
    signature = urllib.parse.parse_qs(query)["msg_signature"][0]
    answer = bot.client.post(
        f"/wecom/callback?{query.replace(signature, urllib.parse.quote(forged))}", content=body
    )
    assert answer.status_code == 403
    assert answer.text == "the msg_signature does not match: a wrong Token, or not from WeCom\n"
    verification = verification_query("1616140317555161061")
    echo_signature = urllib.parse.parse_qs(verification)["msg_signature"][0]
    answer = bot.client.get(
        f"/wecom/callback?{verification.replace(echo_signature, urllib.parse.quote(forged))}"
    )
    assert answer.status_code == 403 and "msg_signature does not match" in answer.text
    assert decrypts == [] and checks == []  # wechatpy's `!=` never saw the forgery
    assert bot.runtime.stats()["events_in"] == 0


def test_a_correct_signature_still_reaches_wechatpy_and_is_fed(bot: Bot, mock: MockWeCom) -> None:
    callback = callback_of(bot)
    decrypts = watch(callback, "decrypt_message", refuse=False)
    checks = watch(callback, "check_signature", refuse=False)
    assert bot.callback(chat_xml("add_member", ["wmCUST1"], version="v1")).status_code == 200
    answer = bot.client.get(f"/wecom/callback?{verification_query('1616140317555161061')}")
    assert answer.status_code == 200 and answer.text == "1616140317555161061"
    assert len(decrypts) == 1 and len(checks) == 1
    assert bot.runtime.stats()["events_in"] == 1


def test_an_oversized_callback_body_is_a_413_that_says_it_is_not_from_wecom(bot: Bot) -> None:
    query, _ = callback_request(
        chat_xml("add_member", ["wmCUST1"], version="v1"), nonce="1", timestamp=DAYTIME
    )
    answer = bot.client.post(f"/wecom/callback?{query}", content=b"<" * (MAX_CALLBACK + 1))
    assert answer.status_code == 413
    error = answer.json()["error"]
    assert f"over {MAX_CALLBACK} bytes" in error
    assert "WeCom's change callbacks are under 2 KB" in error and "not from WeCom" in error
    assert "fewer events" not in error
    assert bot.runtime.stats()["events_in"] == 0


def test_events_keeps_its_own_413() -> None:
    import sopdsl
    from sopdsl.live.bodies import MAX_BODY
    from sopdsl.live.runtime import Runtime
    from sopdsl.live.service import Service
    from sopdsl.plan import timeutil

    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load_text('timezone "Asia/Shanghai"\n', "x.sop")))
    runtime = Runtime(plan, "memory://")
    try:
        client = Client(create_app(Service(runtime, zone=timeutil.zone("Asia/Shanghai"), group_commit=False)))
        answer = client.post(
            "/events", content=b"[" + b" " * MAX_BODY + b"]", headers={"Content-Type": "application/json"}
        )
    finally:
        runtime.close()
    assert answer.status_code == 413
    assert answer.json()["error"] == f"the body is over {MAX_BODY} bytes; send fewer events per request"


def test_a_half_added_contact_is_greeted_with_its_welcome_code_and_its_owner_learned(
    bot: Bot, mock: MockWeCom
) -> None:
    # 外部联系人免验证添加成员: the customer added zhangsan, who skips verification and has not
    # confirmed yet; WeCom's WelcomeCode is the one way to greet them in the chat just opened.
    answer = bot.callback(contact_xml("add_half_external_contact", "wmCUST1", "zhangsan", code="CODE1"))
    assert answer.status_code == 200
    assert [b["welcome_code"] for b in mock.bodies("externalcontact/send_welcome_msg")] == ["CODE1"]
    assert mock.bodies("externalcontact/add_msg_template") == []
    assert callback_of(bot).contacts.owner("wmCUST1") == "zhangsan"
    assert bot.runtime.stats()["events_in"] == 1
    assert bot.parked() == []


def test_a_staff_member_joining_a_customer_group_is_not_greeted_as_a_customer(
    bot: Bot, mock: MockWeCom
) -> None:
    mock.members[CHAT] = [
        {"userid": "zhangsan", "type": 1, "name": "张三"},  # staff (企业成员)
        {"userid": "wmCUST1", "type": 2, "name": "阿峰🚴", "group_nickname": "杭州-阿峰"},
    ]
    assert bot.callback(chat_xml("add_member", ["zhangsan", "wmCUST1"], version="v1")).status_code == 200
    assert bot.parked() == []  # no externalcontact/get with a staff userid (40096)
    assert bot.runtime.stats()["events_in"] == 1
    groups = [b for b in mock.bodies("externalcontact/add_msg_template") if b["chat_type"] == "group"]
    assert [g["text"]["content"] for g in groups] == ["欢迎 阿峰🚴 入群 🎉"]
    singles = [b for b in mock.bodies("externalcontact/add_msg_template") if b["chat_type"] == "single"]
    assert [s["external_userid"] for s in singles] == [["wmCUST1"]]
    assert f"staff zhangsan joined customer group {CHAT}; not a customer, not fed" in bot.log.getvalue()


def test_a_callback_of_staff_joining_alone_feeds_nothing(bot: Bot, mock: MockWeCom) -> None:
    mock.members[CHAT] = [{"userid": "zhangsan", "type": 1, "name": "张三"}]
    assert bot.callback(chat_xml("add_member", ["zhangsan"], version="v1")).status_code == 200
    assert bot.runtime.stats()["events_in"] == 0
    assert mock.bodies("externalcontact/add_msg_template") == [] and bot.parked() == []


def test_group_members_says_who_is_staff(bot: Bot, mock: MockWeCom) -> None:
    mock.members[CHAT] = [
        {"userid": "zhangsan", "type": 1, "name": "张三"},
        {"userid": "wmCUST1", "type": 2, "name": "阿峰"},
    ]
    assert bot.executor.group_members(CHAT) == {
        "zhangsan": {"name": "张三", "type": "staff"},
        "wmCUST1": {"name": "阿峰", "type": "customer"},
    }


def test_a_staff_member_seen_joining_is_not_fed_leaving_either(bot: Bot, mock: MockWeCom) -> None:
    mock.members[CHAT] = [
        {"userid": "zhangsan", "type": 1, "name": "张三"},
        {"userid": "wmCUST1", "type": 2, "name": "阿峰"},
    ]
    bot.callback(chat_xml("add_member", ["zhangsan", "wmCUST1"], version="v1"))
    # WeCom lists neither once they left: zhangsan is known as staff by the join.
    mock.members[CHAT] = []
    assert bot.callback(chat_xml("del_member", ["zhangsan", "wmCUST1"], version="v2")).status_code == 200
    assert bot.runtime.stats()["events_in"] == 2  # wmCUST1's join and leave
    assert f"staff zhangsan left customer group {CHAT}; not a customer, not fed" in bot.log.getvalue()
    assert bot.parked() == []
