"""examples/welcome_bot as a bot developer runs it with a store kept in a file, twice (as its
README's variations suggest): the second run sends nothing again and ends without a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BOT = Path(__file__).resolve().parent.parent.parent / "examples" / "welcome_bot" / "bot.py"


def run_bot(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(BOT), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def test_the_example_bot_run_again_on_its_sqlite_store_sends_nothing_twice(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'welcome.db'}"
    first = run_bot("--store", store).splitlines()
    assert len(first) == 9 and first[-1] == "events in: 4, actions out: 8"
    assert run_bot("--store", store).splitlines() == ["events in: 4, actions out: 8"]
