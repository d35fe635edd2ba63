"""A command's output file that cannot be written is a usage error naming it, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sopdsl.cli import main

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
T2 = str(PLAYBOOKS / "T2_daily_figures.sop")
G2 = str(PLAYBOOKS / "G2_lottery_chances.yaml")


@pytest.mark.parametrize(
    "args",
    [
        ["compile", T2, "-o", "{out}"],
        ["test", G2, "--junit", "{out}"],
        ["test", G2, "--coverage-file", "{out}"],
        [
            "plan",
            str(PLAYBOOKS / "K1_tuesday_class.sop"),
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-07",
            "--ics",
            "{out}",
        ],
        ["report", T2, "--timeline", str(PLAYBOOKS / "T2_daily_figures.yaml"), "-o", "{out}"],
    ],
    ids=lambda a: " ".join(a[:1] + [w for w in a if w.startswith("-")][:1]),
)
def test_an_output_in_a_missing_folder_is_a_usage_error(args: list[str], tmp_path: Path) -> None:
    out = tmp_path / "no such folder" / "out.file"
    result = CliRunner().invoke(main, [a.replace("{out}", str(out)) for a in args])
    assert result.exit_code == 2, result.output
    assert f"cannot write {out}: No such file or directory" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
