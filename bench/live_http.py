"""The service over HTTP (`bench/live.py --only http`): single events posted by concurrent connections.

Workload, printed with the result: one server process (the service: Starlette on uvicorn, a
SQLite store in WAL mode with `synchronous=FULL`, group commit on, executors that return at
once, the timer loop running) and one separate load-client process holding `--connections`
keep-alive HTTP/1.1 connections, each posting one event per request (busy.sop's kinds: joins,
messages, orders, leaves over 16,000 members; unique ids; no `time`, so "now") and waiting for
the 202 before the next. Each answer comes after the transaction holding its event committed,
and that transaction also applied it (journal, engine, outbox): an answered event is a durably
handled one, nothing is left to drain. After `--warmup` seconds, requests are counted for
`--seconds`; latency percentiles are over those requests. The client is a raw asyncio protocol
(no HTTP library: one preformatted request a send), so it costs the machine little; both
processes' CPU time per event is printed. With `--fronts N` the server is `sopdsl run --fronts
N`'s: N HTTP front processes before the one that holds the store, their CPU time counted as the
server's.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import random
import resource
import tempfile
import time
from typing import Any

from bench.http_load import Poster

GROUPS = ["g_north", "g_south"]
KINDS = ["join", "join", "message", "message", "order", "leave"]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _system() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


def _fronts_cpu(pids: list[int]) -> tuple[float, float]:
    """The front processes' CPU seconds so far: all, and in the kernel (from /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    used = kernel = 0.0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        used += (int(fields[11]) + int(fields[12])) / ticks
        kernel += int(fields[12]) / ticks
    return used, kernel


class _NoStore:
    """A runtime that stores and decides nothing (`--http-store none`): what the HTTP stack, the
    service and the group committer cost alone."""

    shard = "default"
    executors: dict[str, Any] = {}

    def feed_batch(self, events: Any) -> Any:
        from sopdsl.live.fed import Fed

        return Fed([], [], [0] * len(list(events)))

    def tick(self, now: int | None = None) -> list[Any]:
        return []

    def stats(self) -> dict[str, int]:
        return {}

    def close(self) -> None:
        pass


def _server(plan_text: str, url: str, fronts: int, ready: Any, stop: Any, measuring: Any) -> None:
    from sopdsl.live.dispatch import ACTION_KINDS
    from sopdsl.live.runtime import Runtime
    from sopdsl.live.service import Service
    from sopdsl.plan import loads, timeutil

    plan = loads(plan_text)
    runtime: Any
    if url == "none":
        runtime = _NoStore()
    else:
        runtime = Runtime(plan, url, executors=dict.fromkeys(ACTION_KINDS, lambda action, key: None))
        for group in GROUPS:
            runtime.add_group(group)
    service = Service(runtime, zone=timeutil.zone(plan.declarations.timezone), port=0, fronts=fronts)
    service.start()
    pids = service._server.pids() if fronts else []
    ready.put(service.port)
    measuring.wait()
    (front_began, front_kernel), began, kernel = _fronts_cpu(pids), _cpu(), _system()
    stop.wait()
    used, kernel = _cpu() - began, _system() - kernel
    front_now, front_kernel_now = _fronts_cpu(pids)
    front_used, front_kernel = front_now - front_began, front_kernel_now - front_kernel
    committer = service._committer
    ready.put(
        {
            "transactions": committer.transactions if committer is not None else 0,
            "cpu": used + front_used,
            "system": kernel + front_kernel,
            "fronts_cpu": front_used,
        }
    )
    service.stop()


class _Connection(Poster):
    """One keep-alive connection posting one event at a time; the next goes when the answer is in."""

    def __init__(self, slot: int, port: int, begin: float, end: float, done: asyncio.Future[None]) -> None:
        super().__init__(slot, port, begin, end, done)
        rng = random.Random(slot)
        # Precomputed choices, cycled: drawing them per request would cost the client more than
        # the request does.
        self.choices = [(rng.choice(KINDS), rng.randrange(2000), rng.choice(GROUPS)) for _ in range(4096)]

    def request(self) -> tuple[str, bytes]:
        kind, member, group = self.choices[self.number % 4096]
        data = ',"data":{"amount":99}' if kind == "order" else ""
        body = (
            f'{{"id":"c{self.slot}-{self.number}","kind":"{kind}","member":"m{self.slot}-{member}",'
            f'"group":"{group}"{data}}}'
        ).encode()
        return "/events", body


