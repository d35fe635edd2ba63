"""The examples run as their READMEs say, and print what the READMEs show."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

import sopdsl
from sopdsl.cli import main
from sopdsl.dryrun.fixtures import load_fixture
from sopdsl.dryrun.simulate import simulate
from sopdsl.plan import timeutil

ROOT = Path(__file__).resolve().parent.parent.parent
BOT = ROOT / "examples" / "welcome_bot"


def run_bot(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(BOT / "bot.py"), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def readme_output() -> str:
    text = (BOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"It prints:\n\n```\n(.*?)```", text, re.S)
    assert found, "README.md should show the bot's output after 'It prints:'"
    return found.group(1)


def test_the_bot_prints_what_its_readme_shows() -> None:
    assert run_bot() == readme_output()


def test_the_bot_runs_a_compiled_plan_and_a_sqlite_store(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    result = CliRunner().invoke(main, ["compile", str(BOT / "welcome.sop"), "-o", str(plan)])
    assert result.exit_code == 0, result.output
    db = tmp_path / "welcome.db"
    assert run_bot("--plan", str(plan), "--store", f"sqlite:///{db}") == readme_output()
    assert db.exists()


def test_the_live_bot_does_what_the_dry_run_of_its_fixture_does() -> None:
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load(BOT / "welcome.sop")))
    fixture, _ = load_fixture(BOT / "welcome.yaml", "welcome.yaml")
    dry = simulate(plan, fixture)
    assert dry.passed
    zone = timeutil.zone(plan.declarations.timezone)
    expected = [
        (dt.datetime.fromtimestamp(a.time, zone).strftime("%m-%d %H:%M"), a.kind, a.member)
        for a in dry.actions
    ]
    *lines, summary = run_bot().splitlines()
    live = [(line[:11], line[13:18].strip(), line[19:].split()[0]) for line in lines]
    assert live == expected
    assert summary == f"events in: {len(fixture.events)}, actions out: {len(expected)}"


def test_the_example_fixture_passes_sopdsl_test() -> None:
    result = CliRunner().invoke(main, ["test", str(BOT)])
    assert result.exit_code == 0, result.output
    assert "6 passed, 0 failed" in result.output
