"""The `wecom` table of an executors file: what it builds, and each mistake at its line."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from wecom_mock import verification_query

from sopdsl.live.executors_config import ExecutorConfigError, parse_executors
from sopdsl.live.wecom.callback import WeComCallback
from sopdsl.live.wecom.executor import WeComExecutor
from sopdsl.live.wecom.settings import receivers
from sopdsl.plan import timeutil

ROOT = Path(__file__).resolve().parents[3]
ZONE = timeutil.zone("Asia/Shanghai")
ENV = {
    "WECOM_CORPID": "ww1234567890abcdef",  # the mock's, so its callback requests decrypt here
    "WECOM_SECRET": "contact-secret-0123456789",
    "WECOM_CALLBACK_TOKEN": "QDG6eK",
    "WECOM_CALLBACK_AES_KEY": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
}
GOOD = """\
send: wecom
tag: wecom
untag: wecom
wecom:
  corpid_env: WECOM_CORPID
  secret_env: WECOM_SECRET
  callback_token_env: WECOM_CALLBACK_TOKEN
  callback_aes_key_env: WECOM_CALLBACK_AES_KEY
  tags: {core: etCORE}
"""


def test_one_wecom_executor_serves_its_kinds_and_brings_its_callback() -> None:
    executors = parse_executors(GOOD, "ex.yaml", zone=ZONE, environ=ENV)
    wecom = executors["send"]
    assert isinstance(wecom, WeComExecutor)
    assert executors["tag"] is wecom and executors["untag"] is wecom
    assert wecom.tags == {"core": "etCORE"}
    assert not isinstance(executors["kick"], WeComExecutor)  # logged, as kinds not listed are
    [callback] = receivers(executors.values())
    assert isinstance(callback, WeComCallback) and callback.contacts is wecom.contacts
    wecom.api.close()


def test_without_callback_settings_there_is_no_receiver() -> None:
    text = "send: wecom\nwecom: {corpid_env: WECOM_CORPID, secret_env: WECOM_SECRET}\n"
    executors = parse_executors(text, "ex.yaml", zone=ZONE, environ=ENV)
    assert receivers(executors.values()) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "kick: wecom\nwecom: {corpid_env: WECOM_CORPID, secret_env: WECOM_SECRET}\n",
            "ex.yaml:1:1: error: kick: WeCom's API cannot remove a member from a customer group",
        ),
        (
            "dissolve: wecom\nwecom: {corpid_env: WECOM_CORPID, secret_env: WECOM_SECRET}\n",
            "refused with 48002",
        ),
        ("send: wecom\n", "ex.yaml:1:1: error: send: wecom needs a `wecom` table"),
        (
            "send: wecom\nwecom:\n  corpid_env: WECOM_CORPID\n  secret_env: NOT_SET_ANYWHERE\n",
            "ex.yaml:4:3: error: wecom: the environment variable NOT_SET_ANYWHERE (secret) is not set",
        ),
        (
            "send: wecom\nwecom:\n  corpid_env: WECOM_CORPID\n  secret_env: WECOM_SECRET\n  agentid: 1\n",
            "ex.yaml:5:3: error: wecom: unknown setting 'agentid'",
        ),
        (
            "send: wecom\nwecom:\n  corpid_env: WECOM_CORPID\n  secret_env: WECOM_SECRET\n"
            "  callback_token_env: WECOM_CALLBACK_TOKEN\n",
            "needs both callback_token_env and callback_aes_key_env",
        ),
        (
            "send: wecom\nwecom:\n  corpid_env: WECOM_CORPID\n  secret_env: WECOM_SECRET\n"
            "  callback_token_env: WECOM_CALLBACK_TOKEN\n  callback_aes_key_env: WECOM_SECRET\n",
            "ex.yaml:6:3: error: wecom: WECOM_SECRET: the callback's EncodingAESKey must be the 43 characters",
        ),
        ("send: wecom\nwecom: {corpid_env: WECOM_CORPID}\n", "the table needs `secret_env`"),
        # The credentials under the action: once told of a webhook's missing `webhook` and `secret_env`.
        (
            "send:\n  wecom: {corpid_env: WECOM_CORPID, secret_env: WECOM_SECRET}\n",
            "ex.yaml:2:3: error: send: write `send: wecom`, and the app's credentials once, in a top-level `wecom` table",
        ),
    ],
)
def test_mistakes_are_located(text: str, expected: str) -> None:
    with pytest.raises(ExecutorConfigError) as caught:
        parse_executors(textwrap.dedent(text), "ex.yaml", zone=ZONE, environ=ENV)
    assert expected in str(caught.value)


def test_sopdsl_run_serves_the_callback_of_its_executors_file(tmp_path: Path) -> None:
    executors = tmp_path / "executors.yaml"
    executors.write_text(GOOD, encoding="utf-8")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sopdsl",
            "run",
            str(ROOT / "playbooks" / "J1_welcome_ritual.sop"),
            "--store",
            "memory://",
            "--executors",
            str(executors),
            "--port",
            "0",
            "--insecure-no-auth",
        ],
        env={**os.environ, **ENV},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        found = re.search(r"listening on (http://\S+)", line)
        assert found is not None, line
        answer = httpx.get(f"{found.group(1)}/wecom/callback?{verification_query('echo-42')}", timeout=10)
        assert (answer.status_code, answer.text) == (200, "echo-42")
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    assert process.returncode == 0


def test_without_the_wecom_extra_sends_work_and_a_callback_says_what_to_install() -> None:
    # wechatpy and its xmltodict blocked: `pip install sopdsl` without the extra.
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["wechatpy"] = sys.modules["xmltodict"] = None
        from sopdsl.live.command import run_command
        from sopdsl.live.executors_config import ExecutorConfigError, parse_executors
        from sopdsl.plan import timeutil
        env = {ENV!r}
        zone = timeutil.zone("Asia/Shanghai")
        plain = "send: wecom\\nwecom: {{corpid_env: WECOM_CORPID, secret_env: WECOM_SECRET}}\\n"
        print(type(parse_executors(plain, "ex.yaml", zone=zone, environ=env)["send"]).__name__)
        try:
            parse_executors({GOOD!r}, "ex.yaml", zone=zone, environ=env)
        except ExecutorConfigError as exc:
            print(exc)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "WeComExecutor",
        "ex.yaml:7:3: error: wecom: the WeCom callback decrypts with wechatpy, which is not installed: "
        "pip install 'sopdsl[wecom]'",
    ]


def test_attachment_files_are_found_in_the_media_root_beside_the_executors_file(tmp_path: Path) -> None:
    (tmp_path / "runtime").mkdir()
    config = tmp_path / "runtime" / "executors.yaml"
    text = (
        "send: wecom\nwecom: {corpid_env: WECOM_CORPID, secret_env: WECOM_SECRET, media_root: ../playbooks}\n"
    )
    config.write_text(text, encoding="utf-8")
    executors = parse_executors(text, str(config), zone=ZONE, environ=ENV)
    wecom = executors["send"]
    assert isinstance(wecom, WeComExecutor)
    assert wecom.root.resolve() == (tmp_path / "playbooks").resolve()
    default = parse_executors(
        text.replace(", media_root: ../playbooks", ""), str(config), zone=ZONE, environ=ENV
    )
    assert default["send"].root.resolve() == (tmp_path / "runtime").resolve()  # type: ignore[attr-defined]
    wecom.api.close()
    default["send"].api.close()  # type: ignore[attr-defined]
