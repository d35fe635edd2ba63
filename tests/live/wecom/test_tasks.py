"""Staff tasks on WeCom: a `task` or `escalate` action is an app message (`message/send`) to its
assignee's userid, with the task's text, deadline, the message staff are asked to send and its
attachments; the engine's own tasks reach WeCom so through the runtime's outbox; and an
executors file that routes tasks (or sends to the operator) to a WeCom app without `agent_id` is
refused at load time."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from wecom_mock import CORP_ID, SECRET, MockWeCom, serving

import sopdsl
from sopdsl.cli import EXIT_FOUND
from sopdsl.engine.actions import Action
from sopdsl.engine.records import GroupRecord, MemberRecord
from sopdsl.live.clock import ManualClock
from sopdsl.live.executors_config import ExecutorConfigError, parse_executors
from sopdsl.live.reload import read_plan, reload_playbooks
from sopdsl.live.runtime import Runtime
from sopdsl.live.wecom.api import WeComApi, WeComError
from sopdsl.live.wecom.executor import WeComExecutor
from sopdsl.live.wecom.tasks import TEXT_LIMIT
from sopdsl.plan import timeutil

CHAT = "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA"
ROOT = Path(__file__).parents[3]
C1 = ROOT / "playbooks" / "C1_prune_silent.sop"  # sends to the operator


@pytest.fixture
def mock() -> MockWeCom:
    return MockWeCom(
        contacts={"wmCUST1": ["zhangsan"]},
        groups={CHAT: "wangwu"},
        users={"zhangsan", "wangwu", "xiaomei", "chenzg"},
    )


@pytest.fixture
def executor(mock: MockWeCom) -> Iterator[WeComExecutor]:
    with serving(mock) as url:
        api = WeComApi(CORP_ID, SECRET, base_url=url, sleep=lambda s: None)
        yield WeComExecutor(api, agent_id=1000002, userids={"陈主管": "chenzg"})
        api.close()


def task(kind: str = "task", **detail: object) -> Action:
    given = {"text": "请私聊致歉", "to": "owner", "due": "2026-03-10T09:00:00+08:00"} | detail
    return Action(
        0, kind, "review", "k1", member="wmCUST1", group=CHAT, target=str(given["to"]), detail=given
    )


def test_a_task_is_an_app_message_to_its_assignee_with_the_message_to_send(
    executor: WeComExecutor, mock: MockWeCom
) -> None:
    link = {"type": "link", "title": "售后说明", "url": "https://example.com/after-sale"}
    executor(task(assignee="zhangsan", message="抱歉给你添麻烦了", attachments=[link]), "shard/k1")
    (sent,) = mock.bodies("message/send")
    assert sent["touser"] == "zhangsan" and sent["agentid"] == 1000002 and sent["msgtype"] == "text"
    assert sent["enable_duplicate_check"] == 1  # an outbox retry does not message staff twice
    assert sent["text"]["content"].splitlines() == [
        "【待办】请私聊致歉",
        "截止：2026-03-10 09:00 (+08:00)",
        f"对象：客户 wmCUST1，群 {CHAT}",
        "请发送：",
        "抱歉给你添麻烦了",
        "附件：链接「售后说明」 https://example.com/after-sale",
        "任务：shard/k1",
    ]


def test_an_owner_sopdsl_does_not_know_is_the_contacts_owner_in_wecom(
    executor: WeComExecutor, mock: MockWeCom
) -> None:
    executor(task(assignee=None), "k1")
    assert mock.bodies("externalcontact/get") == [{"external_userid": "wmCUST1"}]
    assert [b["touser"] for b in mock.bodies("message/send")] == ["zhangsan"]


def test_a_group_task_without_an_operator_goes_to_the_customer_groups_owner(
    executor: WeComExecutor, mock: MockWeCom
) -> None:
    executor(task(to="operator", assignee=None, text="手动移出 wmCUST1", instead_of="kick"), "k1")
    assert [b["touser"] for b in mock.bodies("message/send")] == ["wangwu"]


def test_an_escalation_goes_to_the_chief_by_the_userids_map(executor: WeComExecutor, mock: MockWeCom) -> None:
    executor(task("escalate", assignee="陈主管", undone_by="zhangsan", task="k1"), "k1:escalate")
    (sent,) = mock.bodies("message/send")
    assert sent["touser"] == "chenzg"
    lines = sent["text"]["content"].splitlines()
    assert lines[:2] == ["【逾期待办】请私聊致歉", "原负责人：zhangsan（截止时仍未完成）"]
    assert lines[-1] == "任务：k1"  # the task staff know, not the escalation's own key


def test_a_staff_name_wecom_does_not_know_fails_saying_to_map_it(
    executor: WeComExecutor, mock: MockWeCom
) -> None:
    with pytest.raises(WeComError, match="小美 is not a userid the app can reach") as caught:
        executor(task(assignee="小美"), "k1")
    assert caught.value.permanent  # parked at once: a retry cannot help


def test_a_long_task_is_cut_within_wecoms_limit_keeping_its_key(
    executor: WeComExecutor, mock: MockWeCom
) -> None:
    executor(task(assignee="zhangsan", message="很长的话" * 400), "k1")
    content = mock.bodies("message/send")[0]["text"]["content"]
    assert len(content.encode()) <= TEXT_LIMIT and content.endswith("…\n任务：k1")


PLAYBOOK = textwrap.dedent(
    """
    timezone "Asia/Shanghai"
    policy { escalate tasks to "陈主管" }
    template apology = "{{ member.name }}，抱歉给你添麻烦了"
    playbook review "差评回访" {
        on member is reported
        do {
            assign "{{ member.name }} 差评，请私聊致歉" to owner within 1 hours with message apology then {
                tag member "handled"
            }
        }
    }
    """
)


def test_the_engines_task_and_its_escalation_reach_wecom_through_the_outbox(mock: MockWeCom) -> None:
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(PLAYBOOK, "review.sop")))
    start = 1_773_020_400  # 2026-03-09 09:40 in Shanghai
    with serving(mock) as url:
        api = WeComApi(CORP_ID, SECRET, base_url=url, sleep=lambda s: None)
        wecom = WeComExecutor(api, agent_id=1000002, userids={"陈主管": "chenzg"})
        clock = ManualClock(start)
        runtime = Runtime(plan, "memory://", executors={"task": wecom, "escalate": wecom}, clock=clock)
        runtime.register([GroupRecord(CHAT), MemberRecord("wmCUST1", name="阿明", groups=(CHAT,))])
        runtime.feed({"kind": "report", "member": "wmCUST1", "group": CHAT})
        runtime.tick()
        clock.set(start + 3600 + 1)
        runtime.tick()
        assert {r.kind: r.status for r in runtime.store.outbox()} == {"task": "done", "escalate": "done"}
        runtime.close()
        api.close()
    first, second = mock.bodies("message/send")
    due = timeutil.aware(start + 3600, timeutil.zone("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")
    assert first["touser"] == "zhangsan"  # no owner registered: the contact's owner in WeCom
    assert first["text"]["content"].splitlines()[:5] == [
        "【待办】阿明 差评，请私聊致歉",
        f"截止：{due} (+08:00)",
        f"对象：客户 wmCUST1，群 {CHAT}",
        "请发送：",
        "阿明，抱歉给你添麻烦了",
    ]
    assert second["touser"] == "chenzg" and second["text"]["content"].startswith("【逾期待办】阿明 差评")


ENV = {"WECOM_CORPID": CORP_ID, "WECOM_SECRET": SECRET}


def test_tasks_routed_to_wecom_need_agent_id_said_at_load_time() -> None:
    text = "task: wecom\nescalate: wecom\nwecom: {corpid_env: WECOM_CORPID, secret_env: WECOM_SECRET}\n"
    with pytest.raises(ExecutorConfigError) as caught:
        parse_executors(text, "ex.yaml", zone=timeutil.zone("UTC"), environ=ENV)
    said = str(caught.value)
    assert "ex.yaml:1:1: error: task: wecom sends each staff task to its assignee as an app message" in said
    assert "ex.yaml:2:1: error: escalate: wecom" in said and "set agent_id" in said
    configured = text.replace("SECRET}", "SECRET, agent_id: 1000002, userids: {陈主管: chenzg}}")
    executors = parse_executors(configured, "ex.yaml", zone=timeutil.zone("UTC"), environ=ENV)
    wecom = executors["task"]
    assert isinstance(wecom, WeComExecutor) and executors["escalate"] is wecom
    assert wecom.userids == {"陈主管": "chenzg"}
    wecom.api.close()


def test_sends_to_the_operator_routed_to_wecom_need_agent_id_said_at_load_time(tmp_path: Path) -> None:
    """C1 and T2 send to the operator: `send: wecom` without agent_id is refused before anything
    runs, naming the executors file's line and the playbooks' sends, not failed at run time."""
    executors = tmp_path / "ex.yaml"
    executors.write_text("send: wecom\nwecom: {corpid_env: WECOM_CORPID, secret_env: WECOM_SECRET}\n")
    sops = [str(ROOT / "playbooks" / name) for name in ("C1_prune_silent.sop", "T2_daily_figures.sop")]
    run = [
        sys.executable,
        "-m",
        "sopdsl",
        "run",
        *sops,
        "--store",
        "memory://",
        "--executors",
        str(executors),
    ]
    # A refused file ends the command at once; run without a timeout, a service would be left serving.
    result = subprocess.run(
        [*run, "--port", "0", "--insecure-no-auth"],
        env={**os.environ, **ENV},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )
    assert result.returncode == EXIT_FOUND, result.stderr
    said = result.stderr
    assert (
        f"{executors}:1:1: error: send: the playbooks send to the operator (at C1_prune_silent.sop:23 and"
        in said
    )
    assert "1 more), which wecom does as an app message: set agent_id" in said

    # Sends to members and groups need no app: the same file serves a plan without operator sends.
    plain = parse_executors(executors.read_text(), "ex.yaml", zone=timeutil.zone("UTC"), environ=ENV)
    assert isinstance(plain["send"], WeComExecutor)
    plain["send"].api.close()
    configured = executors.read_text().replace("SECRET}", "SECRET, agent_id: 1000002}")
    sends = ["C1_prune_silent.sop:23"]
    wecom = parse_executors(
        configured, "ex.yaml", zone=timeutil.zone("UTC"), environ=ENV, operator_sends=sends
    )
    assert isinstance(wecom["send"], WeComExecutor) and wecom["send"].agent_id == 1000002
    wecom["send"].api.close()


def test_a_reload_to_playbooks_that_send_to_the_operator_is_refused_without_agent_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sop = tmp_path / "ops.sop"
    sop.write_text(C1.read_text(encoding="utf-8").replace("send prune_log to operator", ""), encoding="utf-8")
    shutil.copy(ROOT / "playbooks" / "common.sop", tmp_path)  # what C1 includes
    plan = read_plan((str(sop),)).plan
    assert plan is not None
    api = WeComApi(CORP_ID, SECRET, base_url="http://127.0.0.1:9")
    runtime = Runtime(plan, "memory://", executors={"send": WeComExecutor(api)}, clock=ManualClock(0))
    running = plan.content_hash
    try:
        sop.write_text(C1.read_text(encoding="utf-8"), encoding="utf-8")
        reload_playbooks(runtime, (str(sop),))
        err = capsys.readouterr().err
        assert f"reload refused (still running plan {running[:12]}): send: the playbooks send" in err
        assert "(at ops.sop:23), which wecom does as an app message: set agent_id" in err
        assert runtime.plan.content_hash == running
    finally:
        runtime.close()
        api.close()
