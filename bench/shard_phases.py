"""Where a sharded dry run's wall clock goes: each shard's routes and run, and the parent's merge.

Run: `.venv/bin/python bench/shard_phases.py TIMELINE [JOBS]` (with `SOPDSL_BENCH_LIB` set to a
compiled build, bench/compiled.py, to measure what `python -m bench` measures). Runs
`simulate_sharded` over bench/reference.sop, the log to /dev/null, and prints, for each shard
process, the wall and CPU time of its routes (`route_blocks`) and of its run (`_run_shard`), each
with when it started or ended since the run began, then the merge, then the total. Its log is not
checked; `python -m bench` checks the same run's log against one process's.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))
from compiled import put_first_on_path  # noqa: E402

put_first_on_path()  # a compiled build (SOPDSL_BENCH_LIB), before the pure tree

import run as bench_run  # noqa: E402

import sopdsl.dryrun.shard as shard_module  # noqa: E402

_BEGAN = [0.0]  # when the run began (perf_counter); a fork keeps it


def _cpu() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def _timed(name: str, fn: Any, at_end: bool) -> Any:
    """`fn`, printing its wall and CPU time to stderr with the process id, and when it began (or
    ended, if `at_end`) since the run began."""

    def timed(*args: Any) -> Any:
        wall, (user, system) = time.perf_counter(), _cpu()
        result = fn(*args)
        now, (user_after, system_after) = time.perf_counter(), _cpu()
        since = (now if at_end else wall) - _BEGAN[0]
        print(
            f"[{os.getpid()}] {name}: wall {now - wall:.3f} s, user {user_after - user:.3f} s, "
            f"system {system_after - system:.3f} s, {'ended' if at_end else 'began'} at {since:.3f} s",
            file=sys.stderr,
            flush=True,
        )
        return result

    return timed


def main() -> None:
    """Run the sharded dry run once with its phases timed."""
    path = Path(sys.argv[1])
    jobs = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    plan = bench_run._plan()
    # Replaced where the shard module looks them up (it imported `route_blocks` by name).
    for name, shown, at_end in (
        ("route_blocks", "routes", False),
        ("_run_shard", "run", True),
        ("_write_merged", "merge", True),
    ):
        setattr(shard_module, name, _timed(shown, getattr(shard_module, name), at_end))
    _BEGAN[0] = time.perf_counter()
    with open(os.devnull, "wb") as out:
        done = shard_module.simulate_sharded(
            plan, path, path.name, "Asia/Shanghai", bench_run._log_writer, out, jobs
        )
    print(
        f"total: wall {time.perf_counter() - _BEGAN[0]:.3f} s in {done.jobs} processes"
        f"{f' ({done.reason})' if done.reason else ''}; each shard's CPU "
        + ", ".join(f"{s['cpu_s']:.3f} s" for s in done.shards),
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
