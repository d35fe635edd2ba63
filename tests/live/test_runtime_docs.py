"""docs/runtime.md's asyncio example runs as written: an `async def` executor awaited under
`run_async`, a feed through `asyncio.to_thread`, the event's id taken once on a second run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent.parent / "docs" / "runtime.md"


def test_the_asyncio_example_runs_as_written_and_a_second_run_sends_nothing_again(tmp_path: Path) -> None:
    section = DOCS.read_text(encoding="utf-8").split("## Under asyncio", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]

    def run() -> str:
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        return result.stdout

    assert run().startswith("wx_1 <- 张三，欢迎加入！  (key ")
    assert run() == ""
