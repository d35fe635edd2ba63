"""A long dry run shows a progress bar on a terminal (and only there): an operator simulating a
year of a big community sees that it is moving."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

PLAYBOOK = """timezone "Asia/Shanghai"
template welcome = "欢迎 {{ member.name }}"
playbook welcome {
    on member joins
    do { send welcome to member }
}
"""


@pytest.mark.parametrize("jobs", ["1", "2"])  # one process, or two whose first says how far it read
def test_a_big_timeline_shows_a_progress_bar_on_a_terminal(tmp_path: Path, jobs: str) -> None:
    (tmp_path / "w.sop").write_text(PLAYBOOK, encoding="utf-8")
    header = {
        "sopdsl": "timeline",
        "start": "2026-03-01 09:00",
        "end": "2026-03-20 00:00",
        "groups": [{"id": "g1"}],
    }
    lines = [json.dumps(header)]
    lines += [
        json.dumps(
            {
                "at": 1772326800 + i * 60,
                "kind": "join",
                "member": f"m{i}",
                "group": "g1",
                "data": {"name": "x" * 40},
            }
        )
        for i in range(15_000)
    ]
    (tmp_path / "t.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    main, follower = pty.openpty()
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "sopdsl",
                "simulate",
                "w.sop",
                "--timeline",
                "t.jsonl",
                "--format",
                "jsonl",
                "--jobs",
                jobs,
            ],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=follower,
            timeout=300,
            check=False,
        )
        os.close(follower)
        follower = -1
        shown = b""
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the terminal closed once the child exited
                break
            if not chunk:
                break
            shown += chunk
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(main)
    assert result.returncode == 0
    assert len(result.stdout.splitlines()) == 15_000  # the log is untouched by the bar
    text = shown.decode("utf-8", errors="replace")
    assert "simulating" in text and "100%" in text
