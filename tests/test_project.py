"""The project file (sopdsl.toml): the deployable set and the time zone that `check`, `test`,
`compile` and `plan` share, its located errors, and the corpus's own project file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sopdsl.build import compile_project
from sopdsl.cli import main
from sopdsl.project import ProjectError, load_project

ROOT = Path(__file__).resolve().parent.parent

V1 = """\
timezone "Asia/Shanghai"
template hello "你好" = "你好"
playbook welcome "欢迎" {
    on member joins
    do: send hello to member
}
"""
V2 = V1.replace('你好" = "你好"', '你好" = "你好呀"')
FIXTURE = """\
start: 2026-03-02 09:00
end: 2026-03-03 00:00
groups: [{id: g1}]
events:
  - {at: 2026-03-02 10:00, kind: join, member: m1, group: g1}
expect:
  - {action: send, template: hello, member: m1}
"""
PROJECT = """\
[deploy]
files = ["sops/*.sop"]
exclude = ["sops/*.v2.sop"]
timezone = "Asia/Shanghai"
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    sops = tmp_path / "sops"
    sops.mkdir()
    (sops / "welcome.sop").write_text(V1, encoding="utf-8")
    (sops / "welcome.v2.sop").write_text(V2, encoding="utf-8")  # declares the same names
    (sops / "welcome.yaml").write_text(FIXTURE, encoding="utf-8")
    (tmp_path / "sopdsl.toml").write_text(PROJECT, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result.exit_code, result.output


def test_the_deployable_set_leaves_superseded_versions_out(project: Path) -> None:
    loaded = load_project(project / "sopdsl.toml")
    assert [p.name for p in loaded.files] == ["welcome.sop"]
    assert loaded.timezone == "Asia/Shanghai"


@pytest.mark.parametrize("target", ["sops", "sopdsl.toml", "."])
def test_every_command_reads_the_same_set(project: Path, target: str) -> None:
    assert run("check", target)[0] == 0
    code, out = run("compile", target, "-o", "plan.json")
    assert code == 0, out
    assert (
        json.loads((project / "plan.json").read_text(encoding="utf-8"))["declarations"]["timezone"]
        == "Asia/Shanghai"
    )
    assert run("plan", target, "--from", "2026-03-02", "--to", "2026-03-02")[0] == 0
    code, out = run("test", target)
    assert (code, out.splitlines()[-1]) == (0, "1 passed, 0 failed")


def test_without_the_project_the_folder_does_not_compile(project: Path) -> None:
    (project / "sopdsl.toml").unlink()
    code, out = run("compile", "sops", "-o", "plan.json")
    assert code == 1
    assert "SOP111" in out


def test_check_and_test_see_what_the_set_breaks_together(project: Path) -> None:
    (project / "sopdsl.toml").write_text(
        PROJECT.replace('"sops/*.v2.sop"', '"sops/none.sop"'), encoding="utf-8"
    )
    code, out = run("check", "sops")
    assert code == 1
    assert "sops/welcome.v2.sop:2:10: error[SOP111]: template 'hello' is declared twice" in out
    code, out = run("test", "sops")
    assert code == 2
    assert "ERROR sopdsl.toml (the deployable set)" in out
    assert "error[SOP111]" in out


def test_a_project_in_another_zone_is_an_error_at_its_line(project: Path) -> None:
    (project / "sopdsl.toml").write_text(PROJECT.replace("Asia/Shanghai", "Europe/Berlin"), encoding="utf-8")
    code, out = run("compile", "sops", "-o", "plan.json")
    assert code == 1
    assert (
        "sopdsl.toml:4:1: error[SOP008]: the project's time zone is Europe/Berlin, but its playbooks say Asia/Shanghai"
        in out
    )


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("[deploy]\nfiels = ['sops/*.sop']\n", "unknown key 'fiels' in [deploy]", 2),
        (
            "[deploy]\nfiles = ['sops/*.sop']\ntimezone = 'Asia/Shanghia'\n",
            "unknown time zone 'Asia/Shanghia'",
            3,
        ),
        ("[deploy]\nfiles = ['nowhere/*.sop']\n", "`files` pattern 'nowhere/*.sop' matches no .sop file", 2),
        ("[deploy]\nfiles = ['../*.sop']\n", "must stay inside the project folder", 2),
        ("[deploy]\nfiles = 'sops/*.sop'\nexclude = 3\n", "`exclude` is a list of file patterns", 3),
        ("[deploy\n", "invalid TOML", 1),
        ("[deplyo]\nfiles = ['sops/*.sop']\n", "unknown table or key 'deplyo'", 1),
    ],
)
def test_a_wrong_project_file_is_located(project: Path, text: str, message: str, line: int) -> None:
    (project / "sopdsl.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ProjectError) as caught:
        load_project(project / "sopdsl.toml", "sopdsl.toml")
    [problem] = [d for d in caught.value.diagnostics if message in d.message]
    assert problem.code == "SOP008"
    assert problem.span.line == line
    code, out = run("check", "sops")
    assert code == 1
    assert f"sopdsl.toml:{line}:" in out and "Traceback" not in out


def test_the_corpus_deploys_every_playbook_but_superseded_versions_and_compiles_clean() -> None:
    loaded = load_project(ROOT / "sopdsl.toml")
    corpus = sorted((ROOT / "playbooks").glob("*.sop"))
    assert [p.name for p in corpus if p.resolve() not in loaded.files] == ["J3_self_introduction.v2.sop"]
    build = compile_project(loaded)
    assert build.plan is not None, [d.message for d in build.diagnostics]
    assert [d.message for d in build.diagnostics] == []
