"""The WeCom executor against the local mock server: which API each action goes to, with what, and
what the runtime's outbox does when WeCom refuses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from wecom_mock import CORP_ID, SECRET, MockWeCom, serving

import sopdsl
from sopdsl.engine.actions import Action
from sopdsl.lang import WECOM_BYTES
from sopdsl.live.clock import ManualClock
from sopdsl.live.retry import RetryPolicy
from sopdsl.live.runtime import Runtime
from sopdsl.live.store import PARKED, PENDING
from sopdsl.live.wecom.api import WeComApi, WeComError
from sopdsl.live.wecom.contacts import WELCOME_WINDOW, Contacts
from sopdsl.live.wecom.events import Contact
from sopdsl.live.wecom.executor import WeComExecutor

CHAT = "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def mock() -> MockWeCom:
    return MockWeCom(
        contacts={"wmCUST1": ["zhangsan"], "wmCUST2": ["lisi", "zhangsan"]},
        groups={CHAT: "wangwu"},
        tag_ids={"etCORE", "etVIP"},
        welcome_codes={"CODE1"},
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def executor(mock: MockWeCom, clock: Clock, tmp_path: Path) -> Iterator[WeComExecutor]:
    with serving(mock) as url:
        api = WeComApi(CORP_ID, SECRET, base_url=url, sleep=lambda s: None)
        yield WeComExecutor(
            api,
            contacts=Contacts(clock=clock),
            tags={"core": "etCORE", "vip": "etVIP"},
            agent_id=1000002,
            root=tmp_path,
            clock=clock,
        )
        api.close()


def send(target: str, *, member: str | None = None, group: str | None = None, **detail: object) -> Action:
    return Action(
        0,
        "send",
        "p",
        "k",
        member=member,
        group=group,
        target=target,
        detail={"template": "welcome", "text": "欢迎！", **detail},
    )


def test_a_send_within_20_seconds_of_the_add_callback_is_the_welcome_message(
    executor: WeComExecutor, mock: MockWeCom, clock: Clock
) -> None:
    executor.contacts.learn(Contact("wmCUST1", "zhangsan", "CODE1", 0))
    clock.now += WELCOME_WINDOW - 1
    executor(send("member", member="wmCUST1"), "key1")
    assert mock.bodies("externalcontact/send_welcome_msg") == [
        {"welcome_code": "CODE1", "text": {"content": "欢迎！"}}
    ]


def test_a_send_after_the_welcome_window_is_a_mass_send_from_the_owner(
    executor: WeComExecutor, mock: MockWeCom, clock: Clock
) -> None:
    executor.contacts.learn(Contact("wmCUST1", "zhangsan", "CODE1", 0))
    clock.now += WELCOME_WINDOW + 1
    executor(send("member", member="wmCUST1"), "key1")
    assert mock.bodies("externalcontact/send_welcome_msg") == []
    assert mock.bodies("externalcontact/add_msg_template") == [
        {
            "chat_type": "single",
            "external_userid": ["wmCUST1"],
            "sender": "zhangsan",
            "text": {"content": "欢迎！"},
        }
    ]
    assert executor.sent[0][0] == "key1" and executor.sent[0][1].startswith("msg")  # staff confirm it


def test_an_owner_not_learned_from_a_callback_is_the_earliest_follow_user(
    executor: WeComExecutor, mock: MockWeCom
) -> None:
    executor(send("member", member="wmCUST2"), "key1")
    assert mock.bodies("externalcontact/get") == [{"external_userid": "wmCUST2"}]
    assert mock.bodies("externalcontact/add_msg_template")[0]["sender"] == "lisi"
    executor(send("member", member="wmCUST2"), "key2")
    assert len(mock.bodies("externalcontact/get")) == 1  # remembered


def test_a_customer_the_owner_cannot_reach_fails(executor: WeComExecutor, mock: MockWeCom) -> None:
    executor.contacts.remember_owner("wmCUST1", "lisi")  # not lisi's contact: WeCom lists it in fail_list
    with pytest.raises(WeComError, match="fail_list") as caught:
        executor(send("member", member="wmCUST1"), "key1")
    assert caught.value.permanent


def test_a_group_send_is_a_mass_send_from_the_groups_owner(executor: WeComExecutor, mock: MockWeCom) -> None:
    executor(send("group", group=CHAT), "key1")
    assert mock.bodies("externalcontact/groupchat/get") == [{"chat_id": CHAT, "need_name": 0}]
    assert mock.bodies("externalcontact/add_msg_template") == [
        {"chat_type": "group", "chat_id_list": [CHAT], "sender": "wangwu", "text": {"content": "欢迎！"}}
    ]


def test_a_send_to_the_operator_is_an_app_message(executor: WeComExecutor, mock: MockWeCom) -> None:
    executor(send("operator", group=CHAT, operator="xiaomei"), "key1")
    assert mock.bodies("message/send") == [
        {"touser": "xiaomei", "msgtype": "text", "agentid": 1000002, "text": {"content": "欢迎！"}}
    ]


def test_a_long_send_to_the_operator_is_cut_within_what_wecom_keeps_as_a_task_is(
    executor: WeComExecutor, mock: MockWeCom
) -> None:
    """WeCom cuts an app message at 2,048 bytes without a sign: cut here at a whole character,
    with "…", as a task's text is (the checker warns of it, SOP208)."""
    text = "群里今天有人发广告，请处理：" + "链接" * 700 + "。末尾"
    executor(send("operator", group=CHAT, operator="xiaomei", text=text), "key1")
    content = mock.bodies("message/send")[0]["text"]["content"]
    assert len(content.encode()) <= WECOM_BYTES["app text"] == 2048
    assert content.endswith("…") and text.startswith(content[:-1]) and len(content.encode()) > 2040
    executor(send("operator", group=CHAT, operator="xiaomei", text="短消息"), "key2")
    assert mock.bodies("message/send")[1]["text"]["content"] == "短消息"  # within the limit: as it is


