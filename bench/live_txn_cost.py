"""What one group-committed transaction costs, and what one event adds: `Runtime.feed_batch` alone.

Run: `.venv/bin/python bench/live_txn_cost.py [--events N] [--batches 1,4,8,16]`. Feeds the HTTP
bench's events (bench/live_http.py: busy.sop's joins, messages, orders and leaves over 16,000
members, no `time`) into a SQLite store (WAL, `synchronous=FULL`) in batches of each size, one
transaction and one disk sync a batch, with no HTTP, no dispatching and no snapshots, and prints
the process's CPU time per event. Fitting cost(k) = per event + per transaction / k says how much
the group commit's batch size matters: under load, 8 connections give about 4 events a batch.

`--pipelined` measures the service's way instead (bench/live_http.py's server): each batch
committed without a sync (`Store.unsynced`), then synced apart (`Store.sync`), and the
dispatcher's turn every sixth batch, with a 4-event batch by default. It prints the wall time of
a feed and of its sync, the CPU time of both, and the WAL frames (pages) a feed and a dispatch
turn write per batch: what the group commit's two stages cost, without HTTP.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from compiled import put_first_on_path  # noqa: E402

put_first_on_path()  # a compiled build (SOPDSL_BENCH_LIB), before the pure tree

KINDS = ["join", "join", "message", "message", "order", "leave"]
GROUPS = ["g_north", "g_south"]
WARM = 400  # events fed before measuring


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(plan_text: str, events: int, batch: int) -> float:
    """CPU seconds per event of feeding `events` events `batch` at a time (after a warm-up)."""
    from sopdsl.live.dispatch import ACTION_KINDS
    from sopdsl.live.runtime import Runtime
    from sopdsl.plan import loads

    rng = random.Random(1)
    body = []
    for number in range(WARM + events):
        kind = rng.choice(KINDS)
        event: dict[str, object] = {
            "id": f"c-{number}",
            "kind": kind,
            "member": f"m{rng.randrange(16000)}",
            "group": rng.choice(GROUPS),
        }
        if kind == "order":
            event["data"] = {"amount": 99}
        body.append(event)
    with tempfile.TemporaryDirectory() as tmp:
        executors = dict.fromkeys(ACTION_KINDS, lambda action, key: None)
        runtime = Runtime(loads(plan_text), f"sqlite:///{tmp}/cost.db", executors=executors, snapshot_every=0)
        for group in GROUPS:
            runtime.add_group(group)
        for at in range(0, WARM, batch):
            runtime.feed_batch(body[at : min(at + batch, WARM)])
        began = _cpu()
        for at in range(WARM, WARM + events, batch):
            runtime.feed_batch(body[at : at + batch])
        used = _cpu() - began
        runtime.close()
    return used / events


def pipelined(plan_text: str, batches: int, size: int) -> dict[str, float]:
    """Per batch of `size` events, after a warm-up: feed and sync wall time, CPU time, WAL frames."""
    from sopdsl.live.dispatch import ACTION_KINDS
    from sopdsl.live.runtime import Runtime
    from sopdsl.plan import loads

    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:  # where bench/live_http.py's server keeps its store
        runtime = Runtime(
            loads(plan_text), f"sqlite:///{tmp}/cost.db", executors=dict.fromkeys(ACTION_KINDS, _none)
        )
        for group in GROUPS:
            runtime.add_group(group)
        shm = Path(tmp) / "cost.db-shm"
        warm = batches // 4
        fed = synced = cpu = feed_frames = turn_frames = 0.0
        for number in range(batches):
            events = []
            for i in range(size):  # ids as 8 connections number theirs: half of them a batch
                slot, kind = (number % 2) * size + i, rng.choice(KINDS)
                event: dict[str, object] = {"id": f"c{slot}-{number}", "kind": kind}
                event["member"], event["group"] = f"m{slot}-{rng.randrange(2000)}", rng.choice(GROUPS)
                if kind == "order":
                    event["data"] = {"amount": 99}
                events.append(event)
            if number == warm:
                fed = synced = feed_frames = turn_frames = 0.0
                cpu = -_cpu()
            before = _frames(shm)
            began = time.perf_counter()
            with runtime.store.unsynced():
                runtime.feed_batch(events)
            middle = time.perf_counter()
            runtime.store.sync()
            fed, synced = fed + middle - began, synced + time.perf_counter() - middle
            after = _frames(shm)
            if number % 6 == 0:
                runtime.tick()
            # A checkpoint restarts the WAL at its start: such a batch's frames are not counted.
            last = _frames(shm)
            if before <= after <= last:
                feed_frames += after - before
                turn_frames += last - after
        cpu += _cpu()
        runtime.close()
    measured = batches - warm
    return {
        "feed_us": fed / measured * 1e6,
        "sync_us": synced / measured * 1e6,
        "cpu_us": cpu / measured * 1e6,
        "feed_frames": feed_frames / measured,
        "turn_frames": turn_frames / measured,
    }


def _frames(shm: Path) -> int:
    """The WAL's frame count, from the header of SQLite's WAL index (`mxFrame`, native order)."""
    with shm.open("rb") as index:
        index.seek(16)
        return int.from_bytes(index.read(4), sys.byteorder)


def _none(action: object, key: str) -> None:
    return None


def main() -> None:
    """Print CPU per event for each batch size, and the fitted per-event and per-transaction costs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=4000, help="events measured per batch size")
    parser.add_argument("--batches", help="events per transaction (default 1,4,8,16; 4 with --pipelined)")
    parser.add_argument("--pipelined", action="store_true", help="the service's pipelined sync (see above)")
    args = parser.parse_args()
    import sopdsl
    from sopdsl.live import runtime

    print(f"runtime: {runtime.__file__}")
    plan = sopdsl.compile_program(
        sopdsl.check(sopdsl.load(str(ROOT / "tests" / "engine_cases" / "busy.sop")))
    )
    if args.pipelined:
        for size in [int(n) for n in (args.batches or "4").split(",")]:
            stages = pipelined(plan.dumps(), max(1000, args.events // size), size)
            print(
                f"{size:>3} events a batch: feed {stages['feed_us']:.0f} us and sync {stages['sync_us']:.0f} us "
                f"wall, {stages['cpu_us']:.0f} us CPU (a dispatch turn every sixth batch included); WAL "
                f"frames {stages['feed_frames']:.2f} a feed, {stages['turn_frames']:.2f} of dispatching"
            )
        return
    sizes = [int(n) for n in (args.batches or "1,4,8,16").split(",")]
    found = {k: measure(plan.dumps(), args.events, k) for k in sizes}
    for k, cost in found.items():
        print(f"{k:>3} events a transaction: {cost * 1e6:6.0f} us CPU an event")
    if len(sizes) >= 2:
        small, large = min(sizes), max(sizes)
        per_txn = (found[small] - found[large]) / (1 / small - 1 / large)
        per_event = found[large] - per_txn / large
        print(f"fit: {per_event * 1e6:.0f} us an event + {per_txn * 1e6:.0f} us a transaction")


if __name__ == "__main__":
    main()
