"""examples/wecom_bot runs against the local WeCom mock: its callback verifies and decrypts, and a
member joining a customer group is welcomed by J1 through a WeCom mass send from the group's owner."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import httpx
import pytest
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

from sopdsl.live.clock import ManualClock

ROOT = Path(__file__).resolve().parent.parent.parent
BOT = ROOT / "examples" / "wecom_bot"
CHAT = "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA"
DAYTIME = 1_773_021_600  # 2026-03-09 10:00 in Shanghai, outside J1's quiet hours
ENV = {
    "WECOM_CORPID": CORP_ID,
    "WECOM_SECRET": SECRET,
    "WECOM_CALLBACK_TOKEN": CALLBACK_TOKEN,
    "WECOM_CALLBACK_AES_KEY": AES_KEY,
}


def bot_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("wecom_bot", BOT / "bot.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def executors_for(url: str, folder: Path) -> Path:
    """The example's executors file, its API pointed at the mock (the only change)."""
    text = (BOT / "executors.yaml").read_text(encoding="utf-8")
    path = folder / "executors.yaml"
    path.write_text(text + f"  api: {url}\n", encoding="utf-8")
    return path


JOINED = (
    "<xml><ToUserName><![CDATA[ww1234567890abcdef]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
    f"<CreateTime>{DAYTIME}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
    f"<Event><![CDATA[change_external_chat]]></Event><ChatId><![CDATA[{CHAT}]]></ChatId>"
    "<ChangeType><![CDATA[update]]></ChangeType><UpdateDetail><![CDATA[add_member]]></UpdateDetail>"
    "<JoinScene>3</JoinScene><MemChangeCnt>1</MemChangeCnt><MemChangeList><Item>wmAFENG</Item></MemChangeList>"
    "<CurMemVer>v1</CurMemVer></xml>"
)


def test_the_bot_welcomes_a_member_who_joins_a_customer_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mock = MockWeCom(groups={CHAT: "wangwu"})
    bot = bot_module()
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    with serving(mock) as url:
        args = bot.options(
            [
                "--port",
                "0",
                "--group",
                f"{CHAT}=骑友交流1群",
                "--executors",
                str(executors_for(url, tmp_path)),
            ]
        )
        service = bot.make_service(args, clock=ManualClock(DAYTIME))
        service.start()
        try:
            query, body = callback_request(JOINED, nonce="n1", timestamp=DAYTIME)
            answer = httpx.post(f"{service.url}/wecom/callback?{query}", content=body, timeout=10)
            assert answer.status_code == 200
            deadline = time.monotonic() + 20
            while not mock.bodies("externalcontact/add_msg_template") and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            service.stop()
    [sent] = mock.bodies("externalcontact/add_msg_template")
    assert (sent["chat_type"], sent["chat_id_list"], sent["sender"]) == ("group", [CHAT], "wangwu")
    assert "欢迎" in sent["text"]["content"] and "骑友交流1群" in sent["text"]["content"]


def test_the_bot_script_starts_answers_wecoms_url_check_and_stops_on_sigterm(tmp_path: Path) -> None:
    with serving(MockWeCom()) as url:
        process = subprocess.Popen(
            [
                sys.executable,
                str(BOT / "bot.py"),
                "--port",
                "0",
                "--executors",
                str(executors_for(url, tmp_path)),
            ],
            cwd=ROOT,
            env={**os.environ, **ENV},
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        try:
            assert process.stderr is not None
            line = process.stderr.readline()
            assert "listening on http://127.0.0.1:" in line, line
            base = line.split("listening on ")[1].split(",")[0]
            query = verification_query("echo-1616140317")
            answer = httpx.get(f"{base}/wecom/callback?{query}", timeout=10)
            assert (answer.status_code, answer.text) == (200, "echo-1616140317")
        finally:
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=30)
    assert code == 0
