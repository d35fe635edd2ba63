"""What the exhaustiveness tests share: find the `assert_never` calls of some modules, run mypy
with widened shadow copies of the modules that declare the closed sets, and read which calls it
reported. A dispatch that lets a new member through is one mypy does not report."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_REPORTED = re.compile(
    r'^(sopdsl/[\w/]+\.py):(\d+): error: Argument 1 to "assert_never" has incompatible type', re.M
)

Site = tuple[str, int]  # (path from the repository root, line)


def assert_never_sites(
    paths: Iterable[Path], wanted: Callable[[ast.Call], bool] = lambda call: True
) -> dict[Site, tuple[str, str]]:
    """Every `assert_never(...)` call in `paths` that `wanted` keeps: (path, line) -> (module, function)."""
    sites: dict[Site, tuple[str, str]] = {}
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef):
                continue
            for node in ast.walk(function):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id == "assert_never"
                    and wanted(node)
                ):
                    sites[(path.relative_to(ROOT).as_posix(), node.lineno)] = (path.stem, function.name)
    return sites


def reported_with_shadows(widened: dict[Path, str], work: Path) -> tuple[set[Site], str]:
    """Run mypy (the project's configuration) with each file replaced by its widened text; the
    `assert_never` calls it reports, and its output."""
    shadows: list[str] = []
    for original, text in widened.items():
        shadow = work / original.name
        shadow.write_text(text, encoding="utf-8")
        shadows += ["--shadow-file", str(original), str(shadow)]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(work / "cache"),
            *shadows,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if "error:" not in result.stdout:
        pytest.fail(f"mypy found nothing to report:\n{result.stdout}\n{result.stderr}")
    return {(path, int(line)) for path, line in _REPORTED.findall(result.stdout)}, result.stdout
