"""WeCom callbacks as sopdsl events: the documented XML shapes in, the runtime's events out."""

from __future__ import annotations

import pytest

from sopdsl.live.wecom.events import CallbackFormatError, map_callback, parse

HEAD = (
    "<ToUserName><![CDATA[ww55ca070cb9b7eb22]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
    "<CreateTime>1403610513</CreateTime><MsgType><![CDATA[event]]></MsgType>"
)


def chat(change: str, extra: str = "") -> str:
    return (
        f"<xml>{HEAD}<Event><![CDATA[change_external_chat]]></Event>"
        f"<ChatId><![CDATA[wrx7HUARsKwGRaQBVKPBTcEyzdHA4HrQ]]></ChatId><ChangeType><![CDATA[{change}]]></ChangeType>{extra}</xml>"
    )


def contact(change: str, extra: str = "") -> str:
    return (
        f"<xml>{HEAD}<Event><![CDATA[change_external_contact]]></Event><ChangeType><![CDATA[{change}]]></ChangeType>"
        f"<UserID><![CDATA[zhangsan]]></UserID><ExternalUserID><![CDATA[woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA]]></ExternalUserID>{extra}</xml>"
    )


def test_add_member_is_a_join_per_member_with_the_join_scene_as_channel() -> None:
    xml = chat(
        "update",
        "<UpdateDetail><![CDATA[add_member]]></UpdateDetail><JoinScene>1</JoinScene><QuitScene>0</QuitScene>"
        "<MemChangeCnt>2</MemChangeCnt><MemChangeList><Item>Jack</Item><Item>Rose</Item></MemChangeList>"
        "<LastMemVer>9c3f97c2ada667dfb5f6d03308d963e1</LastMemVer><CurMemVer>71217227bbd112ecfe3a49c482195cb4</CurMemVer>",
    )
    events = map_callback(parse(xml), {}).events
    assert [(e["kind"], e["member"], e["group"], e["data"], e["time"]) for e in events] == [
        ("join", "Jack", "wrx7HUARsKwGRaQBVKPBTcEyzdHA4HrQ", {"channel": "invite_link"}, 1403610513),
        ("join", "Rose", "wrx7HUARsKwGRaQBVKPBTcEyzdHA4HrQ", {"channel": "invite_link"}, 1403610513),
    ]
    # The id names the member-list version: the same callback delivered again has the same ids.
    assert (
        events[0]["id"] == "wecom:wrx7HUARsKwGRaQBVKPBTcEyzdHA4HrQ:71217227bbd112ecfe3a49c482195cb4:join:Jack"
    )


def test_del_member_is_a_leave_saying_whether_they_were_removed() -> None:
    xml = chat(
        "update",
        "<UpdateDetail><![CDATA[del_member]]></UpdateDetail><QuitScene>1</QuitScene>"
        "<MemChangeList><![CDATA[Jack]]></MemChangeList><CurMemVer>v2</CurMemVer>",  # the older comma-separated form
    )
    [event] = map_callback(parse(xml), {}).events
    assert (event["kind"], event["member"], event["data"]) == ("leave", "Jack", {"quit": "removed"})


def test_dismiss_is_a_custom_event_only_when_the_playbooks_declare_it() -> None:
    assert map_callback(parse(chat("dismiss")), {}).ignored == [
        "wecom_group_dismissed: the playbooks declare no such event"
    ]
    [event] = map_callback(parse(chat("dismiss")), {"wecom_group_dismissed": {}}).events
    assert (event["kind"], event["name"], event["group"]) == (
        "custom",
        "wecom_group_dismissed",
        "wrx7HUARsKwGRaQBVKPBTcEyzdHA4HrQ",
    )
    assert "member" not in event


def test_contact_added_carries_its_owner_and_welcome_code() -> None:
    xml = contact(
        "add_external_contact",
        "<State><![CDATA[teststate]]></State><WelcomeCode><![CDATA[WELCOMECODE]]></WelcomeCode>",
    )
    mapped = map_callback(parse(xml), {"wecom_contact_added": {"owner": "text", "state": "text"}})
    [event] = mapped.events
    assert event["member"] == "woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA"
    assert event["data"] == {"owner": "zhangsan", "state": "teststate"}
    assert mapped.contact is not None and (mapped.contact.owner, mapped.contact.welcome_code) == (
        "zhangsan",
        "WELCOMECODE",
    )


def test_contact_deleted_and_follow_user_deleted_have_their_own_events() -> None:
    declared = {"wecom_contact_deleted": {"source": "text"}, "wecom_contact_lost": {"owner": "text"}}
    deleted = map_callback(
        parse(contact("del_external_contact", "<Source><![CDATA[DELETE_BY_TRANSFER]]></Source>")), declared
    )
    lost = map_callback(parse(contact("del_follow_user")), declared)
    assert deleted.events[0]["data"] == {"source": "DELETE_BY_TRANSFER"}
    assert (lost.events[0]["name"], lost.events[0]["data"]) == ("wecom_contact_lost", {"owner": "zhangsan"})


def test_a_declared_field_wecom_does_not_send_is_said_not_guessed() -> None:
    mapped = map_callback(parse(contact("add_external_contact")), {"wecom_contact_added": {"phone": "text"}})
    assert mapped.events == []
    assert "field 'phone', which WeCom does not send" in mapped.ignored[0]


def test_other_changes_are_ignored_with_a_reason() -> None:
    assert (
        "no sopdsl event"
        in map_callback(parse(chat("update", "<UpdateDetail>change_name</UpdateDetail>")), {}).ignored[0]
    )
    assert "no sopdsl event" in map_callback(parse(contact("edit_external_contact")), {}).ignored[0]
    assert "not a customer" in map_callback(parse(f"<xml>{HEAD}<Event>click</Event></xml>"), {}).ignored[0]


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        ("<xml><Event>change_external_chat</Event><CreateTime>1</CreateTime></xml>", "no ChatId"),
        (
            "<xml><Event>change_external_chat</Event><ChatId>c</ChatId><CreateTime>soon</CreateTime></xml>",
            "not a number",
        ),
        ("<notxml", "not XML"),
        ("<root/>", "no <xml> element"),
    ],
)
def test_malformed_callbacks_say_what_is_wrong(xml: str, message: str) -> None:
    with pytest.raises(CallbackFormatError, match=message):
        map_callback(parse(xml), {})


def test_entities_are_refused() -> None:
    bomb = '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">]><xml><Event>&a;</Event></xml>'
    with pytest.raises(CallbackFormatError):
        parse(bomb)
