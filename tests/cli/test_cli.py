"""The `check` and `explain` commands through click's CliRunner: exit codes, output, JSON shape.

Exit codes: 0 clean (warnings allowed), 1 errors found, 2 usage error.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sopdsl import __version__
from sopdsl.cli import main
from sopdsl.diagnostics import CODES
from sopdsl.textfiles import MAX_FILE_BYTES

ZONE = 'timezone "Asia/Shanghai"\n'
CLEAN = ZONE + 'template hi = "欢迎"\nplaybook p { on member joins do: send hi to member }\n'
BROKEN = ZONE + 'template welcome = "欢迎"\nplaybook p { on member joins do: send welcom to member }\n'
WARNS = ZONE + 'policy { never kick members tagged "core" }\nplaybook p { on member joins do: kick member }\n'


def run(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args))
    # Only click's own exit, never an exception escaping a command.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ---- check: exit codes ---------------------------------------------------------------------------


def test_a_clean_file_exits_0_with_only_the_summary(folder: Path) -> None:
    write(folder / "clean.sop", CLEAN)
    result = run("check", "clean.sop")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == "checked 1 file(s): 0 error(s), 0 warning(s)\n"


def test_errors_exit_1_with_the_rendered_diagnostic(folder: Path) -> None:
    write(folder / "broken.sop", BROKEN)
    result = run("check", "broken.sop")
    assert result.exit_code == 1
    assert result.stdout == (
        "broken.sop:3:39: error[SOP104]: unknown template 'welcom'\n"
        "   3 | playbook p { on member joins do: send welcom to member }\n"
        "     |                                       ^^^^^^\n"
        "   hint: did you mean 'welcome'?\n"
        "\n"
    )
    assert result.stderr == "checked 1 file(s): 1 error(s), 0 warning(s)\n"


def test_warnings_alone_exit_0(folder: Path) -> None:
    write(folder / "warns.sop", WARNS)
    result = run("check", "warns.sop")
    assert result.exit_code == 0
    assert "warning[SOP403]" in result.stdout
    assert result.stderr == "checked 1 file(s): 0 error(s), 1 warning(s)\n"


def test_a_missing_path_is_a_usage_error(folder: Path) -> None:
    result = run("check", "nope.sop")
    assert result.exit_code == 2
    assert "no such file or folder: nope.sop" in result.stderr
    assert "Traceback" not in result.output


def test_no_path_at_all_is_a_usage_error() -> None:
    result = run("check")
    assert result.exit_code == 2
    assert "Missing argument" in result.stderr


def test_a_folder_without_sop_files_is_a_usage_error(folder: Path) -> None:
    write(folder / "docs" / "readme.txt", "not a playbook")
    result = run("check", "docs")
    assert result.exit_code == 2
    assert "no .sop files found in docs" in result.stderr


def test_an_unknown_option_is_a_usage_error(folder: Path) -> None:
    write(folder / "clean.sop", CLEAN)
    assert run("check", "--format", "xml", "clean.sop").exit_code == 2
    assert run("check", "--colour", "clean.sop").exit_code == 2


def test_an_unreadable_file_is_a_diagnostic_not_a_crash(folder: Path) -> None:
    (folder / "bin.sop").write_bytes(b"\x00\x01\x02")
    result = run("check", "bin.sop")
    assert result.exit_code == 1
    assert result.stdout.startswith("bin.sop:1:1: error[SOP003]: ")


def test_a_file_over_the_size_limit(folder: Path) -> None:
    with (folder / "huge.sop").open("wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)
    result = run("check", "huge.sop")
    assert result.exit_code == 1
    assert result.stdout.startswith("huge.sop:1:1: error[SOP004]: file is 16.0 MiB; the limit is 16 MiB\n")


# ---- check: folders and several files ------------------------------------------------------------


def test_a_folder_is_searched_for_sop_files(folder: Path) -> None:
    write(folder / "pb" / "a.sop", CLEAN)
    write(folder / "pb" / "nested" / "b.sop", BROKEN)
    write(folder / "pb" / "notes.txt", "ignored")
    result = run("check", "pb")
    assert result.exit_code == 1
    assert result.stdout.startswith("pb/nested/b.sop:3:39: error[SOP104]")
    assert result.stderr == "checked 2 file(s): 1 error(s), 0 warning(s)\n"


def test_a_file_named_twice_is_checked_once(folder: Path) -> None:
    write(folder / "pb" / "b.sop", BROKEN)
    result = run("check", "pb", "pb/b.sop", "./pb/b.sop")
    assert result.stderr == "checked 1 file(s): 1 error(s), 0 warning(s)\n"
    assert result.stdout.count("error[SOP104]") == 1


def test_a_shared_include_is_reported_once(folder: Path) -> None:
    write(folder / "pb" / "common.sop", ZONE + "template t = 'x'\n")
    write(folder / "pb" / "a.sop", 'include "common.sop"\n')
    write(folder / "pb" / "b.sop", 'include "common.sop"\n')
    result = run("check", "pb")
    assert result.exit_code == 1
    assert result.stdout.count("pb/common.sop:2:14: error[SOP101]") == 1
    assert result.stderr == "checked 3 file(s): 1 error(s), 0 warning(s)\n"


def test_paths_are_shown_relative_to_the_working_folder(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(folder / "pb" / "b.sop", BROKEN)
    monkeypatch.chdir(folder / "pb")
    assert run("check", "b.sop").stdout.startswith("b.sop:3:39:")
    monkeypatch.chdir(folder)
    assert run("check", str(folder / "pb" / "b.sop")).stdout.startswith("pb/b.sop:3:39:")


# ---- check --format json -------------------------------------------------------------------------


def test_json_output_shape(folder: Path) -> None:
    write(folder / "broken.sop", BROKEN)
    write(folder / "warns.sop", WARNS)
    result = run("check", "--format", "json", "broken.sop", "warns.sop")
    assert result.exit_code == 1
    assert result.stderr == ""  # no summary line to break a JSON reader
    payload = json.loads(result.stdout)
    assert set(payload) == {"files", "errors", "warnings", "diagnostics"}
    assert (payload["files"], payload["errors"], payload["warnings"]) == (2, 1, 1)
    first = payload["diagnostics"][0]
    assert first == {
        "code": "SOP104",
        "severity": "error",
        "message": "unknown template 'welcom'",
        "path": "broken.sop",
        "line": 3,
        "column": 39,
        "end_line": 3,
        "end_column": 45,
        "hint": "did you mean 'welcome'?",
    }
    assert [d["severity"] for d in payload["diagnostics"]] == ["error", "warning"]


def test_json_keeps_chinese_readable_and_clean_files_exit_0(folder: Path) -> None:
    write(
        folder / "中文.sop",
        ZONE + 'template 欢迎 = "hi"\nplaybook p { on member joins do: send 欢迎语 to member }\n',
    )
    result = run("check", "--format", "json", "中文.sop")
    assert "欢迎语" in result.stdout  # not \\u escapes
    assert json.loads(result.stdout)["diagnostics"][0]["path"] == "中文.sop"
    write(folder / "clean.sop", CLEAN)
    clean = run("check", "--format", "json", "clean.sop")
    assert clean.exit_code == 0
    assert json.loads(clean.stdout) == {"files": 1, "errors": 0, "warnings": 0, "diagnostics": []}


# ---- rendering details ---------------------------------------------------------------------------


def test_a_long_line_is_cut_around_the_caret(folder: Path) -> None:
    line = "playbook p { on member joins do { " + "send hi to member " * 10 + "send hx to member "
    line += "send hi to member " * 10 + "} }"
    write(folder / "long.sop", ZONE + 'template hi = "hi"\n' + line + "\n")
    lines = run("check", "long.sop").stdout.splitlines()
    quoted, caret = lines[1], lines[2]
    assert len(quoted) < 130
    assert quoted.startswith("   3 | …") and quoted.endswith("…")
    assert quoted[caret.index("^") : caret.index("^") + 2] == "hx"


def test_control_characters_and_tabs_do_not_reach_the_terminal(folder: Path) -> None:
    write(folder / "ctl.sop", ZONE + '\t\x1b[31m"\x07"\n')
    out = run("check", "ctl.sop").stdout
    assert "\x1b" not in out and "\x07" not in out
    assert "\t" not in out


def test_chinese_text_lines_up_under_the_caret(folder: Path) -> None:
    write(
        folder / "cn.sop",
        ZONE + 'template 欢迎 = "hi"\nplaybook 新人 { on member joins do: send 欢迎语 to member }\n',
    )
    lines = run("check", "cn.sop").stdout.splitlines()
    # `playbook 新人 { on member joins do: send ` is 39 characters, 41 terminal columns.
    assert lines[2] == "     | " + " " * 41 + "^" * 6


# ---- explain and --version -----------------------------------------------------------------------


def test_explain_a_code() -> None:
    result = run("explain", "SOP104")
    assert result.exit_code == 0
    assert result.stdout.startswith("SOP104: unknown template\n\n")
    assert "template NAME" in result.stdout


def test_explain_is_case_insensitive() -> None:
    assert run("explain", "sop104").stdout == run("explain", "SOP104").stdout


@pytest.mark.parametrize("code", sorted(CODES))
def test_every_code_can_be_explained(code: str) -> None:
    result = run("explain", code)
    assert result.exit_code == 0
    assert result.stdout.startswith(f"{code}: {CODES[code].title}\n\n")


@pytest.mark.parametrize("code", ["SOP999", "104", "welcome", ""])
def test_explain_an_unknown_code_is_a_usage_error(code: str) -> None:
    result = run("explain", code)
    assert result.exit_code == 2
    assert "unknown code" in result.stderr
    assert "SOP104" in result.stderr  # it shows what a code looks like


def test_codes_are_well_formed() -> None:
    for code, entry in CODES.items():
        assert re.fullmatch(r"SOP\d{3}", code) and entry.code == code
        assert entry.title and entry.explanation.endswith((".", ")", "?"))


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout == f"sopdsl, version {__version__}\n"


def test_help_lists_check_and_explain() -> None:
    result = run("--help")
    assert result.exit_code == 0
    assert "check" in result.stdout and "explain" in result.stdout
