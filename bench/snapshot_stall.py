"""How long a live feed waits when its shard's engine snapshot falls due: in the transaction, or apart.

Run: `.venv/bin/python bench/snapshot_stall.py [--members N]` (default 100,000; about a minute).
Fills a SQLite store (WAL, `synchronous=FULL`) through `Runtime.feed_many` with N members joining
busy.sop's groups (tests/engine_cases/busy.sop, the live bench's playbooks), 1,000 joins a
transaction, with snapshots off. Then, twice for each way, a snapshot is made due and one more
event fed: the wall time of that feed is what every request of the service waited meanwhile.
"in the transaction" is the engine's snapshot written in the feed's own transaction (what small
engines still do), "apart" a forked child's (`sopdsl/live/snapshots_apart.py`); for "apart" it also
prints how long the child took until its snapshot was stored. Both ways' snapshots are compared.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from compiled import put_first_on_path  # noqa: E402

put_first_on_path()  # a compiled build (SOPDSL_BENCH_LIB), before the pure tree

import sopdsl  # noqa: E402
from sopdsl.live import snapshots_apart  # noqa: E402
from sopdsl.live.runtime import ManualClock, Runtime  # noqa: E402

BUSY = ROOT / "tests" / "engine_cases" / "busy.sop"
START = 1_767_225_600  # 2026-01-01 00:00 UTC
GROUPS = ["g_north", "g_south"]


def main() -> None:
    """Fill a store, then time the feed a snapshot falls due in, each way."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    args = parser.parse_args()
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load(str(BUSY))))
    with tempfile.TemporaryDirectory() as folder:
        clock = ManualClock(START)
        rt = Runtime(plan, f"sqlite:///{folder}/stall.db", clock=clock, snapshot_every=0)
        began = time.perf_counter()
        for first in range(0, args.members, 1000):
            joins = [
                {
                    "id": f"j{m}",
                    "kind": "join",
                    "member": f"m{m}",
                    "group": GROUPS[m % 2],
                    "time": START + m // 100,
                }
                for m in range(first, min(first + 1000, args.members))
            ]
            clock.set(joins[-1]["time"])
            rt.feed_many(joins)
        print(f"{args.members:,} members joined in {time.perf_counter() - began:.1f} s")
        number = 0
        blobs: dict[str, bytes] = {}
        for way in ("in the transaction", "apart", "in the transaction", "apart"):
            snapshots_apart.APART_FROM = sys.maxsize if way == "in the transaction" else 1
            rt.snapshot_every = 1  # due at the next feed
            number += 1
            event = {"id": f"x{number}", "kind": "message", "member": "m0", "group": "g_north"}
            began = time.perf_counter()
            rt.feed(event)
            waited = time.perf_counter() - began
            rt.snapshot_every = 0
            line = f"{way:>20}: the feed took {waited * 1000:8.1f} ms"
            if way == "apart":
                rt._shards.snapshots.collect(wait=600)
                line += f"; the snapshot was stored {time.perf_counter() - began:.2f} s after the feed began"
            found = rt.store.load_snapshot("default")
            assert found is not None
            line += f" ({len(found[1]) / 1e6:.1f} MB)"
            print(line)
            blobs[way] = found[1]
        rt.close()
    # One event apart (a message, which changes one member's time) separates them; their sizes agree.
    print(f"sizes: {len(blobs['in the transaction']):,} and {len(blobs['apart']):,} bytes")


if __name__ == "__main__":
    main()
