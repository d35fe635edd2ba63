"""The wheel: everything under the `sopdsl` name (the grammar and runtime links followed), no
stray top-level `grammar`/`runtime` packages, and an installed copy that checks playbooks.

The wheel is `built_wheel` (tests/wheelbuild.py): `pip wheel` (an isolated build, as `pip install .`
does) from a copy of the working tree, so a stale `build/` folder cannot leak old files into it;
built once a session, as tests/test_compiled.py runs the engine's tests on its installed copy.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from compiling import need_compiler

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="module")
def names(built_wheel: Path) -> set[str]:
    with zipfile.ZipFile(built_wheel) as archive:
        return set(archive.namelist())


def test_the_grammar_and_every_stage_are_inside_sopdsl(names: set[str]) -> None:
    assert "sopdsl/grammar/sopdsl.lark" in names
    for stage in ("syntax", "checker", "plan", "engine", "live", "dryrun"):
        assert f"sopdsl/{stage}/__init__.py" in names
    assert "sopdsl/py.typed" in names


def test_no_top_level_runtime_or_grammar_package(names: set[str]) -> None:
    tops = {name.split("/")[0] for name in names}
    # Beside the package, only mypyc's runtime for the compiled modules (setup.py's group "sopdsl").
    assert {
        top for top in tops if not top.endswith(".dist-info") and not top.startswith("sopdsl__mypyc.")
    } == {"sopdsl"}
    assert not any(name.startswith(("runtime/", "grammar/")) for name in names)


def test_the_wheel_holds_the_listed_modules_compiled_beside_their_source(names: set[str]) -> None:
    need_compiler()  # without one, pip builds a pure-Python wheel
    listed = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["sopdsl"][
        "compiled"
    ]
    assert "sopdsl/engine/happenings.py" in listed
    compiled = {name.split(".")[0] + ".py" for name in names if name.endswith(".so") and "/" in name}
    assert compiled == set(listed)
    assert set(listed) <= names  # the source too, for tracebacks and for reading
    assert any(name.startswith("sopdsl__mypyc.") for name in names)


def test_every_module_of_the_source_tree_is_in_the_wheel(names: set[str]) -> None:
    package = ROOT / "sopdsl"
    source = {
        (Path(folder) / file).relative_to(ROOT).as_posix()
        for folder, _, files in os.walk(package)
        for file in files
        if file.endswith(".py") and "__pycache__" not in folder
    }
    source |= {
        f"sopdsl/grammar/{p.name}" for p in (ROOT / "grammar").iterdir() if p.suffix in (".py", ".lark")
    }
    assert source - names == set()


def test_there_are_no_links_in_the_repository() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "-s"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert [line for line in tracked if line.startswith("120000")] == []


def test_runtime_from_the_repository_root_is_not_a_second_engine() -> None:
    # `runtime/` holds what it takes to run the service, not Python code: importing it from the
    # repository root cannot give a second copy of the engine's classes.
    result = subprocess.run(
        [sys.executable, "-c", "import runtime.engine"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode != 0 and "ModuleNotFoundError" in result.stderr


def test_metadata_names_the_package_and_the_command(built_wheel: Path, names: set[str]) -> None:
    with zipfile.ZipFile(built_wheel) as archive:
        info = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
        assert archive.read(info).decode().split() == ["sopdsl"]
        entry_points = archive.read(info.replace("top_level.txt", "entry_points.txt")).decode()
    assert "sopdsl = sopdsl.cli:main" in entry_points


def test_the_installed_wheel_checks_a_playbook_from_another_folder(
    installed_wheel: Path, tmp_path: Path
) -> None:
    target = installed_wheel  # `pip install --no-deps --target` of the wheel
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "p.sop").write_text(
        'timezone "Asia/Shanghai"\ntemplate welcome = "欢迎"\n'
        "playbook p { on member joins do: send welcom to member }\n",
        encoding="utf-8",
    )
    script = (
        "import sys, sopdsl, sopdsl.cli\n"
        f"assert sopdsl.__file__.startswith({str(target)!r}), sopdsl.__file__\n"
        "sys.argv = ['sopdsl', 'check', 'p.sop']\n"
        "sopdsl.cli.main()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target), "SOPDSL_CACHE_DIR": ""}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith("p.sop:3:39: error[SOP104]: unknown template 'welcom'")
    assert "did you mean 'welcome'?" in result.stdout