def test_tags_are_marked_by_the_owner_with_the_mapped_tag_ids(
    executor: WeComExecutor, mock: MockWeCom
) -> None:
    executor(Action(0, "tag", "p", "k", member="wmCUST1", detail={"tags": ["core", "vip"]}), "key1")
    executor(Action(0, "untag", "p", "k", member="wmCUST1", detail={"tags": ["vip"]}), "key2")
    assert mock.bodies("externalcontact/mark_tag") == [
        {"userid": "zhangsan", "external_userid": "wmCUST1", "add_tag": ["etCORE", "etVIP"]},
        {"userid": "zhangsan", "external_userid": "wmCUST1", "remove_tag": ["etVIP"]},
    ]


def test_a_tag_without_a_wecom_id_fails_before_any_call(executor: WeComExecutor, mock: MockWeCom) -> None:
    with pytest.raises(WeComError, match="no WeCom tag id for 'koc'"):
        executor(Action(0, "tag", "p", "k", member="wmCUST1", detail={"tags": ["koc"]}), "key1")
    assert mock.calls == []


def test_attachments_by_path_are_uploaded_once_and_sent_typed(
    executor: WeComExecutor, mock: MockWeCom, tmp_path: Path
) -> None:
    (tmp_path / "rules.png").write_bytes(b"\x89PNG rules")
    attachments = [
        {"type": "image", "path": "rules.png"},
        {
            "type": "link",
            "title": "群规",
            "url": "https://example.com/rules",
            "picurl": "https://example.com/c.png",
        },
    ]
    executor(send("group", group=CHAT, attachments=attachments), "key1")
    executor(send("group", group=CHAT, attachments=attachments), "key2")
    assert mock.bodies("media/upload") == [{"type": "image", "size": 10}]
    sent = mock.bodies("externalcontact/add_msg_template")
    assert sent[0]["attachments"] == sent[1]["attachments"]
    image, link = sent[0]["attachments"]
    assert image["msgtype"] == "image" and image["image"]["media_id"].startswith("MEDIA_")
    assert link == {
        "msgtype": "link",
        "link": {"title": "群规", "url": "https://example.com/rules", "picurl": "https://example.com/c.png"},
    }


def test_a_missing_attachment_file_fails_with_its_path(executor: WeComExecutor) -> None:
    with pytest.raises(WeComError, match=r"cannot read the attachment poster\.png"):
        executor(send("group", group=CHAT, attachments=[{"type": "image", "path": "poster.png"}]), "key1")


def test_kick_is_not_carried_out(executor: WeComExecutor) -> None:
    with pytest.raises(WeComError, match="does not carry out 'kick'"):
        executor(Action(0, "kick", "p", "k", member="wmCUST1", group=CHAT), "key1")


PLAYBOOK = """
timezone "Asia/Shanghai"
template welcome = "欢迎！"
playbook greet "欢迎" {
    on member joins
    do {
        send welcome to member
        tag member "core"
    }
}
"""


