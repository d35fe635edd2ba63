"""Golden test runs: each fixture in tests/goldens/test/ (with the playbook sharing its stem) and
exactly what `sopdsl test` prints for it, paths relative to the repository root.

Rewrite the expected files after an intended change with `SOPDSL_UPDATE_GOLDENS=1 pytest`, then
read the diff: a failure must say what went wrong, where, and what to do about it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from sopdsl.cli import main

ROOT = Path(__file__).resolve().parent.parent.parent
GOLDENS = ROOT / "tests" / "goldens" / "test"
CASES = sorted(GOLDENS.glob("*.yaml"))
UPDATE = os.environ.get("SOPDSL_UPDATE_GOLDENS") == "1"


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_golden(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(main, ["test", path.relative_to(ROOT).as_posix()])
    assert isinstance(result.exception, SystemExit | None), result.exc_info
    output = f"{result.output}exit {result.exit_code}\n"
    expected_path = path.with_suffix(".expected")
    if UPDATE or not expected_path.exists():
        expected_path.write_text(output, encoding="utf-8", newline="\n")
        if not UPDATE:
            pytest.fail(f"wrote missing {expected_path.name}; read it, then run again")
    assert output == expected_path.read_text(encoding="utf-8")
    assert "Traceback" not in output


def test_every_expected_file_has_its_fixture() -> None:
    orphans = [p.name for p in GOLDENS.glob("*.expected") if not p.with_suffix(".yaml").exists()]
    assert not orphans


def test_the_json_report_lists_every_failed_action_with_its_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(
        main, ["test", "tests/goldens/test/failed_action_reason.yaml", "--format", "json"]
    )
    [fixture] = json.loads(result.output)["fixtures"]
    [failed] = fixture["failed_actions"]
    assert "send gift_note -> lina [failed: template error: 'coupon' is undefined]" in failed
    assert "failed_action_reason.sop:12" in failed
