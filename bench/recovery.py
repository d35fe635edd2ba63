"""Restart benchmark: how long a runtime takes to open a shard, with and without engine snapshots.

Run: `.venv/bin/python bench/recovery.py` (options: `--events N`, `--every N`, `--quick`). Results
are printed and written to `bench/results/recovery.json`.

A SQLite store is filled with a busy timeline (tests/engine_cases/busy.sop, the timeline of
bench/live.py) and no snapshot. Then the runtime is opened three times, each in a new process
state (a new `Runtime`): without snapshots (the whole journal replayed); with snapshots, the
first time (the whole journal replayed, then a snapshot written); and again (the snapshot read,
only the journal after it replayed). Opening is what a restarted bot waits for before it takes
its first event.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sopdsl  # noqa: E402
from bench.live import START, timeline  # noqa: E402
from sopdsl.live.runtime import ManualClock, Runtime  # noqa: E402


def measure(events: int, every: int) -> dict[str, float | int]:
    """Fill a store with `events` events, then time opening it three ways."""
    plan = sopdsl.compile_program(
        sopdsl.check(sopdsl.load(str(ROOT / "tests" / "engine_cases" / "busy.sop")))
    )
    line = timeline(1, events)
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/state.db"
        clock = ManualClock(START)
        rt = Runtime(plan, url, clock=clock, dry_run=True, snapshot_every=0)
        for group in line["groups"]:
            rt.add_group(group, tags=["normal"])
        for member in line["members"]:
            rt.add_member(member["id"], groups=member["groups"], tags=member["tags"])
        batch: list[dict[str, object]] = []
        for event in line["events"]:
            batch.append(event)
            if len(batch) == 200:
                clock.set(int(event["time"]))  # type: ignore[call-overload]
                rt.feed_many(batch)
                rt.tick()
                batch = []
        if batch:
            rt.feed_many(batch)
        entries = len(rt.store.journal("default"))
        rt.close()

        def open_once(snapshot_every: int) -> float:
            began = time.perf_counter()
            Runtime(plan, url, clock=clock, dry_run=True, snapshot_every=snapshot_every).close()
            return time.perf_counter() - began

        replay = open_once(0)
        first = open_once(every)
        store = sopdsl.open_store(url)
        found = store.load_snapshot("default")
        store.close()
        size = len(found[1]) if found else 0
        again = open_once(every)
    return {
        "events": events,
        "journal_entries": entries,
        "open_replaying_all_s": round(replay, 3),
        "open_writing_snapshot_s": round(first, 3),
        "open_from_snapshot_s": round(again, 3),
        "snapshot_bytes": size,
    }


def main() -> None:
    """Parse options, measure, print and save."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--every", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="5,000 events (a snapshot every 1,250)")
    options = parser.parse_args()
    events = 5_000 if options.quick else options.events
    result = measure(events, min(options.every, events // 4))
    for key, value in result.items():
        print(f"{key:>26}: {value}")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "recovery.json").write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
