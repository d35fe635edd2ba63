"""examples/wecom_bot guards its other endpoints as `sopdsl run` does: the callback is checked by
WeCom's signature, but the events and admin endpoints need `$SOPDSL_TOKENS` beyond loopback, and
on loopback a web page that rebinds its own name to 127.0.0.1 is refused by the `Host` check."""

from __future__ import annotations

from pathlib import Path

import pytest
from asgiclient import Client
from test_example_wecom_bot import ENV, bot_module, executors_for
from wecom_mock import MockWeCom, serving

from sopdsl.live.app import create_app

TOKEN = "s3cr3t-bot-token-0f9e8d7c6b5a"


@pytest.fixture(autouse=True)
def wecom_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SOPDSL_TOKENS", raising=False)


def test_listening_beyond_loopback_without_tokens_is_refused_saying_what_to_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bot = bot_module()
    with serving(MockWeCom()) as url:
        executors = str(executors_for(url, tmp_path))
        code = bot.main(["--host", "0.0.0.0", "--port", "0", "--executors", executors])
    err = capsys.readouterr().err
    assert code == 2
    assert "$SOPDSL_TOKENS" in err and "Traceback" not in err


def test_beyond_loopback_the_admin_api_and_events_need_a_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOPDSL_TOKENS", f"{TOKEN} default")
    bot = bot_module()
    with serving(MockWeCom()) as url:
        args = bot.options(
            ["--host", "0.0.0.0", "--port", "0", "--executors", str(executors_for(url, tmp_path))]
        )
        service = bot.make_service(args)
        client = Client(create_app(service))
        assert client.get("/admin/parked").status_code == 401
        assert client.post("/events", json={"kind": "join", "member": "m", "group": "g"}).status_code == 401
        answer = client.get("/admin/parked", headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status_code == 200
        service.runtime.close()


def test_on_loopback_a_rebinding_page_is_refused_and_the_proxys_name_can_be_allowed(tmp_path: Path) -> None:
    bot = bot_module()
    with serving(MockWeCom()) as url:
        executors = str(executors_for(url, tmp_path))
        service = bot.make_service(bot.options(["--port", "0", "--executors", executors]))
        client = Client(create_app(service))
        assert client.get("/admin/parked", headers={"Host": "evil.example:8080"}).status_code == 421
        assert client.get("/admin/parked", headers={"Host": "127.0.0.1:8080"}).status_code == 200
        service.runtime.close()
        named = ["--port", "0", "--executors", executors, "--allowed-host", "bot.example.com"]
        service = bot.make_service(bot.options(named))
        client = Client(create_app(service))
        assert client.get("/healthz", headers={"Host": "bot.example.com"}).status_code == 200
        service.runtime.close()