def test_the_outbox_sends_a_rate_limited_action_later_and_parks_a_refused_one(mock: MockWeCom) -> None:
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(PLAYBOOK, "greet.sop")))
    with serving(mock) as url:
        api = WeComApi(CORP_ID, SECRET, base_url=url, sleep=lambda s: None, policy=RetryPolicy(2, 1.0, 1.0))
        executor = WeComExecutor(api, tags={"core": "etCORE"})
        clock = ManualClock(1_773_020_000)
        runtime = Runtime(plan, "memory://", executors={"send": executor, "tag": executor}, clock=clock)
        mock.fail_next["externalcontact/add_msg_template"] = [45009, 45009]  # both in-call attempts
        mock.fail_next["externalcontact/mark_tag"] = [48002]
        runtime.feed({"kind": "join", "member": "wmCUST1", "group": CHAT})
        runtime.tick()
        rows = {r.kind: r for r in runtime.store.outbox()}
        assert rows["send"].status == PENDING and rows["send"].next_at > clock.now()  # later, by the policy
        assert rows["tag"].status == PENDING  # a member's actions go out in order
        clock.set(rows["send"].next_at)
        runtime.tick()
        rows = {r.kind: r for r in runtime.store.outbox()}
        assert rows["send"].status == "done"
        assert rows["tag"].status == PARKED and "errcode 48002" in str(rows["tag"].error)
        runtime.close()
        api.close()


def test_a_templates_attachments_reach_wecom_as_the_engine_decides_them(
    executor: WeComExecutor, mock: MockWeCom, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The send the engine decides for tests/engine_cases/attachments.sop, carried out as is:
    its files uploaded from the project folder, each card with WeCom's own fields."""
    import shutil

    from sopdsl.dryrun.fixtures import load_fixture
    from sopdsl.dryrun.simulate import simulate

    cases = Path(__file__).parents[2] / "engine_cases"
    shutil.copytree(cases / "media", tmp_path / "media")
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load(str(cases / "attachments.sop"))))
    fixture, _ = load_fixture(cases / "attachments.yaml", "attachments.yaml")
    welcome = next(a for a in simulate(plan, fixture).actions if a.target == "group")
    assert welcome.detail["mentions"] == ["new1"]
    with caplog.at_level("INFO", logger="sopdsl.wecom"):
        executor(Action(0, "send", "p", "k", group=CHAT, target="group", detail=welcome.detail), "key1")
    assert "goes without its @-mentions" in caplog.text
    # The poster is uploaded once though two attachments use it; the rules once, as a file.
    assert mock.bodies("media/upload") == [
        {"type": "image", "size": (tmp_path / "media" / "class.png").stat().st_size},
        {"type": "file", "size": (tmp_path / "media" / "rules.pdf").stat().st_size},
    ]
    (sent,) = mock.bodies("externalcontact/add_msg_template")
    image, file, link, mini = sent["attachments"]
    assert image["msgtype"] == "image" and image["image"]["media_id"].startswith("MEDIA_")
    assert file["msgtype"] == "file" and file["file"]["media_id"].startswith("MEDIA_")
    assert link == {
        "msgtype": "link",
        "link": {
            "title": "课程回放",
            "url": "https://example.com/replay",
            "desc": "上周直播回放",
            "picurl": "https://example.com/cover.png",
        },
    }
    assert mini == {
        "msgtype": "miniprogram",
        "miniprogram": {
            "title": "积分商城",
            "appid": "wx8bd80126147dfAAA",
            "page": "pages/mall/index",
            "pic_media_id": image["image"]["media_id"],
        },
    }


def test_an_attachment_by_media_id_is_sent_without_an_upload(
    executor: WeComExecutor, mock: MockWeCom
) -> None:
    executor.contacts.remember_owner("wmCUST1", "zhangsan")
    detail: dict[str, Any] = {"attachments": [{"type": "image", "media_id": "3a8asd892asd8asd"}]}
    executor(send("member", member="wmCUST1", **detail), "key1")
    assert mock.bodies("media/upload") == []
    (sent,) = mock.bodies("externalcontact/add_msg_template")
    assert sent["attachments"] == [{"msgtype": "image", "image": {"media_id": "3a8asd892asd8asd"}}]


