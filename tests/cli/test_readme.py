"""The README's five-minute walkthrough runs as written: its files are saved, its commands run
in a shell with sopdsl on the PATH, and each prints exactly what the README shows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def walkthrough() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return readme.split("## Five minutes", 1)[1].split("\n## ", 1)[0]


def saved_files(section: str) -> dict[str, str]:
    """Each `Save … as `NAME`:` paragraph and the code block after it."""
    return dict(re.findall(r"as\s+`([^`]+)`:\n\n```\w*\n(.*?)```", section, re.S))


def console_steps(section: str) -> list[tuple[str, str]]:
    """Each `$ command` of the console blocks, with the lines shown up to the next command."""
    steps: list[tuple[str, str]] = []
    for block in re.findall(r"```console\n(.*?)```", section, re.S):
        for chunk in re.split(r"^\$ ", block, flags=re.M)[1:]:
            command, _, shown = chunk.partition("\n")
            steps.append((command, shown))
    return steps


def test_the_walkthrough_saves_a_playbook_and_its_fixture() -> None:
    files = saved_files(walkthrough())
    assert sorted(files) == ["welcome.sop", "welcome.yaml"]
    commands = [command.split()[:2] for command, _ in console_steps(walkthrough())]
    assert commands == [["sopdsl", "check"], ["sopdsl", "test"], ["sopdsl", "simulate"], ["sopdsl", "why"]]


def test_every_command_of_the_walkthrough_prints_what_the_readme_shows(tmp_path: Path) -> None:
    for name, text in saved_files(walkthrough()).items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    for command, shown in console_steps(walkthrough()):
        result = subprocess.run(
            command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, (command, result.stdout, result.stderr)
        printed = (result.stdout + result.stderr).rstrip("\n")
        assert printed == shown.rstrip("\n"), command