async def _load(port: int, connections: int, warmup: float, seconds: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    start = time.monotonic()
    begin, end = start + warmup, start + warmup + seconds
    made = []
    for slot in range(connections):
        done: asyncio.Future[None] = loop.create_future()
        _, protocol = await loop.create_connection(
            lambda slot=slot, done=done: _Connection(slot, port, begin, end, done), "127.0.0.1", port
        )
        made.append(protocol)
    await asyncio.sleep(max(0.0, begin - time.monotonic()))
    began = _cpu()
    await asyncio.gather(*(c.done for c in made))
    return {
        "latencies": [t for c in made for t in c.latencies],
        "errors": sum(c.errors for c in made),
        "cpu": _cpu() - began,
    }


def _client(port: int, connections: int, warmup: float, seconds: float, measuring: Any, out: Any) -> None:
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover - a dependency of sopdsl
        runner = asyncio.run

    async def main() -> dict[str, Any]:
        task = asyncio.ensure_future(_load(port, connections, warmup, seconds))
        await asyncio.sleep(warmup)
        measuring.set()
        return await task

    out.put(runner(main()))


def measure_http(
    plan_text: str,
    *,
    connections: int,
    warmup: float,
    seconds: float,
    store: str = "sqlite",
    fronts: int = 0,
) -> dict[str, Any]:
    """One server process, one load-client process; events per second, latency percentiles, CPU per event.

    `store` "none" serves a runtime that stores nothing: the cost of HTTP and the committer alone.
    `fronts`: HTTP front processes before the server process (`sopdsl run --fronts N`); their
    CPU time counts as the server's.
    """
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        ready, stop, measuring = ctx.Queue(), ctx.Event(), ctx.Event()
        server = ctx.Process(
            target=_server,
            args=(
                plan_text,
                "none" if store == "none" else f"sqlite:///{tmp}/http.db",
                fronts,
                ready,
                stop,
                measuring,
            ),
        )
        server.start()
        port = ready.get(timeout=120)
        out = ctx.Queue()
        client = ctx.Process(target=_client, args=(port, connections, warmup, seconds, measuring, out))
        load_before = os.getloadavg()[0]
        client.start()
        found = out.get(timeout=warmup + seconds + 120)
        load_after = os.getloadavg()[0]
        client.join()
        stop.set()
        served = ready.get(timeout=60)
        server.join(timeout=60)
    latencies = sorted(found["latencies"])
    total = len(latencies)

    def pct(p: float) -> float:
        return round(latencies[min(total - 1, int(total * p / 100))] * 1000, 2) if total else 0.0

    return {
        "store": store,
        "fronts": fronts,
        "connections": connections,
        "seconds": seconds,
        "events": total,
        "events_per_second": round(total / seconds),
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "errors": found["errors"],
        "transactions": served["transactions"],
        "server_cpu_us_per_event": round(served["cpu"] * 1e6 / total) if total else 0,
        "server_system_us_per_event": round(served["system"] * 1e6 / total) if total else 0,
        "fronts_cpu_us_per_event": round(served["fronts_cpu"] * 1e6 / total) if total else 0,
        "client_cpu_us_per_event": round(found["cpu"] * 1e6 / total) if total else 0,
        "load_average": [round(load_before, 2), round(load_after, 2)],
    }


def describe(row: dict[str, Any]) -> str:
    """The result, with its workload, in two lines."""
    fronts = f", {row['fronts']} HTTP fronts" if row["fronts"] else ""
    in_fronts = f", {row['fronts_cpu_us_per_event']} us in the fronts" if row["fronts"] else ""
    return (
        f"http {row['store']:<6} {row['connections']} connections{fronts}, single events, group commit: "
        f"{row['events_per_second']:>6} events/s  p50 {row['p50_ms']} ms  p99 {row['p99_ms']} ms  "
        f"({row['events']} events in {row['seconds']:g} s, {row['errors']} errors, "
        f"{row['transactions']} transactions incl. warm-up)\n"
        f"             CPU per event: server {row['server_cpu_us_per_event']} us "
        f"({row['server_system_us_per_event']} us of it in the kernel{in_fronts}), client "
        f"{row['client_cpu_us_per_event']} us; load average {row['load_average'][0]} before, "
        f"{row['load_average'][1]} after"
    )
