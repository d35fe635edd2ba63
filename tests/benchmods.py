"""The bench's modules for tests: bench/ is a folder of scripts, not a package."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parent.parent / "bench"


def bench(module: str) -> ModuleType:
    """A module of bench/ (careful, simple, generate, compiled, ...), imported by its file name."""
    sys.path.insert(0, str(BENCH))
    try:
        return importlib.import_module(module)
    finally:
        sys.path.remove(str(BENCH))
