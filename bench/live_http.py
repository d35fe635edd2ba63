"""The service over HTTP (`bench/live.py --only http`): single events posted by concurrent connections.

Workload, printed with the result: one server process (the service: Starlette on uvicorn, a
SQLite store in WAL mode with `synchronous=FULL`, group commit on, executors that return at
once, the timer loop running) and one separate load-client process holding `--connections`
keep-alive HTTP/1.1 connections, each posting one event per request (busy.sop's kinds: joins,
messages, orders, leaves; unique ids; no `time`, so "now") and waiting for the 202 before the
next. Each answer comes after the transaction holding its event committed. After `--warmup`
seconds, requests are counted for `--seconds`; latency percentiles are over those requests.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import random
import tempfile
import threading
import time
from typing import Any

GROUPS = ["g_north", "g_south"]


def _server(plan_text: str, url: str, ready: Any, stop: Any) -> None:
    from sopdsl.live.dispatch import ACTION_KINDS
    from sopdsl.live.runtime import Runtime
    from sopdsl.live.service import Service
    from sopdsl.plan import loads, timeutil

    plan = loads(plan_text)
    runtime = Runtime(plan, url, executors=dict.fromkeys(ACTION_KINDS, lambda action, key: None))
    for group in GROUPS:
        runtime.add_group(group)
    service = Service(runtime, zone=timeutil.zone(plan.declarations.timezone), port=0)
    service.start()
    ready.put(service.port)
    stop.wait()
    committer = service._committer
    ready.put(committer.transactions if committer is not None else 0)
    service.stop()


def _client(port: int, connections: int, warmup: float, seconds: float, out: Any) -> None:
    start = time.monotonic()
    begin, end = start + warmup, start + warmup + seconds
    counted: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections

    def run(slot: int) -> None:
        rng = random.Random(slot)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Content-Type": "application/json"}
        number = 0
        while True:
            now = time.monotonic()
            if now >= end:
                break
            number += 1
            kind = rng.choice(["join", "join", "message", "message", "order", "leave"])
            event: dict[str, Any] = {
                "id": f"c{slot}-{number}",
                "kind": kind,
                "member": f"m{slot}-{rng.randrange(2000)}",
                "group": rng.choice(GROUPS),
            }
            if kind == "order":
                event["data"] = {"amount": 99}
            conn.request("POST", "/events", json.dumps(event), headers)
            answer = conn.getresponse()
            answer.read()
            took = time.monotonic() - now
            if answer.status != 202:
                errors[slot] += 1
            elif now >= begin:
                counted[slot].append(took)
        conn.close()

    threads = [threading.Thread(target=run, args=(slot,)) for slot in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put({"latencies": [t for slot in counted for t in slot], "errors": sum(errors)})


def measure_http(plan_text: str, *, connections: int, warmup: float, seconds: float) -> dict[str, Any]:
    """One server process, one load-client process; events per second and latency percentiles."""
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        ready, stop = ctx.Queue(), ctx.Event()
        server = ctx.Process(target=_server, args=(plan_text, f"sqlite:///{tmp}/http.db", ready, stop))
        server.start()
        port = ready.get(timeout=120)
        out = ctx.Queue()
        client = ctx.Process(target=_client, args=(port, connections, warmup, seconds, out))
        client.start()
        found = out.get(timeout=warmup + seconds + 120)
        client.join()
        stop.set()
        transactions = ready.get(timeout=60)
        server.join(timeout=60)
    latencies = sorted(found["latencies"])
    total = len(latencies)

    def pct(p: float) -> float:
        return round(latencies[min(total - 1, int(total * p / 100))] * 1000, 2) if total else 0.0

    return {
        "connections": connections,
        "seconds": seconds,
        "events": total,
        "events_per_second": round(total / seconds),
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "errors": found["errors"],
        "transactions": transactions,
    }


def describe(row: dict[str, Any]) -> str:
    """One line of the result, with its workload."""
    return (
        f"http sqlite  {row['connections']} connections, single events, group commit: "
        f"{row['events_per_second']:>6} events/s  p50 {row['p50_ms']} ms  p99 {row['p99_ms']} ms  "
        f"({row['events']} events in {row['seconds']:g} s, {row['errors']} errors, "
        f"{row['transactions']} transactions incl. warm-up)"
    )
