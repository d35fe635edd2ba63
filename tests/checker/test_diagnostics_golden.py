"""Golden diagnostics: each broken playbook in tests/goldens/diagnostics/ and exactly what
`sopdsl check` prints for it (paths relative to the repository root, as a user would run it).

Rewrite the expected files after an intended change with `SOPDSL_UPDATE_GOLDENS=1 pytest`, then
read the diff: every message must stay clear to an operator, with the caret under the right text.
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

import pytest
from click.testing import CliRunner

from sopdsl.cli import main
from sopdsl.diagnostics import CODES

ROOT = Path(__file__).resolve().parent.parent.parent
GOLDENS = ROOT / "tests" / "goldens" / "diagnostics"
CASES = sorted(GOLDENS.glob("*.sop"))
UPDATE = os.environ.get("SOPDSL_UPDATE_GOLDENS") == "1"

# Codes a playbook file cannot produce in a golden, and where they are tested instead.
NOT_IN_GOLDENS = {
    "SOP004": "a file over 16 MiB is generated in tests/test_cli.py",
    "SOP007": "lone surrogates cannot be saved in a file; tests/test_include_roots.py",
    "SOP008": "project files (sopdsl.toml), not playbooks; tests/test_project.py",
    "SOP601": "fixture files, not playbooks",
    "SOP602": "fixture files, not playbooks",
    "SOP603": "fixture files, not playbooks",
    "SOP604": "fixture files, not playbooks; tests/goldens/test/",
}


def run_check(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, int]:
    """What `sopdsl check PATH` prints (stdout, then the summary on stderr) and its exit code."""
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(main, ["check", path.relative_to(ROOT).as_posix()])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result.output, result.exit_code


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_golden(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    output, code = run_check(path, monkeypatch)
    expected_path = path.with_suffix(".expected")
    if UPDATE or not expected_path.exists():
        expected_path.write_text(output, encoding="utf-8", newline="\n")
        if not UPDATE:
            pytest.fail(f"wrote missing {expected_path.name}; read it, then run again")
    assert output == expected_path.read_text(encoding="utf-8")
    # Errors exit 1; warnings alone (or nothing) exit 0.
    assert code == (1 if re.search(r"^\S+: error\[", output, re.MULTILINE) else 0)
    assert "Traceback" not in output


def test_every_expected_file_has_its_playbook() -> None:
    orphans = [p.name for p in GOLDENS.glob("*.expected") if not p.with_suffix(".sop").exists()]
    assert not orphans


def test_every_code_has_a_golden() -> None:
    shown: set[str] = set()
    for path in GOLDENS.glob("*.expected"):
        shown.update(re.findall(r"(?:error|warning)\[(SOP\d+)\]", path.read_text(encoding="utf-8")))
    missing = sorted(set(CODES) - shown - set(NOT_IN_GOLDENS))
    assert not missing, f"codes without a golden playbook: {missing}"
    assert shown <= set(CODES), f"goldens show unknown codes: {sorted(shown - set(CODES))}"


def test_several_mistakes_are_reported_together(monkeypatch: pytest.MonkeyPatch) -> None:
    output, code = run_check(GOLDENS / "many_mistakes.sop", monkeypatch)
    codes = re.findall(r"error\[(SOP\d+)\]", output)
    assert code == 1
    assert len(codes) >= 8
    assert {"SOP104", "SOP107", "SOP112", "SOP302", "SOP301", "SOP401", "SOP402", "SOP105"} <= set(codes)


def test_carets_sit_under_the_span_in_display_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chinese characters are two columns wide and tabs four: the caret must still line up."""
    for path in CASES:
        output, _ = run_check(path, monkeypatch)
        lines = output.splitlines()
        for i, line in enumerate(lines):
            head = re.match(r"^(\S+?):(\d+):(\d+): (?:error|warning)\[", line)
            if not head or i + 2 >= len(lines) or " | " not in lines[i + 1]:
                continue
            quoted, caret = lines[i + 1], lines[i + 2]
            bar = quoted.index(" | ") + 3
            text, marks = quoted[bar:], caret[bar:]
            if text.startswith("…"):
                continue  # a cut line; its alignment is covered in tests/test_cli.py
            source_line = _source_line(ROOT / head.group(1), int(head.group(2)))
            before = source_line[: int(head.group(3)) - 1]
            assert marks.index("^") == _columns(before), line
            assert _columns(text) >= _columns(before), line


def _columns(text: str) -> int:
    """Terminal columns of text, counted independently of the renderer: CJK is 2, a tab 4."""
    return sum(4 if ch == "\t" else 2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _source_line(path: Path, number: int) -> str:
    text = path.read_bytes().decode("utf-8", errors="replace").removeprefix("\ufeff")
    return text.split("\n")[number - 1].removesuffix("\r")
