"""`sopdsl check --format sarif|github` and `sopdsl fmt --diff` / `sopdsl fmt -` from the outside:
exit codes and what CI, hooks and editors read."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from sopdsl.cli import main

BAD = """timezone "Asia/Shanghai"
template welcome = "欢迎"
playbook p {
    on member joins
    do { send welcom to member }
}
"""

MESSY = """timezone "Asia/Shanghai"
template welcome = "欢迎"
playbook p {
  on member joins
    do { send welcome to member }
}
"""

TIDY = """timezone "Asia/Shanghai"
template welcome = "欢迎"

playbook p {
    on member joins
    do {
        send welcome to member
    }
}
"""


def invoke(*args: str, stdin: str | bytes | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with a playbook that fails to check, as the working folder (a repository's root)."""
    (tmp_path / "ops").mkdir()
    (tmp_path / "ops" / "欢迎.sop").write_text(BAD, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_check_github_annotates_the_line_with_the_code_as_title(project: Path) -> None:
    code, out, err = invoke("check", "ops", "--format", "github")
    assert code == 1
    assert out.splitlines() == [
        "::error file=ops/欢迎.sop,line=5,col=15,endColumn=21,title=SOP104::"
        "unknown template 'welcom'%0Ahint: did you mean 'welcome'?"
    ]
    assert "1 error(s)" in err


def test_check_sarif_locates_results_relative_to_the_working_folder(project: Path) -> None:
    code, out, _ = invoke("check", "ops", "--format", "sarif")
    assert code == 1
    log = json.loads(out)
    [run] = log["runs"]
    [result] = run["results"]
    assert (result["ruleId"], result["level"]) == ("SOP104", "error")
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "ops/%E6%AC%A2%E8%BF%8E.sop", "uriBaseId": "%SRCROOT%"}
    assert location["region"] == {"startLine": 5, "startColumn": 15, "endLine": 5, "endColumn": 21}
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == project.resolve().as_uri() + "/"
    rule = run["tool"]["driver"]["rules"][result["ruleIndex"]]
    assert rule["id"] == "SOP104"
    _, explained, _ = invoke("explain", "SOP104")
    assert rule["help"]["text"] == explained.rstrip("\n")


def test_check_sarif_of_a_clean_file_has_no_results_and_exits_0(project: Path) -> None:
    (project / "ops" / "欢迎.sop").write_text(TIDY, encoding="utf-8")
    code, out, _ = invoke("check", "ops", "--format", "sarif")
    assert code == 0
    assert json.loads(out)["runs"][0]["results"] == []


def test_fmt_diff_shows_the_change_and_leaves_the_file(project: Path) -> None:
    path = project / "ops" / "messy.sop"
    path.write_text(MESSY, encoding="utf-8")
    code, out, _ = invoke("fmt", "--diff", "ops/messy.sop")
    assert code == 1
    assert path.read_text(encoding="utf-8") == MESSY
    assert out.startswith("--- a/ops/messy.sop\n+++ b/ops/messy.sop\n@@ ")
    assert "\n-  on member joins\n" in out and "\n+    on member joins\n" in out
    # The diff applies as git's does: `git apply` from the root gives the formatted text.
    subprocess.run(["git", "apply"], input=out, text=True, check=True, cwd=project)
    assert path.read_text(encoding="utf-8") == TIDY


def test_fmt_diff_of_formatted_files_is_empty_and_exits_0(tmp_path: Path) -> None:
    (tmp_path / "tidy.sop").write_text(TIDY, encoding="utf-8")
    assert invoke("fmt", "--diff", str(tmp_path)) == (0, "", "")


def test_fmt_diff_marks_a_missing_last_newline(tmp_path: Path) -> None:
    path = tmp_path / "messy.sop"
    path.write_text(MESSY.rstrip("\n"), encoding="utf-8")
    code, out, _ = invoke("fmt", "--diff", str(path))
    assert code == 1
    assert "\n-}\n\\ No newline at end of file\n" in out
    assert out.endswith("\n+}\n")


def test_fmt_stdin_writes_the_formatted_text_to_stdout() -> None:
    assert invoke("fmt", "-", stdin=MESSY) == (0, TIDY, "")
    assert invoke("fmt", "-", stdin=TIDY) == (0, TIDY, "")


def test_fmt_stdin_with_check_or_diff_says_whether_it_would_change() -> None:
    assert invoke("fmt", "--check", "-", stdin=MESSY) == (1, "would reformat <stdin>\n", "")
    assert invoke("fmt", "--check", "-", stdin=TIDY) == (0, "", "")
    code, out, _ = invoke("fmt", "--diff", "-", stdin=MESSY)
    assert code == 1 and out.startswith("--- a/<stdin>\n+++ b/<stdin>\n")


def test_fmt_stdin_syntax_error_is_located_in_stdin() -> None:
    code, out, err = invoke("fmt", "-", stdin="playbook p {\n    on member jions\n}\n")
    assert (code, out) == (1, "")
    assert err.startswith("<stdin>:2:15: error[SOP100]: unexpected name 'jions'\n")
    assert "   2 |     on member jions" in err


def test_fmt_stdin_that_is_not_utf8_is_a_diagnostic() -> None:
    code, out, err = invoke("fmt", "-", stdin='template t = "欢迎"'.encode("gb18030"))
    assert (code, out) == (1, "")
    assert err.startswith("<stdin>:") and "SOP002" in err


def test_fmt_stdin_cannot_be_mixed_with_files(tmp_path: Path) -> None:
    (tmp_path / "tidy.sop").write_text(TIDY, encoding="utf-8")
    code, _, err = invoke("fmt", "-", str(tmp_path / "tidy.sop"), stdin=TIDY)
    assert code == 2 and "standard input" in err


def test_fmt_and_check_of_a_full_width_space_name_it_and_leave_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ime.sop"
    typed = TIDY.replace("send welcome", "send\u3000welcome")
    path.write_text(typed, encoding="utf-8")
    for command in (("fmt",), ("fmt", "--check"), ("check",)):
        code, out, err = invoke(*command, str(path))
        assert code == 1
        assert "Traceback" not in out + err
        assert (
            "ime.sop:7:13: error[SOP101]: full-width space (U+3000) where the language expects" in out + err
        )
        assert "hint: type an ordinary space instead (switch the input method to half-width" in out + err
    assert path.read_text(encoding="utf-8") == typed
