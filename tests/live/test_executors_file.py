"""The executors file (`sopdsl run --executors FILE`, YAML or TOML): each action kind's executor,
and every mistake in it reported at its line when the service starts, never at the first send."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import pytest

from sopdsl.engine.actions import Action
from sopdsl.live.executors_config import ExecutorConfigError, parse_executors
from sopdsl.live.webhook import Webhook
from sopdsl.plan import timeutil

ZONE = timeutil.zone("Asia/Shanghai")
START = 1_773_000_000  # 2026-03-09 04:00 in Shanghai


CONFIG = """\
default: log
send:
  webhook: https://bot.example.com/sopdsl
  secret_env: SOPDSL_TEST_SECRET
  timeout: 3
call.crm_note: log
"""


def test_a_config_file_gives_each_kind_its_executor() -> None:
    out = io.StringIO()
    executors = parse_executors(
        CONFIG,
        "executors.yaml",
        zone=ZONE,
        actions=["crm_note"],
        environ={"SOPDSL_TEST_SECRET": "k"},
        out=out,
    )
    send = executors["send"]
    assert isinstance(send, Webhook)
    assert (send.url, send.secret, send.timeout) == ("https://bot.example.com/sopdsl", b"k", 3.0)
    kick = Action(START, "kick", "prune", "key-1", member="m1", group="g1", detail={"because": "潜水"})
    executors["kick"](kick, "key-1")
    note = Action(START, "call", "p", "key-2", detail={"action": "crm_note", "args": {"level": "高"}})
    executors["crm_note"](note, "key-2")
    assert executors["call"] is executors["kick"]  # other custom actions: the default
    logged = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(x["kind"], x["idempotency_key"]) for x in logged] == [("kick", "key-1"), ("call", "key-2")]
    assert logged[0]["because"] == "潜水" and logged[1]["args"] == {"level": "高"}


def test_every_mistake_in_a_config_file_is_reported_at_its_line() -> None:
    text = textwrap.dedent(
        """\
        sned: log
        send:
          webhook: ftp://example.com
          secret_env: NOT_SET_ANYWHERE
        kick:
          webhook: https://example.com/kick
          secret_env: SOPDSL_TEST_SECRET
          timout: 3
        call.crm_nte: log
        invite: lgo
        """
    )
    with pytest.raises(ExecutorConfigError) as info:
        parse_executors(text, "ex.yaml", zone=ZONE, actions=["crm_note"], environ={"SOPDSL_TEST_SECRET": "k"})
    lines = str(info.value).splitlines()
    assert lines == [
        "ex.yaml:1:1: error: unknown action kind 'sned'; did you mean 'send'?; expected one of send, tag, "
        "untag, kick, grant, invite, task, escalate, call, dissolve, draw, call.NAME for one custom action, or default",
        "ex.yaml:3:3: error: send: webhook must be an http:// or https:// URL, got 'ftp://example.com'",
        "ex.yaml:8:3: error: kick: unknown setting 'timout'; did you mean 'timeout'?; settings: webhook, "
        "secret_env, timeout, retries, backoff, headers, previous_secret_env",
        "ex.yaml:9:1: error: no custom action 'crm_nte' in the plan; did you mean 'crm_note'? (declared: crm_note)",
        "ex.yaml:10:1: error: invite: expected `log`, `wecom` or a table with `webhook` and `secret_env`, got 'lgo'",
    ]


def test_a_key_set_twice_and_a_header_over_two_lines_are_refused_at_start() -> None:
    # YAML kept the later `send`, silently: the webhook was replaced by `log`. A header with a line
    # break was accepted, then every send failed, was retried for minutes, and parked.
    text = textwrap.dedent(
        """\
        send:
          webhook: https://example.com/send
          secret_env: SOPDSL_TEST_SECRET
          headers: {"X-Team": "a\\nb"}
        send: log
        kick: {webhook: https://example.com/kick, secret_env: SOPDSL_TEST_SECRET, retries: 1, retries: 2}
        """
    )
    with pytest.raises(ExecutorConfigError) as info:
        parse_executors(text, "ex.yaml", zone=ZONE, environ={"SOPDSL_TEST_SECRET": "k"})
    assert str(info.value).splitlines() == [
        "ex.yaml:5:1: error: send: set twice (first at line 1)",
        "ex.yaml:6:87: error: kick: retries set twice (first at line 6)",
    ]
    fixed = text.replace("send: log\n", "").replace(", retries: 2", "")
    with pytest.raises(ExecutorConfigError) as info:
        parse_executors(fixed, "ex.yaml", zone=ZONE, environ={"SOPDSL_TEST_SECRET": "k"})
    assert str(info.value) == (
        "ex.yaml:4:3: error: send: headers: header 'X-Team': a header's name and value are one line of text"
    )


def test_a_missing_secret_is_reported_where_its_variable_is_named() -> None:
    with pytest.raises(ExecutorConfigError, match=r"^c.toml:3:1: error: send: the environment variable NOPE"):
        parse_executors(
            '[send]\nwebhook = "https://x.example/h"\nsecret_env = "NOPE"\n', "c.toml", zone=ZONE, environ={}
        )


@pytest.mark.parametrize(
    ("text", "name", "message"),
    [
        ("send: [log\n", "c.yaml", "c.yaml:2:1: error: not valid YAML"),
        ("send = \n", "c.toml", "c.toml:1:8: error: not valid TOML: Invalid value"),
        ("- send\n", "c.yaml", "c.yaml:1:1: error: expected a table of action kinds"),
        ("[send]\nretries = -1\n", "c.toml", "c.toml:1:1: error: send: a webhook needs `webhook`"),
    ],
)
def test_a_malformed_config_file_is_a_located_error(text: str, name: str, message: str) -> None:
    with pytest.raises(ExecutorConfigError) as info:
        parse_executors(text, name, zone=ZONE, environ={})
    assert str(info.value).startswith(message)


def test_settings_out_of_range_are_located_in_toml_too() -> None:
    with pytest.raises(ExecutorConfigError) as info:
        parse_executors(
            '[send]\nwebhook = "https://x.example"\nsecret_env = "S"\nretries = -1\n',
            "c.toml",
            zone=ZONE,
            environ={"S": "k"},
        )
    assert str(info.value) == "c.toml:4:1: error: send: retries: input should be greater than or equal to 0"


def test_an_unreadable_config_file_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    from sopdsl.live.executors_config import load_executors

    with pytest.raises(ExecutorConfigError, match="cannot read the file"):
        load_executors(tmp_path / "missing.yaml", zone=ZONE)
