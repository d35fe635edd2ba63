"""The pre-commit hooks of `.pre-commit-hooks.yaml`, run by pre-commit itself in a scratch
repository that points at a commit of this tree (`repo:` a local path, `rev:` that commit), as a
project using sopdsl would: pre-commit installs sopdsl into its own environment, then runs
`sopdsl-check` and `sopdsl-fmt` on the staged playbooks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "tests", "bench", "playbooks"
)

GOOD = """timezone "Asia/Shanghai"
template welcome = "欢迎"

playbook p {
    on member joins
    do {
        send welcome to member
    }
}
"""

BAD = GOOD.replace("send welcome", "send welcom")
MESSY = GOOD.replace("    do {\n        send welcome to member\n    }", "  do { send welcome to member }")

pytestmark = pytest.mark.skipif(
    shutil.which("git") is None, reason="pre-commit needs git, which is not installed"
)


def git(folder: Path, *args: str) -> str:
    identity = [
        "-c",
        "user.name=sopdsl tests",
        "-c",
        "user.email=tests@sopdsl.invalid",
        "-c",
        "commit.gpgsign=false",
    ]
    done = subprocess.run(["git", *identity, *args], cwd=folder, check=True, capture_output=True, text=True)
    return done.stdout.strip()


@pytest.fixture(scope="module")
def hooks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    """This tree committed to a repository of its own (so the uncommitted state is what is
    tested), its commit, and a pre-commit home shared by the tests (the hook environment is
    installed once)."""
    work = tmp_path_factory.mktemp("hooks")
    source = work / "sopdsl"
    shutil.copytree(ROOT, source, ignore=_NOT_SOURCE)
    git(source, "init", "-q")
    git(source, "add", "-A")
    git(source, "commit", "-q", "-m", "sopdsl under test")
    return source, git(source, "rev-parse", "HEAD"), work / "pre-commit-home"


def run_hooks(hooks: tuple[Path, str, Path], folder: Path, files: dict[str, str]) -> tuple[int, str]:
    """A fresh repository using the hooks, with these playbooks staged: `pre-commit run --all-files`."""
    source, rev, home = hooks
    folder.mkdir()
    git(folder, "init", "-q")
    (folder / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {source}\n    rev: {rev}\n    hooks:\n      - id: sopdsl-check\n      - id: sopdsl-fmt\n",
        encoding="utf-8",
    )
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    git(folder, "add", "-A")
    # SOPDSL_PURE: the hook's `pip install .` need not compile the engine (tests/test_compiled.py does).
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never", "SOPDSL_PURE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pre_commit", "run", "--all-files"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return done.returncode, done.stdout + done.stderr


def test_a_good_playbook_passes_both_hooks(hooks: tuple[Path, str, Path], tmp_path: Path) -> None:
    code, output = run_hooks(
        hooks, tmp_path / "repo", {"ops/welcome.sop": GOOD, "README.md": "not a playbook\n"}
    )
    assert code == 0, output
    assert "sopdsl check" in output and "Passed" in output
    assert "Failed" not in output


def test_a_playbook_with_an_error_fails_the_check_hook(hooks: tuple[Path, str, Path], tmp_path: Path) -> None:
    code, output = run_hooks(hooks, tmp_path / "repo", {"ops/welcome.sop": BAD, "ops/other.sop": GOOD})
    assert code == 1, output
    assert "- hook id: sopdsl-check" in output
    assert "ops/welcome.sop:7:14: error[SOP104]: unknown template 'welcom'" in output
    assert "checked 2 file(s): 1 error(s)" in output


def test_the_fmt_hook_rewrites_an_unformatted_playbook(hooks: tuple[Path, str, Path], tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    code, output = run_hooks(hooks, repo, {"welcome.sop": MESSY})
    assert code == 1, output
    assert "- hook id: sopdsl-fmt" in output and "files were modified by this hook" in output
    assert "- hook id: sopdsl-check" not in output  # it checks: only the layout was off
    assert (repo / "welcome.sop").read_text(encoding="utf-8") == GOOD
