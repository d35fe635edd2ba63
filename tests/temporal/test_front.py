"""`sopdsl run --engine temporal://...`: events over the same HTTP API reach the shard's workflow,
its worker's executor carries the actions out, and a SIGTERM stops the process with exit code 0
(the SDK's teardown does not turn a clean stop into a failure)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

PLAYBOOK = """
timezone "UTC"
template hello = "hi {{ member.name }}"
playbook welcome {
    on member joins
    do { send hello to member }
}
"""


def test_sopdsl_run_forwards_http_events_to_temporal_and_stops_cleanly(
    temporal_server: str, tmp_path: Path
) -> None:
    source = tmp_path / "welcome.sop"
    source.write_text(PLAYBOOK)
    out = tmp_path / "actions.jsonl"
    command = [
        sys.executable,
        "-m",
        "sopdsl",
        "run",
        str(source),
        "--engine",
        f"temporal://{temporal_server}",
    ]
    command += ["--port", "0", "--insecure-no-auth", "--shard", "http"]
    process = subprocess.Popen(command, stdout=out.open("wb"), stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        url = None
        for line in process.stderr:
            found = re.search(r"listening on (http://\S+)", line)
            if found:
                url = found.group(1)
                break
        assert url is not None, "sopdsl run did not start"
        with httpx.Client(base_url=url, timeout=30) as http:
            answer = http.post("/events", json=[{"id": "a", "kind": "join", "member": "m1", "group": "g1"}])
            assert answer.status_code == 202 and answer.json()["accepted"] == 1
            bad = http.post("/events", json={"kind": "join", "group": "g1"})
            assert bad.status_code == 400 and bad.json()["field"] == "member"
        deadline = time.monotonic() + 30
        while not out.read_text().endswith("\n") and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    actions = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(a["kind"], a["member"], a["text"], a["idempotency_key"][:5]) for a in actions] == [
        ("send", "m1", "hi m1", "http/")
    ]
    assert code == 0
