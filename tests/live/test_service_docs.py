"""docs/service.md's admin API examples, run as written: the playbook beside them is served by a real
`sopdsl run`, and each `sh` block runs in bash with curl against it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
TOKEN = "s3cr3t-bot-token-0f9e8d7c6b5a"


def admin_section() -> str:
    text = (ROOT / "docs" / "service.md").read_text(encoding="utf-8")
    return text.split("## The admin API", 1)[1].split("\n## ", 1)[0]


def blocks(section: str, info: str) -> list[str]:
    return re.findall(rf"^```{info}\n(.*?)^```$", section, flags=re.M | re.S)


def test_the_setup_block_names_the_token_the_examples_use() -> None:
    [setup] = blocks(admin_section(), "sh setup")
    assert f"TOKEN={TOKEN}" in setup and "URL=http://127.0.0.1:8080" in setup


@pytest.mark.skipif(shutil.which("curl") is None, reason="the examples use curl, which is not installed")
def test_the_admin_examples_run_as_written(tmp_path: Path) -> None:
    section = admin_section()
    [playbook] = blocks(section, "sop")
    examples = blocks(section, "sh")
    assert len(examples) == 5
    (tmp_path / "admin.sop").write_text(playbook, encoding="utf-8")
    env = {**os.environ, "SOPDSL_TOKENS": f"{TOKEN} default"}
    process = subprocess.Popen(
        [sys.executable, "-m", "sopdsl", "run", "admin.sop", "--store", "sqlite:///state.db", "--port", "0"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        found = re.search(r"listening on (http://\S+)", line)
        assert found is not None, line + process.stderr.read()
        outputs = []
        for example in examples:
            run = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", example],
                cwd=tmp_path,
                env={**env, "URL": found.group(1), "TOKEN": TOKEN},
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert run.returncode == 0, f"{example}\n{run.stdout}\n{run.stderr}"
            outputs.append(run.stdout)
    finally:
        process.terminate()
        process.communicate(timeout=30)
    group = json.loads(outputs[0])["group"]
    assert (group["tags"], group["operator"]) == (["normal"], "小美")
    state = json.loads(outputs[1].splitlines()[-1])
    assert [t["playbook"] for t in state["timers"]] == ["birthday"]
    assert state["timers"][0]["due"].endswith("-03-10T09:00:00+08:00")
    # An id holding a `/`, percent-encoded in the path (the third example).
    put, got, encoded = outputs[2].splitlines()
    assert json.loads(put)["member"]["id"] == json.loads(got)["member"]["id"] == "wx/abc"
    assert json.loads(got)["member"]["name"] == "李雷" and encoded == "wm%2FAb%2Bc%3D%3D"
    assert json.loads(outputs[3]) == {"imported": 2, "failed": []}
    [task] = json.loads(next(line for line in outputs[4].splitlines() if '"tasks"' in line))["tasks"]
    assert (task["to"], task["assignee"], task["status"], task["template"]) == (
        "operator",
        "小美",
        "open",
        "warn",
    )
    assert task["message"] == "李四，群里请勿发广告，再犯会被移出群" and task["escalated_to"] is None
    done = json.loads(outputs[4].splitlines()[-1])
    assert [(a["template"], a["member"], a["status"]) for a in done["actions"]] == [
        ("thanks", "wx_002", "queued")
    ]
