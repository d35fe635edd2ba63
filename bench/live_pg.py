"""PostgreSQL workers over HTTP (`bench/live.py --only pg-http`): lists of 50 events, 64 shards, a 5 ms executor.

Workload, printed with the result: `sopdsl run tests/engine_cases/busy.sop --store postgresql://...
--workers N --executor-concurrency C` (N worker processes on one port, SO_REUSEPORT), a fresh
database per run. The executor takes 5 ms an action: with `--executor sleep` (the default) every
action kind goes to a function that sleeps 5 ms (`sopdsl run` started through a two-line launcher
that puts it in place of the log executor, the default without `--executors`; nothing else
differs); with `--executor webhook` to the service's webhook executor (httpx, signed, with its key)
and a stub process answering 200 after 5 ms, which adds httpx's CPU cost (about 0.5 ms an action
here) to the workers'. One separate load-client
process holding `--connections` keep-alive connections, each posting a JSON list of 50 events
(busy.sop's kinds: joins, messages, orders, leaves; unique ids; no `time`, so "now") to
`POST /events?shard=sNN`, the shards (communities) taken in turn from 64, and waiting for the
202 before its next list. Each answer comes after the transaction holding its events committed.
After `--warmup` seconds, lists are counted for `--seconds`; then the load stops and the bench
waits until every journaled entry is applied and every action is executed and marked done.
Events/s handled durably = events answered in the window / (window + that drain). Latency
percentiles are per list. CPU time per event is given for each process: the workers (their
supervisor included), the PostgreSQL backends of the run's database, the webhook stub and the
load client.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.http_load import Poster

ROOT = Path(__file__).resolve().parent.parent
PLAYBOOK = ROOT / "tests" / "engine_cases" / "busy.sop"
GROUPS = ["g_north", "g_south"]
KINDS = ["join", "join", "message", "message", "order", "leave"]
_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_of(pid: int) -> float:
    """Seconds of CPU (user + system) a process has used so far; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def children_of(pid: int) -> list[int]:
    """The direct children of a process."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


# ---- the webhook stub --------------------------------------------------------------------------------


class _Stub(asyncio.Protocol):
    """Answers each request 200 after `delay` seconds, one at a time per connection (as httpx sends them)."""

    served = 0

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            at = head.find(b"content-length:")
            length = (
                int(head[at + 15 : head.find(b"\r\n", at) if head.find(b"\r\n", at) > 0 else None])
                if at >= 0
                else 0
            )
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            asyncio.get_running_loop().call_later(self.delay, self.answer)

    def answer(self) -> None:
        _Stub.served += 1
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")


def _stub(delay: float, ready: Any) -> None:
    import uvloop

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(lambda: _Stub(delay), "127.0.0.1", 0)
        ready.put(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    uvloop.run(main())


# ---- the load client ---------------------------------------------------------------------------------


class _Poster(Poster):
    """One keep-alive connection posting a list of `size` events at a time to shards in turn."""

    def __init__(
        self, slot: int, port: int, size: int, shards: int, begin: float, end: float, done: Any
    ) -> None:
        super().__init__(slot, port, begin, end, done)
        self.rng = random.Random(slot)
        self.size, self.shards = size, shards
        self.events = 0  # answered 202 within the window

    def request(self) -> tuple[str, bytes]:
        shard = (self.slot * 7 + self.number) % self.shards
        parts = []
        for n in range(self.size):
            kind = self.rng.choice(KINDS)
            data = ',"data":{"amount":99}' if kind == "order" else ""
            parts.append(
                f'{{"id":"c{self.slot}-{self.number}-{n}","kind":"{kind}",'
                f'"member":"m{self.slot}-{self.rng.randrange(2000)}","group":"{self.rng.choice(GROUPS)}"{data}}}'
            )
        return f"/events?shard=s{shard:02d}", ("[" + ",".join(parts) + "]").encode()

    def answered(self, now: float) -> None:
        if self.sent_at >= self.begin and now <= self.end:
            self.latencies.append(now - self.sent_at)
            self.events += self.size


def _client(port: int, options: dict[str, Any], out: Any) -> None:
    import uvloop

    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        start = time.monotonic()
        begin = start + options["warmup"]
        end = begin + options["seconds"]
        made = []
        for slot in range(options["connections"]):
            done = loop.create_future()
            _, protocol = await loop.create_connection(
                lambda slot=slot, done=done: _Poster(
                    slot, port, options["size"], options["shards"], begin, end, done
                ),
                "127.0.0.1",
                port,
            )
            made.append(protocol)
        await asyncio.gather(*(c.done for c in made))
        return {
            "latencies": [t for c in made for t in c.latencies],
            "events": sum(c.events for c in made),
            "errors": sum(c.errors for c in made),
        }

    out.put(uvloop.run(main()))


# ---- one run -----------------------------------------------------------------------------------------


def _database(admin_url: str) -> tuple[str, str]:
    import psycopg

    name = f"pgworkers_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + f"/{name}", name


def _drop(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _backends(conn: Any, name: str) -> list[int]:
    rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,)).fetchall()
    return [int(r[0]) for r in rows if int(r[0]) != conn.info.backend_pid]


def _drained(conn: Any) -> bool:
    """Every journaled entry applied and no action left to execute."""
    behind = conn.execute("SELECT COUNT(*) FROM sopdsl_shards WHERE head > applied").fetchone()[0]
    pending = conn.execute("SELECT COUNT(*) FROM sopdsl_outbox WHERE status = 'pending'").fetchone()[0]
    return int(behind) == 0 and int(pending) == 0


# `sopdsl run` with a 5 ms sleep in place of the log executor, the default when no --executors is given.
_LAUNCHER = """
import sys, time
from sopdsl.kinds import ACTIONS
from sopdsl.live import command
command.default_executors = lambda zone: dict.fromkeys(ACTIONS, lambda action, key: time.sleep({delay}))
from sopdsl.cli import main
sys.argv[0] = "sopdsl"
main()
"""


def measure(admin_url: str, workers: int, options: dict[str, Any]) -> dict[str, Any]:
    """One run of the workload with `workers` worker processes; events/s, latencies, CPU per event."""
    import psycopg

    ctx = multiprocessing.get_context("spawn")
    url, name = _database(admin_url)
    ready = ctx.Queue()
    stub = ctx.Process(target=_stub, args=(options["executor_ms"] / 1000, ready), daemon=True)
    stub.start()
    stub_port = ready.get(timeout=60)
    service = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            executors = Path(tmp) / "executors.yaml"
            executors.write_text(
                f"default:\n  webhook: http://127.0.0.1:{stub_port}/sopdsl\n"
                "  secret_env: SOPDSL_BENCH_SECRET\n  retries: 0\n"
            )
            env = {**os.environ, "SOPDSL_BENCH_SECRET": "bench-secret-0123456789"}
            webhook = options["executor"] == "webhook"
            launch = (
                ["-m", "sopdsl"] if webhook else ["-c", _LAUNCHER.format(delay=options["executor_ms"] / 1000)]
            )
            command = [
                sys.executable, *launch, "run", str(PLAYBOOK), "--store", url,
                "--workers", str(workers), "--worker", "bench",
                "--executor-concurrency", str(options["concurrency"]),
                *(["--executors", str(executors)] if webhook else []), "--insecure-no-auth", "--port", "0",
            ]  # fmt: skip
            service = subprocess.Popen(
                command, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
            )
            port = _port(service)
            out = ctx.Queue()
            client = ctx.Process(target=_client, args=(port, options, out))
            with psycopg.connect(url, autocommit=True) as conn:
                time.sleep(1.0)  # every worker listening
                load_before = os.getloadavg()[0]
                client.start()
                time.sleep(options["warmup"])
                # PostgreSQL's backends of this database (one store connection per worker) and the rest.
                watched = {
                    "workers": [service.pid, *children_of(service.pid)],
                    "postgres": _backends(conn, name),
                }
                watched["stub"], watched["client"] = [stub.pid or 0], [client.pid or 0]
                began_cpu = {k: sum(cpu_of(p) for p in v) for k, v in watched.items()}
                began = time.monotonic()
                found = out.get(timeout=options["seconds"] + 120)
                window_end = time.monotonic()
                load_after = os.getloadavg()[0]
                while not _drained(conn):
                    time.sleep(0.05)
                    if time.monotonic() - window_end > 300:
                        raise SystemExit("the outbox did not drain within 300 s")
                drained = time.monotonic()
                used = {k: sum(cpu_of(p) for p in v) - began_cpu[k] for k, v in watched.items()}
                executed = conn.execute(
                    "SELECT COUNT(*) FROM sopdsl_outbox WHERE status = 'done'"
                ).fetchone()[0]
                events_in = conn.execute("SELECT COALESCE(SUM(events), 0) FROM sopdsl_shards").fetchone()[0]
                held = conn.execute(
                    "SELECT lease_owner, COUNT(*) FROM sopdsl_shards GROUP BY lease_owner ORDER BY 1"
                ).fetchall()
            client.join()
    finally:
        if service is not None:
            service.terminate()
            service.wait(timeout=60)
        stub.terminate()
        _drop(admin_url, name)
    latencies = sorted(found["latencies"])
    events = found["events"]
    window = window_end - began
    drain = drained - window_end

    def pct(p: float) -> float:
        return (
            round(latencies[min(len(latencies) - 1, int(len(latencies) * p / 100))] * 1000, 1)
            if latencies
            else 0.0
        )

    return {
        "workers": workers,
        "executor": options["executor"],
        "concurrency": options["concurrency"],
        "events": events,
        "window_seconds": round(window, 2),
        "drain_seconds": round(drain, 2),
        "answered_per_second": round(events / window),
        "events_per_second": round(events / (window + drain)),
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "errors": found["errors"],
        "events_journaled_total": int(events_in),
        "actions_executed_total": int(executed),
        "cpu_us_per_event": {k: round(v * 1e6 / events) if events else 0 for k, v in used.items()},
        "shards_held": {str(owner): int(count) for owner, count in held},
        "load_average": [round(load_before, 2), round(load_after, 2)],
    }


def _port(service: subprocess.Popen[str]) -> int:
    """The port the service prints at start (`listening on http://127.0.0.1:PORT`)."""
    assert service.stderr is not None
    deadline = time.monotonic() + 120
    seen = []
    while time.monotonic() < deadline:
        line = service.stderr.readline()
        if not line:
            raise SystemExit("the service stopped at start:\n" + "".join(seen))
        seen.append(line)
        found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if found:
            # Keep reading its stderr, so it never blocks on a full pipe.
            import threading

            threading.Thread(target=lambda: [None for _ in service.stderr], daemon=True).start()  # type: ignore[union-attr]
            return int(found.group(1))
    raise SystemExit("the service did not start within 120 s")


def describe(row: dict[str, Any]) -> str:
    """The result of one run, with its workload, in a few lines."""
    cpu = row["cpu_us_per_event"]
    return (
        f"pg http  {row['workers']} worker{'s' if row['workers'] > 1 else ' '} ({row['executor']} executor, "
        f"concurrency {row['concurrency']} each): {row['events_per_second']:>6} events/s durably "
        f"({row['answered_per_second']} answered/s; drain {row['drain_seconds']} s after the "
        f"{row['window_seconds']} s window)  p50 {row['p50_ms']} ms  p99 {row['p99_ms']} ms per list  "
        f"{row['errors']} errors\n"
        f"         CPU per event: workers {cpu['workers']} us, postgres {cpu['postgres']} us, "
        f"webhook stub {cpu['stub']} us, client {cpu['client']} us; "
        f"shards held {json.dumps(row['shards_held'])}; load average {row['load_average'][0]} before, "
        f"{row['load_average'][1]} after"
    )
