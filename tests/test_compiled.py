"""The compiled build behaves as the pure one.

`pip install .` compiles the modules pyproject.toml lists under `[tool.sopdsl] compiled` with
mypyc (setup.py); editable installs, which the rest of the suite runs on, stay pure Python. Here
the wheel pip builds from this tree, installed into a scratch folder (`installed_wheel`,
tests/wheelbuild.py: built once a session, tests/cli/test_packaging.py checks the same wheel), is
the compiled build, and then:

- the compiled modules are the ones imported there (so nothing below passes on pure Python);
- the test folders of the stages that run the engine pass against that build;
- a generated timeline's dry run prints the same log, byte for byte, compiled and pure.

Skips, saying why, where no C compiler is found, unless SOPDSL_REQUIRE_COMPILER is set (as in CI).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from benchmods import bench
from compiling import need_compiler

ROOT = Path(__file__).resolve().parent.parent
COMPILED: list[str] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["sopdsl"][
    "compiled"
]
# The test folders of the stages that run the engine (the rest never import a compiled module
# other than through these). Tests marked `source` read the Python source or class layout,
# which compiled modules do not keep; they run in the pure suite.
SUITES = [
    "tests/engine",
    "tests/plan",
    "tests/dryrun",
    "tests/figures",
    "tests/live",
    "tests/temporal",  # the workflow runs the engine in Temporal's sandbox
    "tests/test_stage_goldens.py",
]


def _built(folder: Path, pure: bool) -> Path:
    return Path(bench("compiled").build_tree(folder, pure=pure))


@pytest.fixture(scope="module")
def build(request: pytest.FixtureRequest) -> Path:
    """This tree built as `pip install .` builds it (compiled): the wheel pip builds, installed."""
    need_compiler()  # first: without a compiler, skip (or fail) before any build
    installed: Path = request.getfixturevalue("installed_wheel")
    # As bench/compiled.py's build_tree checks its builds: a build without the compiled modules, or
    # without the library every shim loads, is not the compiled build (nothing here would hold).
    if not list(installed.rglob("*.so")) or not list(installed.glob("sopdsl__mypyc.*")):
        pytest.fail(f"the wheel pip built has no compiled modules, or not their library: {installed}")
    return installed


def _env(lib: Path) -> dict[str, str]:
    # tests/conftest.py refuses to run a session that asks for compiled modules and imports pure ones.
    return {**os.environ, "PYTHONPATH": str(lib), "SOPDSL_EXPECT_COMPILED": "1"}


# `-P`: the working folder (this tree, with its pure modules) is not put first on the path.
PYTHON = [sys.executable, "-P"]


def test_the_listed_modules_are_compiled_and_imported_from_the_build(build: Path) -> None:
    modules = [name.removesuffix(".py").replace("/", ".") for name in COMPILED]
    assert "sopdsl.engine.engine" in modules and "sopdsl.engine.happenings" in modules
    probe = "import importlib, sys\nfor m in sys.argv[1:]: print(importlib.import_module(m).__file__)"
    done = subprocess.run(
        [*PYTHON, "-c", probe, *modules], env=_env(build), capture_output=True, text=True, check=True
    )
    files = done.stdout.split()
    assert len(files) == len(modules)
    assert all(f.startswith(str(build)) and f.endswith(".so") for f in files), files


def test_the_engine_stages_tests_pass_compiled(build: Path) -> None:
    done = subprocess.run(
        [*PYTHON, "-m", "pytest", "-p", "no:cacheprovider", "-m", "not source", "-x", *SUITES],
        cwd=ROOT,
        env=_env(build),
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert " passed" in done.stdout.splitlines()[-1]


def test_a_dry_run_log_is_the_same_byte_for_byte_compiled_and_pure(build: Path, tmp_path: Path) -> None:
    pure_build = _built(tmp_path / "pure", pure=True)
    assert not list(pure_build.rglob("*.so"))
    timeline = tmp_path / "t.jsonl"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--generate", "3000", "45", "11", str(timeline)],
        check=True,
        capture_output=True,
    )
    command = [*PYTHON, "-m", "sopdsl", "simulate", str(ROOT / "bench" / "reference.sop")]
    command += ["--timeline", str(timeline), "--format", "jsonl", "--jobs", "1"]
    pure = subprocess.run(
        command, env={**os.environ, "PYTHONPATH": str(pure_build)}, capture_output=True, check=True
    ).stdout
    compiled = subprocess.run(command, env=_env(build), capture_output=True, check=True).stdout
    assert pure.count(b"\n") > 1000  # a log with many actions of every kind the reference plays
    assert compiled == pure
