"""A TOML syntax error in the project file (sopdsl.toml) or the executors file is reported at its
own line and column, not at 1:1, in the same `path:line:col: error` form as the other mistakes."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from sopdsl.cli import main
from sopdsl.live.executors_config import ExecutorConfigError, parse_executors
from sopdsl.plan import timeutil
from sopdsl.project import ProjectError, load_project
from sopdsl.textfiles import toml_error

PLAYBOOK = 'timezone "Asia/Shanghai"\ntemplate hi = "你好"\n'

BROKEN = [
    # (text, line, column): a word after a value, a missing bracket, a bad value on a later line
    ('[deploy]\nfiles = ["sops/*.sop"]\ntimezone = "Asia/Shanghai" 上海\n', 3, 28),
    ('[deploy]\nfiles = ["sops/*.sop"\ntimezone = "Asia/Shanghai"\n', 3, 1),
    ('# 项目\n\n[deploy]\nfiles = ["sops/*.sop"]\nexclude = \n', 5, 11),
]


@pytest.mark.parametrize(("text", "line", "column"), BROKEN)
def test_a_project_files_toml_error_is_at_its_line_and_column(
    tmp_path: Path, text: str, line: int, column: int
) -> None:
    (tmp_path / "sopdsl.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ProjectError) as caught:
        load_project(tmp_path / "sopdsl.toml", "sopdsl.toml")
    [problem] = caught.value.diagnostics
    assert (problem.code, problem.span.line, problem.span.column) == ("SOP008", line, column)
    assert problem.message.startswith("invalid TOML: ") and "(at line" not in problem.message


def test_check_shows_the_toml_error_with_a_caret_under_it(tmp_path: Path) -> None:
    (tmp_path / "sops").mkdir()
    (tmp_path / "sops" / "a.sop").write_text(PLAYBOOK, encoding="utf-8")
    (tmp_path / "sopdsl.toml").write_text(BROKEN[0][0], encoding="utf-8")
    result = CliRunner().invoke(main, ["check", str(tmp_path / "sops")])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    at = next(i for i, text in enumerate(lines) if "error[SOP008]: invalid TOML" in text)
    assert lines[at].split(": error")[0].endswith("sopdsl.toml:3:28")
    assert lines[at + 1].endswith('timezone = "Asia/Shanghai" 上海')
    # The caret sits under the stray word: one column in from where the line's text starts.
    assert lines[at + 2].index("^") == lines[at + 1].index("上海")
    assert "Traceback" not in result.output


@pytest.mark.parametrize(("text", "line", "column"), BROKEN)
def test_the_executors_file_places_the_same_errors_alike(text: str, line: int, column: int) -> None:
    with pytest.raises(ExecutorConfigError) as caught:
        parse_executors(text, "x.toml", zone=timeutil.zone("Asia/Shanghai"), environ={})
    assert str(caught.value).startswith(f"x.toml:{line}:{column}: error: not valid TOML: ")


def test_toml_error_reads_the_position_from_the_message_or_the_attributes() -> None:
    with pytest.raises(tomllib.TOMLDecodeError) as caught:
        tomllib.loads("a = 1\nb = \n")
    line, column, message = toml_error(caught.value)
    assert (line, column) == (2, 5) and message == "Invalid value"
