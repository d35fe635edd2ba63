"""A setting given twice across the files of one program: the hint names the file it was first
given in (it named only a line, of the other file), and the same quiet hours said again by a
second file are not a conflict (as the same chief owner is not)."""

from __future__ import annotations

from pathlib import Path

import sopdsl
from sopdsl.errors import CheckError

MAIN = 'timezone "Asia/Shanghai"\ninclude "shared.sop"\npolicy { quiet hours 22:00 - 08:00 }\n'


def _check(tmp_path: Path, shared: str) -> list[tuple[str, str, int, str | None]]:
    (tmp_path / "main.sop").write_text(MAIN, encoding="utf-8")
    (tmp_path / "shared.sop").write_text(shared, encoding="utf-8")
    try:
        sopdsl.check(sopdsl.load(str(tmp_path / "main.sop")))
    except CheckError as exc:
        return [(d.code, Path(d.span.path).name, d.span.line, d.hint) for d in exc.diagnostics]
    return []


def test_quiet_hours_set_again_in_another_file_name_that_file(tmp_path: Path) -> None:
    found = _check(tmp_path, "\n\n\npolicy { quiet hours 23:00 - 08:00 }\n")
    assert [(code, name, line) for code, name, line, _ in found] == [("SOP114", "shared.sop", 4)]
    assert found[0][3] is not None and found[0][3].endswith("main.sop at line 3")


def test_the_same_quiet_hours_said_again_are_no_conflict(tmp_path: Path) -> None:
    assert _check(tmp_path, "policy { quiet hours 22:00 - 08:00 }\n") == []
