"""What one shard of a sharded dry run costs, against one process, for callgrind or CPU time.

Run: `.venv/bin/python bench/shard_cost.py WHAT TIMELINE`, WHAT being `read` (read every record,
the collector paused, as a dry run reads), `one` (the one-process dry run of bench/reference.sop,
the log to /dev/null) or `K/N` (shard K of N as a sharded run runs it, in this process without
forking, its steps to /dev/null: the other shards' routes written first and not timed, then this
shard's routes and its run). Prints the CPU time; count instructions with
`valgrind --tool=callgrind --callgrind-out-file=/dev/null .venv/bin/python bench/shard_cost.py ...`,
less the same on a 100 × 1 timeline (start-up).
"""

from __future__ import annotations

import gc
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))
from compiled import put_first_on_path  # noqa: E402

put_first_on_path()  # a compiled build (SOPDSL_BENCH_LIB), before the pure tree

import run as bench_run  # noqa: E402

from sopdsl.dryrun.shard import _run_shard  # noqa: E402
from sopdsl.dryrun.shard_exchange import Exchange  # noqa: E402
from sopdsl.dryrun.shard_read import route_blocks  # noqa: E402
from sopdsl.dryrun.simulate import simulate_timeline  # noqa: E402
from sopdsl.dryrun.timeline import open_timeline  # noqa: E402


def main() -> None:
    """Run one of them and print its CPU time."""
    what, path = sys.argv[1], Path(sys.argv[2])
    plan = bench_run._plan()
    started = time.process_time()
    timeline = open_timeline(path, path.name, "Asia/Shanghai")
    with open("/dev/null", "wb") as out:
        if what == "read":
            gc.disable()
            records = sum(1 for _ in timeline.records())
            print(f"{records} records")
        elif what == "one":
            _held = simulate_timeline(plan, timeline, bench_run._log_writer(out))
        else:
            shard, shards = map(int, what.split("/"))
            with tempfile.TemporaryDirectory() as folder:
                done = [0] * shards
                for other in range(shards):
                    if other != shard:
                        _routes_of(path, Exchange(Path(folder), other, shards, done))
                started = time.process_time()
                exchange = Exchange(Path(folder), shard, shards, done)
                _routes_of(path, exchange)
                # held, as a shard's process holds it to its end: not freed object by object
                _kept = _run_shard(plan, timeline, bench_run._log_writer, shard, shards, out, None, exchange)
    timeline.close()
    print(f"{what}: {time.process_time() - started:.3f} s of CPU")


def _routes_of(path: Path, exchange: Exchange) -> None:
    """Write a shard's routes of the blocks it reads, as its process does before its run."""
    ahead = open_timeline(path, path.name, "Asia/Shanghai")
    route_blocks(ahead, exchange)
    ahead.close()


if __name__ == "__main__":
    main()
