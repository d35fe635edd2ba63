"""The wheel pip builds from this tree, built once a test session and installed once.

`pip wheel` builds it as `pip install .` does (an isolated build; setup.py compiles the modules
pyproject.toml lists with mypyc where a C compiler is found), from a copy of the working tree, so
a stale `build/` folder cannot leak old files into it. tests/cli/test_packaging.py checks the
wheel and the installed copy; tests/test_compiled.py runs the engine stages' tests against the
installed copy's compiled modules. One mypyc build a session serves both.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "tests", "bench", "playbooks"
)


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `pip wheel` builds from a copy of this tree (compiled where a C compiler is found)."""
    work = tmp_path_factory.mktemp("packaging")
    tree = work / "src"
    shutil.copytree(ROOT, tree, symlinks=True, ignore=_NOT_SOURCE)
    out = work / "dist"
    # SOPDSL_PURE would make setup.py skip mypyc: the wheel is the one `pip install .` builds.
    env = {k: v for k, v in os.environ.items() if k != "SOPDSL_PURE"}
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(tree)],
        check=True,
        capture_output=True,
        env=env,
        timeout=300,
    )
    (found,) = out.glob("sopdsl-*.whl")
    return found


@pytest.fixture(scope="session")
def installed_wheel(built_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder `pip install --target` installs the wheel into, to put first on the path."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(built_wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return target
