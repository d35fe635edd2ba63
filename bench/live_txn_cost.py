"""What one group-committed transaction costs, and what one event adds: `Runtime.feed_batch` alone.

Run: `.venv/bin/python bench/live_txn_cost.py [--events N] [--batches 1,4,8,16]`. Feeds the HTTP
bench's events (bench/live_http.py: busy.sop's joins, messages, orders and leaves over 16,000
members, no `time`) into a SQLite store (WAL, `synchronous=FULL`) in batches of each size, one
transaction and one disk sync a batch, with no HTTP, no dispatching and no snapshots, and prints
the process's CPU time per event. Fitting cost(k) = per event + per transaction / k says how much
the group commit's batch size matters: under load, 8 connections give about 4 events a batch.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

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
        event = {
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


def main() -> None:
    """Print CPU per event for each batch size, and the fitted per-event and per-transaction costs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=4000, help="events measured per batch size")
    parser.add_argument("--batches", default="1,4,8,16", help="events per transaction")
    args = parser.parse_args()
    import sopdsl

    plan = sopdsl.compile_program(
        sopdsl.check(sopdsl.load(str(ROOT / "tests" / "engine_cases" / "busy.sop")))
    )
    sizes = [int(n) for n in args.batches.split(",")]
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
