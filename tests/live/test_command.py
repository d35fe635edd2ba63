"""`sopdsl run`'s modules: no import of the command line, and a reload that reports instead of exiting."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sopdsl.build import PathError
from sopdsl.live.clock import ManualClock
from sopdsl.live.reload import read_plan, reload_playbooks
from sopdsl.live.runtime import Runtime

START = 1_772_330_400  # 2026-03-01 10:00 in Shanghai

WELCOME = textwrap.dedent(
    """
    timezone "Asia/Shanghai"
    template welcome = "%s {{ member.name }}"
    playbook welcome {
        on member joins
        do { send welcome to member }
    }
    """
)


def _modules_after(code: str) -> list[str]:
    """The modules of the command line, of the parser and of Lark that a fresh interpreter holds
    after `code` (a valid file is parsed without Lark once the driver's tables are cached)."""
    front = "('sopdsl.cli', 'lark', 'sopdsl.syntax.parser')"
    shown = f"print(json.dumps(sorted(m for m in sys.modules if m in {front})))"
    result = subprocess.run(
        [sys.executable, "-c", f"import json, sys\n{code}\n{shown}"],
        capture_output=True,
        text=True,
        check=True,
    )
    names: list[str] = json.loads(result.stdout)
    return names


def test_the_run_modules_import_neither_the_command_line_nor_the_front_end() -> None:
    # The cycle this breaks: `sopdsl.cli` imports the run command, which imported `sopdsl.cli`.
    assert (
        _modules_after(
            "import sopdsl.live.command, sopdsl.live.http, sopdsl.live.reload, sopdsl.live.service"
        )
        == []
    )


def test_reading_playbooks_loads_the_front_end_but_not_the_command_line(tmp_path: Path) -> None:
    sop = tmp_path / "welcome.sop"
    sop.write_text(WELCOME % "欢迎", encoding="utf-8")
    loaded = _modules_after(
        f"from sopdsl.live.reload import read_plan\nassert read_plan(({str(sop)!r},)).plan"
    )
    assert "sopdsl.syntax.parser" in loaded and "sopdsl.cli" not in loaded


def test_playbooks_with_errors_give_a_build_without_a_plan_not_an_exit(tmp_path: Path) -> None:
    sop = tmp_path / "broken.sop"
    sop.write_text("playbook broken {", encoding="utf-8")
    build = read_plan((str(sop),))
    assert build.plan is None and any(d.is_error for d in build.diagnostics)
    with pytest.raises(PathError, match="no such file or folder"):
        read_plan((str(tmp_path / "gone.sop"),))
    (tmp_path / "empty").mkdir()
    with pytest.raises(PathError, match=r"no \.sop files found"):
        read_plan((str(tmp_path / "empty"),))
    with pytest.raises(PathError, match="cannot read"):
        read_plan((str(tmp_path / "missing.json"),))


def test_a_reload_with_broken_playbooks_is_reported_and_keeps_the_running_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sop = tmp_path / "welcome.sop"
    sop.write_text(WELCOME % "欢迎", encoding="utf-8")
    plan = read_plan((str(sop),)).plan
    assert plan is not None
    runtime = Runtime(plan, "memory://", clock=ManualClock(START))
    running = plan.content_hash
    try:
        sop.write_text("playbook broken {", encoding="utf-8")
        reload_playbooks(runtime, (str(sop),))
        out, err = capsys.readouterr()
        # The diagnostics, then the refusal, on stderr: stdout carries only the log executor's lines.
        assert out == ""
        diagnostics, refused = err.split("sopdsl run: reload refused", 1)
        assert "error[SOP" in diagnostics and "welcome.sop" in diagnostics
        assert f" (still running plan {running[:12]}): fix the errors above" in refused
        assert runtime.plan.content_hash == running
        assert runtime.feed({"kind": "join", "member": "m1", "group": "g1", "data": {"name": "张三"}})

        sop.unlink()
        reload_playbooks(runtime, (str(sop),))
        assert "reload refused" in capsys.readouterr().err and runtime.plan.content_hash == running

        sop.write_text(WELCOME % "你好", encoding="utf-8")
        reload_playbooks(runtime, (str(sop),))
        err = capsys.readouterr().err
        assert "now running plan " in err and runtime.plan.content_hash != running
    finally:
        runtime.close()


def test_no_module_catches_system_exit() -> None:
    # Exiting is the command's outermost layer's business; nothing below it may rely on catching it.
    package = Path(__file__).parent.parent.parent / "sopdsl"
    catching = [p.name for p in package.rglob("*.py") if "except SystemExit" in p.read_text(encoding="utf-8")]
    assert catching == []


@pytest.mark.parametrize("shard", ["a b", "a/b", "", "中文", "x" * 65])
def test_a_shard_name_post_events_would_refuse_is_refused_at_start(shard: str) -> None:
    # `--shard 'a b'` started and served, under a name no ?shard= and no token line can give.
    from click.testing import CliRunner

    from sopdsl.cli import main

    result = CliRunner().invoke(main, ["run", "x.sop", "--shard", shard, "--insecure-no-auth"])
    assert result.exit_code == 2 and "is not a shard name" in result.output
