"""Live-runtime benchmark: events handled per second, durably, with SQLite and PostgreSQL workers.

Run: `.venv/bin/python bench/live.py` (options: `--events N`, `--workers 1,2,4`, `--postgres URL`,
`--executor-ms MS`, `--runs N` (best kept), `--quick`). Results are printed and written to `bench/results/live.json`.

Each worker process feeds its share of a busy timeline (tests/engine_cases/busy.sop: joins,
posts, orders, leaves; splits, tags, caps, quiet hours) through `Runtime.feed`, one event per
transaction (journal, engine, outbox), dispatching the outbox to a no-op executor every 50 events
and at the end; so "handled" means journaled, applied, and its actions executed and marked done.
SQLite is one worker in WAL mode with `synchronous=FULL`; PostgreSQL runs 1, 2 and 4 workers on
one database, each owning its own shards (communities), all sharing one outbox: once with an
executor that returns at once (the runtime's own cost), once with one that takes `--executor-ms`
per action (waiting on a chat platform's API, where several workers pay off).

Claim latency (`--claim-sizes`, `--only claims`): how long `Store.claim` takes, at the median and
the 99th percentile, once the outbox holds 0, 50,000 and 100,000 finished rows, for SQLite and
PostgreSQL. To reach those sizes in seconds, rows are inserted in bulk through the store API
(`Store.apply` with a step that only returns rows), then claimed and finished as `done`, as a
dispatcher does; no engine runs (busy.sop's timeline gives about one dispatched row per 1.3
events). Measured twice at each size: a claim that finds nothing due (what an idle dispatcher's
poll costs) and a claim of a 20-row batch.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT))

START = 1_772_294_400  # 2026-03-01 00:00 in Shanghai
HOUR = 3600


def timeline(seed: int, events: int) -> dict[str, Any]:
    """A busy timeline over five days for busy.sop (the same shape as tests/test_crash.py's)."""
    rng = random.Random(seed)
    old = [f"old{i:02d}" for i in range(12)]
    new = [f"new{i:03d}" for i in range(max(40, events // 4))]
    groups = ["g_north", "g_south"]
    members = [
        {"id": m, "groups": [rng.choice(groups)], "tags": rng.sample(["core", "koc", "x"], 1)} for m in old
    ]
    moment = START
    body = []
    for index in range(events):
        moment += rng.randint(0, max(1, int(5 * 24 * HOUR / events) * 2))
        kind = rng.choice(["join", "join", "message", "message", "order", "leave"])
        event: dict[str, Any] = {
            "id": f"e{index}",
            "kind": kind,
            "time": moment,
            "member": rng.choice(new + old),
            "group": rng.choice(groups),
        }
        if kind == "order":
            event["data"] = {"amount": 99}
        body.append(event)
    return {"groups": groups, "members": members, "events": body, "end": moment + 24 * HOUR}


def _worker(
    url: str,
    plan_text: str,
    shards: list[str],
    events: int,
    index: int,
    ready: Any,
    go: Any,
    delay: float,
    batch: int = 1,
) -> None:
    """Feed `events` events spread over `shards`, dispatching as it goes; report via exit code."""
    try:
        _work(url, plan_text, shards, events, index, ready, go, delay, batch)
    except BaseException:
        ready.abort()  # the parent stops at once instead of waiting for this worker
        raise


def _work(
    url: str,
    plan_text: str,
    shards: list[str],
    events: int,
    index: int,
    ready: Any,
    go: Any,
    delay: float,
    batch: int,
) -> None:
    from sopdsl.live.dispatch import ACTION_KINDS
    from sopdsl.live.runtime import ManualClock, Runtime
    from sopdsl.plan import loads

    plan = loads(plan_text)

    def execute(action: Any, key: str) -> None:
        if delay:
            time.sleep(delay)  # an executor waiting on a chat platform's API

    executors = dict.fromkeys(ACTION_KINDS, execute)
    per_shard = max(1, events // len(shards))
    runtimes = []
    lines = []
    for n, shard in enumerate(shards):
        line = timeline(1000 * index + n, per_shard)
        clock = ManualClock(START)
        rt = Runtime(plan, url, executors=executors, clock=clock, shard=shard, worker=f"bench-{index}")
        for group in line["groups"]:
            rt.add_group(group, tags=["normal"])
        for member in line["members"]:
            rt.add_member(member["id"], groups=member["groups"], tags=member["tags"])
        runtimes.append(rt)
        lines.append(line)
    ready.wait(timeout=300)
    go.wait(timeout=60)
    fed = 0
    for first in range(0, per_shard, batch):
        for rt, line in zip(runtimes, lines, strict=True):
            chunk = line["events"][first : first + batch]
            rt.clock.set(chunk[-1]["time"])  # type: ignore[attr-defined]
            if batch == 1:
                rt.feed(chunk[0])
            else:
                rt.feed_many(chunk)  # one transaction for the burst
            before, fed = fed, fed + len(chunk)
            if fed // 50 != before // 50:
                rt.dispatch()
    for rt, line in zip(runtimes, lines, strict=True):
        rt.clock.set(line["end"])  # type: ignore[attr-defined]
        rt.tick(line["end"])
        rt.close()


def measure(
    url: str,
    plan_text: str,
    workers: int,
    events: int,
    shards_per_worker: int,
    delay: float = 0.0,
    batch: int = 1,
) -> dict[str, Any]:
    """Run `workers` processes feeding `events` events in all; the events per second, and the totals."""
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Barrier(workers + 1)
    go = ctx.Barrier(workers + 1)
    procs = []
    for index in range(workers):
        shards = [f"w{index}s{n}" for n in range(shards_per_worker)]
        proc = ctx.Process(
            target=_worker, args=(url, plan_text, shards, events // workers, index, ready, go, delay, batch)
        )
        proc.start()
        procs.append(proc)
    try:
        ready.wait(timeout=300)  # a worker that fails to start breaks the barrier instead of hanging
        began = time.perf_counter()
        go.wait(timeout=60)
    except threading.BrokenBarrierError:
        for proc in procs:
            proc.terminate()
        raise SystemExit("a worker failed to start") from None
    for proc in procs:
        proc.join()
        if proc.exitcode != 0:
            raise SystemExit(f"a worker failed (exit code {proc.exitcode})")
    took = time.perf_counter() - began
    from sopdsl.live.store import open_store

    store = open_store(url)
    stats = store.stats()
    store.close()
    return {
        "workers": workers,
        "batch": batch,
        "events": stats["events_in"],
        "actions_executed": stats["actions_out"],
        "seconds": round(took, 2),
        "events_per_second": round(stats["events_in"] / took),
        "actions_per_second": round(stats["actions_out"] / took),
    }


def claim_latency(url: str, sizes: list[int], probes: int = 200) -> list[dict[str, Any]]:
    """Claim latency (ms, p50 and p99) after the outbox holds each of `sizes` finished rows."""
    from sopdsl.live.store import DONE, Batch, OutboxRow, open_store

    store = open_store(url)
    store.ensure_shard("s", start=0, seed=0, plan_hash="bench")
    made = 0

    def insert(count: int) -> None:
        nonlocal made
        rows = [
            OutboxRow("s", f"k{made + i}", f"m{(made + i) % 997}", "send", {"n": made + i}, next_at=0)
            for i in range(count)
        ]
        made += count
        store.apply("s", [], lambda *_: Batch(rows=rows), since=0, worker="w", wall=time.time(), lease=60)

    def finish(rows: list[Any]) -> None:
        for row in rows:
            row.status, row.attempts = DONE, 1
        store.finish(rows, "w")

    def timed(limit: int) -> tuple[float, list[Any]]:
        began = time.perf_counter()
        rows = store.claim("w", time.time(), 10, 60, limit)
        return (time.perf_counter() - began) * 1000, rows

    results = []
    for size in sizes:
        began = time.perf_counter()
        while made < size:
            insert(min(1000, size - made))
            while rows := store.claim("w", time.time(), 10, 60, 200):
                finish(rows)
        filled = time.perf_counter() - began
        empty = sorted(timed(20)[0] for _ in range(5 * probes))
        insert(20 * probes)
        batch = []
        for _ in range(probes):
            took, rows = timed(20)
            batch.append(took)
            finish(rows)
        batch.sort()
        results.append(
            {
                "finished_rows": size,
                "fill_seconds": round(filled, 1),
                "empty_p50_ms": _pct(empty, 50),
                "empty_p99_ms": _pct(empty, 99),
                "batch_p50_ms": _pct(batch, 50),
                "batch_p99_ms": _pct(batch, 99),
            }
        )
    store.close()
    return results


def _pct(sorted_ms: list[float], pct: int) -> float:
    return round(sorted_ms[min(len(sorted_ms) - 1, len(sorted_ms) * pct // 100)], 3)


def _fresh_postgres(admin_url: str) -> tuple[str, str]:
    import psycopg

    name = f"sopdsl_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + f"/{name}", name


def _drop_postgres(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000, help="events in all, per configuration")
    parser.add_argument("--workers", default="1,2,4", help="PostgreSQL worker counts")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--shards", type=int, default=4, help="shards (communities) per worker")
    parser.add_argument("--executor-ms", type=float, default=5.0, help="a slow executor's time per action")
    parser.add_argument("--runs", type=int, default=2, help="runs per configuration; the best is kept")
    parser.add_argument(
        "--batch", type=int, default=50, help="events per Runtime.feed_many call (SQLite row)"
    )
    parser.add_argument(
        "--claim-sizes", default="0,50000,100000", help="finished outbox rows to measure claims after"
    )
    parser.add_argument(
        "--only", choices=["throughput", "claims", "http", "pg-http"], help="run one part only"
    )
    parser.add_argument(
        "--executor-concurrency", type=int, default=16, help="pg-http: executor calls per worker at once"
    )
    parser.add_argument(
        "--executor", choices=["sleep", "webhook"], default="sleep", help="pg-http: the 5 ms executor"
    )
    parser.add_argument("--connections", type=int, default=8, help="HTTP load client connections")
    parser.add_argument(
        "--http-store",
        choices=["sqlite", "none"],
        default="sqlite",
        help="HTTP: none serves a runtime that stores nothing (the HTTP stack and committer alone)",
    )
    parser.add_argument(
        "--fronts",
        type=int,
        default=0,
        help="HTTP: front processes before the store process (sopdsl run --fronts)",
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="HTTP measurement, after the warm-up")
    parser.add_argument("--warmup", type=float, default=5.0, help="HTTP warm-up seconds")
    parser.add_argument("--quick", action="store_true", help="a small run, to check the benchmark works")
    parser.add_argument(
        "--pure", action="store_true", help="run the pure-Python modules, not the compiled build"
    )
    args = parser.parse_args()
    if not args.pure:  # the modules compiled as `pip install .` compiles them (bench/compiled.py)
        sys.path.insert(0, str(BENCH))
        from compiled import compiled_lib

        lib = str(compiled_lib())
        sys.path.insert(0, lib)
        os.environ["PYTHONPATH"] = os.pathsep.join([lib, str(ROOT)])  # the service processes too
    events = 400 if args.quick else args.events
    runs = 1 if args.quick else args.runs
    sizes = [0, 2000, 5000] if args.quick else [int(n) for n in args.claim_sizes.split(",")]

    import sopdsl

    plan = sopdsl.compile_program(
        sopdsl.check(sopdsl.load(str(ROOT / "tests" / "engine_cases" / "busy.sop")))
    )
    plan_text = plan.dumps()
    if args.only == "pg-http":
        from bench.live_pg import describe as describe_pg
        from bench.live_pg import measure as measure_pg

        print(__import__("bench.live_pg").live_pg.__doc__.split("\n\n", 1)[1].strip())
        options = {
            "connections": args.connections,
            "size": 50,
            "shards": 64,
            "executor": args.executor,
            "executor_ms": args.executor_ms,
            "concurrency": args.executor_concurrency,
            "warmup": 1.0 if args.quick else args.warmup,
            "seconds": 5.0 if args.quick else args.seconds,
        }
        print(f"workload: {json.dumps(options)}", flush=True)
        results = []
        for workers in [int(w) for w in args.workers.split(",")]:
            # Every run is printed (with its shards per worker and the load average): the machine
            # is shared, and a worker left idle by the lease rule shows in one run, not the best.
            rows = []
            for run in range(runs):
                rows.append(measure_pg(args.postgres, workers, options))
                print(f"run {run + 1} of {runs}: {describe_pg(rows[-1])}", flush=True)
            row = _best(rows)
            results.append(row)
            if runs > 1:
                print(f"kept, the best of {runs}: {row['events_per_second']} events/s", flush=True)
        if len(results) > 1:
            first, last = results[0], results[-1]
            print(
                f"{last['workers']} workers / {first['workers']}: "
                f"{last['events_per_second'] / max(1, first['events_per_second']):.2f}x events/s",
                flush=True,
            )
        claims: list[dict[str, Any]] = []
    elif args.only == "http":
        from bench.live_http import describe, measure_http

        seconds, warmup = (5.0, 1.0) if args.quick else (args.seconds, args.warmup)
        print(__import__("bench.live_http").live_http.__doc__.split("\n\n", 1)[1].strip())
        results = [
            measure_http(
                plan_text,
                connections=args.connections,
                warmup=warmup,
                seconds=seconds,
                store=args.http_store,
                fronts=args.fronts,
            )
        ]
        print(describe(results[0]), flush=True)
        claims: list[dict[str, Any]] = []
    else:
        results = [] if args.only == "claims" else _throughput(args, plan_text, events, runs)
        claims = [] if args.only == "throughput" else _claims(args, sizes)
    machine = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "processor": _cpu_name(),
        "compiled": not args.pure,
    }
    name = {"claims": "live-claims.json", "http": "live-http.json", "pg-http": "live-pg-http.json"}.get(
        args.only or "", "live.json"
    )
    out = ROOT / "bench" / "results" / name
    out.parent.mkdir(exist_ok=True)
    body = {"machine": machine, "events": events, "runs": runs, "results": results, "claims": claims}
    out.write_text(json.dumps(body, indent=1) + "\n")
    modules = (
        "pure-Python modules (--pure)" if args.pure else "the engine compiled (as pip install . builds it)"
    )
    print(
        f"machine: {machine['processor']}, {machine['cpus']} CPUs, Python {machine['python']}, {modules};"
        f" wrote {out}"
    )


def _claims(args: argparse.Namespace, sizes: list[int]) -> list[dict[str, Any]]:
    print(
        "claim latency: outbox rows inserted in bulk through the store API, claimed and finished "
        "(no engine); ms per claim, finding nothing due / a 20-row batch"
    )
    found = []
    with tempfile.TemporaryDirectory() as tmp:
        stores = [("sqlite", f"sqlite:///{tmp}/claims.db", "")]
        url, name = _fresh_postgres(args.postgres)
        stores.append(("postgres", url, name))
        try:
            for kind, store_url, _ in stores:
                for row in claim_latency(store_url, sizes):
                    found.append({"store": kind, **row})
                    print(
                        f"{kind:<9} after {row['finished_rows']:>7} finished rows: "
                        f"empty p50 {row['empty_p50_ms']:>6.3f} p99 {row['empty_p99_ms']:>7.3f}  "
                        f"batch p50 {row['batch_p50_ms']:>6.3f} p99 {row['batch_p99_ms']:>7.3f}  "
                        f"(filled in {row['fill_seconds']} s)",
                        flush=True,
                    )
        finally:
            _drop_postgres(args.postgres, name)
    return found


def _throughput(args: argparse.Namespace, plan_text: str, events: int, runs: int) -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for batch in sorted({1, args.batch}):
            row = _best(
                measure(
                    f"sqlite:///{tmp}/bench{batch}-{run}.db", plan_text, 1, events, args.shards, 0.0, batch
                )
                for run in range(runs)
            )
            results.append({"store": "sqlite", **row})
            print(
                f"sqlite      1 worker , batches of {batch:>3}: {row['events_per_second']:>6} events/s"
                f"  {row['actions_per_second']:>6} actions/s"
            )
    for delay in (0.0, args.executor_ms / 1000):
        for workers in [int(w) for w in args.workers.split(",")]:
            found = []
            for _ in range(runs):
                url, name = _fresh_postgres(args.postgres)
                try:
                    found.append(measure(url, plan_text, workers, events, args.shards, delay))
                finally:
                    _drop_postgres(args.postgres, name)
            row = _best(found)
            results.append({"store": "postgres", "executor_ms": delay * 1000, **row})
            print(
                f"postgres    {workers} worker{'s' if workers > 1 else ' '}, executor {delay * 1000:>3.0f} ms: "
                f"{row['events_per_second']:>6} events/s  {row['actions_per_second']:>6} actions/s"
            )
    return results


def _best(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The run with the most events per second: the machine is shared, so slower runs measure others."""
    return max(rows, key=lambda row: row["events_per_second"])


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    main()
