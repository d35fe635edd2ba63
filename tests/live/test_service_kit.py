"""runtime/: the service kit. Its script starts `sopdsl run` against a local PostgreSQL for real;
the example executors file and the systemd unit are what the docs tell people to copy."""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from livestores import ADMIN_URL

ROOT = Path(__file__).resolve().parent.parent.parent
KIT = ROOT / "runtime"
TOKEN = "kit-token-0123456789abcdef"


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append({"path": self.path, "body": json.loads(body), "headers": dict(self.headers)})
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def bot() -> Iterator[int]:
    """A stand-in bot on a free port, receiving the example executors' webhooks."""
    _Hook.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


def test_the_kit_holds_no_python_and_its_files_are_there() -> None:
    assert not list(KIT.glob("*.py"))
    assert {p.name for p in KIT.iterdir()} >= {"executors.yaml", "sopdsl.service", "run-postgres.sh"}
    unit = (KIT / "sopdsl.service").read_text(encoding="utf-8")
    assert "ExecStart=" in unit and "ExecReload=/bin/kill -HUP $MAINPID" in unit
    # A stable worker name: restarted after a crash, the service takes its own leases back at once.
    [start] = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    assert start.endswith(" --worker %H-1")
    assert os.access(KIT / "run-postgres.sh", os.X_OK)


def test_run_postgres_starts_the_service_and_it_takes_events(
    postgres_db: str,  # skips, with the reason, where no server answers; fails in CI
    bot: int,
    tmp_path: Path,
) -> None:
    if shutil.which("psql") is None:
        pytest.skip("the script needs the psql client, which is not installed")
    database = f"sopdsl_kit_{uuid.uuid4().hex[:8]}"
    # The example executors, pointed at the stand-in bot (the file says 127.0.0.1:9000).
    executors = tmp_path / "executors.yaml"
    executors.write_text(
        (KIT / "executors.yaml").read_text(encoding="utf-8").replace(":9000/", f":{bot}/"), encoding="utf-8"
    )
    host, port = re.match(r"postgresql://[^@]*@([^:/]+):(\d+)/", ADMIN_URL).groups()  # type: ignore[union-attr]
    env = {
        **os.environ,
        "PGHOST": host,
        "PGPORT": port,
        "SOPDSL_DB": database,
        "PORT": "0",
        "SOPDSL": str(Path(sys.executable).parent / "sopdsl"),
        "EXECUTORS": str(executors),
        "SOPDSL_WEBHOOK_SECRET": "s3cret",
        "SOPDSL_TOKENS": f"{TOKEN} *",  # `sopdsl run` refuses to start without tokens
    }
    process = subprocess.Popen(
        [str(KIT / "run-postgres.sh"), "playbooks/J1_welcome_ritual.sop"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        url = None
        deadline = time.monotonic() + 60
        lines = []
        while url is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
            lines.append(line)
            found = re.search(r"listening on (http://\S+)", line)
            url = found.group(1) if found else None
        assert url is not None, "".join(lines)
        assert f"created database {database}" in "".join(lines)
        assert "store postgresql://postgres@" in "".join(lines)
        with urllib.request.urlopen(f"{url}/health", timeout=10) as answer:
            assert json.load(answer)["status"] == "ok"
        event = {"kind": "join", "member": "wx_1", "group": "riders1", "data": {"name": "阿峰"}}
        request = urllib.request.Request(
            f"{url}/events",
            json.dumps(event).encode(),
            {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 202
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        # The event is in the database the script created.
        base = ADMIN_URL.rsplit("/", 1)[0]
        with psycopg.connect(f"{base}/{database}") as conn:
            [(events,)] = conn.execute("SELECT COALESCE(SUM(events), 0) FROM sopdsl_shards").fetchall()
        assert events == 1
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _started(env: dict[str, str], playbook: Path) -> tuple[subprocess.Popen[str], str, str]:
    """run-postgres.sh started with `env`: the process, its URL, and what it said until listening."""
    process = subprocess.Popen(
        [str(KIT / "run-postgres.sh"), str(playbook)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        lines.append(line)
        found = re.search(r"listening on (http://\S+)", line)
        if found:
            return process, found.group(1), "".join(lines)
    process.kill()
    raise AssertionError("".join(lines))


def _joined(url: str, member: str) -> dict[str, Any]:
    event = {"kind": "join", "member": member, "group": "g1", "data": {"name": "阿峰"}}
    request = urllib.request.Request(
        f"{url}/events",
        json.dumps(event).encode(),
        {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 202
        body: dict[str, Any] = json.load(answer)
        return body


def test_run_postgres_started_again_after_a_crash_takes_its_shard_back_at_once(
    postgres_db: str,
    bot: int,
    tmp_path: Path,
) -> None:
    """The script names its worker the same at every start (host name and index), so after a
    crash the service started again applies events at once, instead of waiting out its own lease."""
    if shutil.which("psql") is None:
        pytest.skip("the script needs the psql client, which is not installed")
    database = f"sopdsl_kit_{uuid.uuid4().hex[:8]}"
    executors = tmp_path / "executors.yaml"
    executors.write_text(
        (KIT / "executors.yaml").read_text(encoding="utf-8").replace(":9000/", f":{bot}/"), encoding="utf-8"
    )
    host, port = re.match(r"postgresql://[^@]*@([^:/]+):(\d+)/", ADMIN_URL).groups()  # type: ignore[union-attr]
    env = {
        **os.environ,
        "PGHOST": host,
        "PGPORT": port,
        "SOPDSL_DB": database,
        "PORT": "0",
        "SOPDSL": str(Path(sys.executable).parent / "sopdsl"),
        "EXECUTORS": str(executors),
        "SOPDSL_WEBHOOK_SECRET": "s3cret",
        "SOPDSL_TOKENS": f"{TOKEN} *",
    }
    playbook = tmp_path / "welcome.sop"
    playbook.write_text(
        'timezone "Asia/Shanghai"\ntemplate hi = "欢迎 {{ member.name }}"\n'
        "playbook welcome { on member joins do { send hi to member } }\n",
        encoding="utf-8",
    )
    first, url, said = _started(env, playbook)
    again: subprocess.Popen[str] | None = None
    try:
        assert re.search(r"sopdsl run as worker \S+-1: ", said), said
        assert _joined(url, "wx_1")["actions"]  # this process holds the shard's lease now
        first.kill()  # a crash: the lease is not given up
        first.wait(timeout=30)
        again, url, said = _started(env, playbook)
        assert [a["status"] for a in _joined(url, "wx_2")["actions"]] == ["queued"]
        again.send_signal(signal.SIGTERM)
        assert again.wait(timeout=30) == 0
        assert again.stderr is not None
        assert "held by another worker's lease" not in said + again.stderr.read()
    finally:
        for process in (first, again):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