def test_a_mass_send_whose_answer_is_lost_is_parked_once_saying_where_to_look(mock: MockWeCom) -> None:
    """WeCom queued the mass send, but its answer timed out: staff must see one pending mass send,
    not two, and the action says to check the admin console for it."""
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(PLAYBOOK, "greet.sop")))
    with serving(mock, late={"externalcontact/add_msg_template": 0.6}) as url:
        api = WeComApi(CORP_ID, SECRET, base_url=url, timeout=0.2, sleep=lambda s: None)
        executor = WeComExecutor(api, tags={"core": "etCORE"})
        clock = ManualClock(1_773_020_000)
        runtime = Runtime(plan, "memory://", executors={"send": executor, "tag": executor}, clock=clock)
        runtime.feed({"kind": "join", "member": "wmCUST1", "group": CHAT})
        runtime.tick()
        for _ in range(6):  # the outbox's retries, had it any
            clock.advance(3600)
            runtime.tick()
        rows = {r.kind: r for r in runtime.store.outbox()}
        error = str(rows["send"].error)
        assert rows["send"].status == PARKED and rows["send"].attempts == 1
        assert "did not answer the mass send to wmCUST1 from zhangsan (ReadTimeout)" in error
        assert "群发记录" in error and "not sent again" in error and "requeue" in error
        assert runtime.stats()["failures"] == 1 and runtime.stats()["parked"] == 1
        assert rows["tag"].status == "done"  # the member's next action goes on
        runtime.close()
        api.close()
    assert len(mock.bodies("externalcontact/add_msg_template")) == 1  # one mass send to confirm


def test_a_welcome_message_whose_answer_is_lost_does_not_go_again_as_a_mass_send(
    mock: MockWeCom, clock: Clock
) -> None:
    with serving(mock, late={"externalcontact/send_welcome_msg": 0.6}) as url:
        api = WeComApi(CORP_ID, SECRET, base_url=url, timeout=0.2, sleep=lambda s: None)
        executor = WeComExecutor(api, contacts=Contacts(clock=clock), clock=clock)
        executor.contacts.learn(Contact("wmCUST1", "zhangsan", "CODE1", 0))
        with pytest.raises(WeComError) as caught:
            executor(send("member", member="wmCUST1"), "key1")
        api.close()
    assert caught.value.permanent and "welcome message to wmCUST1" in str(caught.value)
    assert len(mock.bodies("externalcontact/send_welcome_msg")) == 1
    assert mock.bodies("externalcontact/add_msg_template") == []


def test_every_call_the_executor_makes_is_listed_as_repeatable_or_not(
    executor: WeComExecutor, mock: MockWeCom, tmp_path: Path
) -> None:
    from sopdsl.live.wecom.api import REPEATABLE

    (tmp_path / "a.png").write_bytes(b"png")
    executor.contacts.learn(Contact("wmCUST1", "zhangsan", "CODE1", 0))
    executor(send("member", member="wmCUST1"), "k1")
    executor(send("member", member="wmCUST2", attachments=[{"type": "image", "path": "a.png"}]), "k2")
    executor(send("group", group=CHAT), "k3")
    executor(send("operator", group=CHAT, operator="xiaomei"), "k4")
    executor(Action(0, "tag", "p", "k", member="wmCUST1", detail={"tags": ["core"]}), "k5")
    executor(Action(0, "task", "p", "k", member="wmCUST2", detail={"text": "t", "to": "owner"}), "k6")
    assert set(mock.paths()) <= REPEATABLE.keys()


def test_a_mass_send_over_wecoms_4000_bytes_fails_naming_the_template_and_the_limit(
    executor: WeComExecutor, mock: MockWeCom
) -> None:
    """1,400 Chinese characters are 4,200 bytes in UTF-8: WeCom would refuse them with a bare errcode."""
    executor.contacts.remember_owner("wmCUST1", "zhangsan")
    executor(send("member", member="wmCUST1", text="欢" * 1333), "key1")  # 3,999 bytes: goes
    with pytest.raises(WeComError) as caught:
        executor(send("member", member="wmCUST1", text="欢" * 1400), "key2")
    assert caught.value.permanent
    assert str(caught.value) == (
        "send welcome: its text is 4,200 bytes in UTF-8 (1,400 characters); WeCom takes at most 4,000 "
        "bytes and would refuse the message: shorten template 'welcome' (a Chinese character is 3 bytes)"
    )
    with pytest.raises(WeComError, match="its text is 4,200 bytes"):
        executor(send("group", group=CHAT, text="欢" * 1400), "key3")
    assert len(mock.bodies("externalcontact/add_msg_template")) == 1


def test_a_link_cards_title_over_wecoms_128_bytes_fails_before_any_upload(
    executor: WeComExecutor, mock: MockWeCom
) -> None:
    executor.contacts.remember_owner("wmCUST1", "zhangsan")
    card = {"type": "link", "title": "课程回放" * 11, "url": "https://example.com/r"}  # 132 bytes
    with pytest.raises(WeComError, match=r"its link title is 132 bytes .* at most 128 bytes .* 'welcome'"):
        executor(
            send("member", member="wmCUST1", attachments=[{"type": "image", "path": "a.png"}, card]), "k"
        )
    assert mock.paths() == []
