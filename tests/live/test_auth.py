"""Tokens and where the service may listen: located errors, constant-time checks, loopback only without auth."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from test_service import plan

from sopdsl.live.auth import AuthConfigError, allowed_hosts, check_listen, load_tokens, parse_tokens
from sopdsl.live.command import run_command

GOOD = "a-long-enough-token-1234"


def test_a_tokens_file_grants_shards_per_token() -> None:
    tokens = parse_tokens(f"# staff\n{GOOD} shop1,shop2\nanother-long-token-5678 *  # all\n", "t.txt")
    grant = tokens.check(f"Bearer {GOOD}")
    assert grant is not None and grant.allows("shop2") and not grant.allows("shop3")
    assert grant.where == "t.txt:2"
    every = tokens.check("bearer another-long-token-5678")
    assert every is not None and every.allows("anything")
    assert tokens.check(f"Basic {GOOD}") is None and tokens.check(None) is None
    assert tokens.check(f"Bearer {GOOD}x") is None


def test_every_mistake_in_a_tokens_file_is_reported_at_its_line() -> None:
    with pytest.raises(AuthConfigError) as info:
        parse_tokens(f"short shop1\n{GOOD}\n{GOOD} a\n{GOOD} b\n", "t.txt")
    assert str(info.value).splitlines() == [
        "t.txt:1: error: a token must be at least 16 characters "
        "(try `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`)",
        "t.txt:2: error: expected `TOKEN SHARD[,SHARD...]` (`*` for every shard)",
        "t.txt:4: error: this token is already given on an earlier line",
    ]
    with pytest.raises(AuthConfigError, match="no tokens in it"):
        parse_tokens("# nothing\n", "t.txt")
    with pytest.raises(AuthConfigError) as spaced:
        parse_tokens(f"{GOOD} default, shop2\n", "t.txt")
    assert str(spaced.value).endswith(
        "shards are separated by commas without spaces: `" + GOOD[:4] + "… default,shop2`"
    )


def test_tokens_come_from_the_file_else_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "tokens.txt"
    path.write_text(f"{GOOD} default\n", encoding="utf-8")
    assert load_tokens(str(path), {}) is not None
    from_env = load_tokens(None, {"SOPDSL_TOKENS": f"{GOOD} default; other-long-token-0000 x"})
    assert from_env is not None and len(from_env.grants) == 2
    assert load_tokens(None, {}) is None
    with pytest.raises(AuthConfigError, match="cannot read the tokens file"):
        load_tokens(str(tmp_path / "missing.txt"), {})


def test_no_auth_is_allowed_on_loopback_only() -> None:
    check_listen("127.0.0.1", None, insecure_no_auth=True)
    check_listen("::1", None, insecure_no_auth=True)
    for host in ("0.0.0.0", "192.168.1.5", "::", "example.com"):
        with pytest.raises(AuthConfigError, match="only allowed on a loopback address"):
            check_listen(host, None, insecure_no_auth=True)
    with pytest.raises(AuthConfigError, match="no tokens: give --tokens FILE"):
        check_listen("127.0.0.1", None, insecure_no_auth=False)


def test_hosts_answered_to() -> None:
    assert "localhost" in allowed_hosts("127.0.0.1") and "*" not in allowed_hosts("127.0.0.1")
    assert allowed_hosts("0.0.0.0") == ["*"]
    assert allowed_hosts("0.0.0.0", ("bot.example.com",)) == ["0.0.0.0", "bot.example.com"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--host", "0.0.0.0", "--insecure-no-auth"],
            "--insecure-no-auth is only allowed on a loopback address",
        ),
        (["--host", "0.0.0.0"], "error: no tokens: give --tokens FILE or set $SOPDSL_TOKENS"),
        ([], "error: no tokens"),
    ],
)
def test_sopdsl_run_refuses_to_serve_without_auth_beyond_loopback(
    tmp_path: Path, args: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOPDSL_TOKENS", raising=False)
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plan().dumps(), encoding="utf-8")
    result = CliRunner().invoke(run_command, [str(plan_file), "--store", "memory://", "--port", "0", *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize(("port", "code"), [("99999", 2), ("-1", 2)])
def test_sopdsl_run_refuses_a_port_out_of_range_as_a_usage_error(
    tmp_path: Path, port: str, code: int
) -> None:
    # Once a traceback from the socket's bind (OverflowError), after the store was opened.
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plan().dumps(), encoding="utf-8")
    result = CliRunner().invoke(
        run_command, [str(plan_file), "--store", "memory://", "--port", port, "--insecure-no-auth"]
    )
    assert result.exit_code == 2, result.output
    assert "'--port'" in result.stderr and "0<=x<=65535" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
