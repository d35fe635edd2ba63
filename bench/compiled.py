"""The compiled build: this tree built as `pip install .` builds it (setup.py compiles the modules
pyproject.toml lists with mypyc). The bench measures it, kept in bench/results/build/ under a key
of every source file it is made of (an unchanged tree is built once). tests/test_compiled.py
tests the wheel pip builds (tests/wheelbuild.py), and builds its pure tree here."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILDS = ROOT / "bench" / "results" / "build"
_FILES = ("setup.py", "pyproject.toml", "README.md")


class BuildError(Exception):
    """setup.py failed, or built no compiled module where it was asked to."""


def put_first_on_path() -> None:
    """Put the compiled build that `SOPDSL_BENCH_LIB` names first on the path, where it names one;
    exit saying so where its folder holds no build. A build of newer source deletes the older
    one's folder, and the pure tree would otherwise be measured in its place, unnoticed."""
    lib = os.environ.get("SOPDSL_BENCH_LIB")
    if not lib:
        return
    if not any(Path(lib).glob("sopdsl__mypyc*")):
        raise SystemExit(
            f"SOPDSL_BENCH_LIB={lib} holds no compiled build (bench/compiled.py keeps only the newest:"
            " copy a build aside to compare it)"
        )
    sys.path.insert(0, lib)


def build_tree(folder: Path, *, pure: bool = False) -> Path:
    """This tree copied into `folder` and built there by setup.py, compiled unless `pure`: the
    folder holding the built package, to put first on the path."""
    source = folder / "src"
    source.mkdir(parents=True)
    for name in ("sopdsl", "grammar"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    for name in _FILES:
        shutil.copy2(ROOT / name, source / name)
    env = {k: v for k, v in os.environ.items() if k != "SOPDSL_PURE"}
    if pure:
        env["SOPDSL_PURE"] = "1"
    done = subprocess.run(
        [sys.executable, "setup.py", "-q", "build", "--build-base", "out"],
        cwd=source,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    found = list((source / "out").glob("lib*"))
    if done.returncode != 0 or len(found) != 1:
        raise BuildError(f"setup.py build failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    if not pure and not list(found[0].rglob("*.so")):
        raise BuildError(f"setup.py build compiled nothing (is there a C compiler?):\n{done.stderr[-3000:]}")
    # setup.py keeps all of the extensions or none; the library every shim loads is checked anyway,
    # since a build without it would fail at every compiled import.
    if not pure and not list(found[0].glob("sopdsl__mypyc.*")):
        raise BuildError(f"setup.py build left out the compiled modules' library:\n{done.stderr[-6000:]}")
    return found[0]


def _key() -> str:
    digest = hashlib.sha256(metadata.version("mypy").encode())
    for path in sorted([*(ROOT / "sopdsl").rglob("*.py"), *(ROOT / "grammar").iterdir()]):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    for name in _FILES:
        digest.update(name.encode() + b"\0" + (ROOT / name).read_bytes())
    return digest.hexdigest()[:16]


def compiled_lib() -> Path:
    """The compiled build of the tree as it is now (built if missing), for the bench's runs."""
    folder = BUILDS / _key()
    found = list((folder / "src" / "out").glob("lib.*"))
    if found:
        return found[0]
    shutil.rmtree(BUILDS, ignore_errors=True)  # earlier trees' builds
    print("building the compiled modules (mypyc, about a minute) ...", flush=True)
    try:
        return build_tree(folder)
    except BuildError as exc:
        raise SystemExit(f"{exc}\n(python -m bench --pure measures without the compiled build)") from None
