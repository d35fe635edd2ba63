"""The SDK's teardown cannot turn a green run red: a pytest run of a Temporal test, in a process of
its own, exits 0 (workers shut down in their fixtures, the dev server stopped at the end)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_green_temporal_test_run_exits_zero(temporal_server: str) -> None:
    test = "tests/temporal/test_activities.py"
    # `-P` as this run has it: a run of the compiled build keeps the working tree off the path.
    python = [sys.executable, "-P"] if sys.flags.safe_path else [sys.executable]
    command = [*python, "-m", "pytest", "-o", "addopts=", "-p", "no:cacheprovider", test]
    env = {**os.environ, "SOPDSL_REQUIRE_TEMPORAL": "1"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    # Every test of the file passed (however many it holds), and none failed or erred.
    assert re.search(r"\b\d+ passed\b", done.stdout), done.stdout[-3000:] + done.stderr[-3000:]
    assert not re.search(r"\b\d+ (failed|errors?)\b", done.stdout), done.stdout[-3000:]
    assert done.returncode == 0, done.stderr[-3000:]
