"""The CI recipe of docs/ci.md (and its excerpt in the README): the workflow is valid YAML, and
its sopdsl steps, run as written in a copy of the corpus, pass and write the files that the
upload steps read."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import yaml
from click.testing import CliRunner
from junitparser import JUnitXml

from sopdsl.cli import main

ROOT = Path(__file__).resolve().parent.parent.parent


def yaml_blocks(path: Path) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", path.read_text(encoding="utf-8"), re.S)


def workflow() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(yaml_blocks(ROOT / "docs" / "ci.md")[0])
    return loaded


def run_step(command: str) -> int:
    """A step's `sopdsl …` command as a shell would run it: `> FILE` sends the output to FILE,
    `|| true` ignores the exit code."""
    command, _, ignore = command.partition(" || ")
    command, _, target = command.partition(" > ")
    words = shlex.split(command)
    assert words[0] == "sopdsl", command
    result = CliRunner().invoke(main, words[1:])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    if target:
        Path(target.strip()).write_text(result.stdout, encoding="utf-8")
    return 0 if ignore.strip() == "true" else result.exit_code


def test_the_workflow_runs_check_sarif_upload_and_test(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(ROOT / "playbooks", tmp_path / "playbooks")
    monkeypatch.chdir(tmp_path)
    [job] = workflow()["jobs"].values()
    steps: list[dict[str, Any]] = job["steps"]
    commands = [s["run"] for s in steps if str(s.get("run", "")).startswith("sopdsl ")]
    assert [c.split()[1] for c in commands] == ["check", "check", "test"]
    for command in commands:
        assert run_step(command) == 0, command
    [upload] = [s for s in steps if str(s.get("uses", "")).startswith("github/codeql-action/upload-sarif@")]
    sarif = json.loads(Path(upload["with"]["sarif_file"]).read_text(encoding="utf-8"))
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["results"] == []
    [artifact] = [s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact@")]
    junit, coverage = artifact["with"]["path"].split()
    [suite] = JUnitXml.fromfile(junit)
    # Cobertura: the share of steps and branches the fixtures reach, which --min-coverage held.
    rate = float(ElementTree.parse(coverage).getroot().attrib["line-rate"])
    assert 0.9 <= rate < 1.0
    cases = list(suite)
    assert len(cases) == suite.tests > 100  # every expectation of the corpus is a case
    assert all(case.is_passed for case in cases)
    assert "security-events" in workflow()["permissions"]


def test_the_readme_shows_the_same_steps() -> None:
    [excerpt] = [b for b in yaml_blocks(ROOT / "README.md") if "upload-sarif" in b]
    shown = yaml.safe_load(excerpt)
    [job] = workflow()["jobs"].values()
    recipe = [{k: v for k, v in s.items() if k != "name"} for s in job["steps"]]
    for step in shown:
        assert step in recipe, step
