"""What live figures cost the runtime, in a form callgrind can count: compile
tests/engine_cases/busy.sop, feed N events of its busy timeline (tests/livestores.py) into a
SQLite runtime, one transaction each, dispatching every 50 as `bench/live.py` does.

Run: `valgrind --tool=callgrind --callgrind-out-file=/dev/null .venv/bin/python
bench/live_figures_cost.py 300` (see docs/performance.md, "What counting figures costs").
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from livestores import timeline  # noqa: E402

import sopdsl  # noqa: E402
from sopdsl.live.dispatch import ACTION_KINDS  # noqa: E402
from sopdsl.live.runtime import ManualClock, Runtime  # noqa: E402


def main(events: int) -> None:
    """Run the timeline and print the CPU time of the feeding loop and the runtime's counters."""
    plan = sopdsl.compile_program(
        sopdsl.check(sopdsl.load(str(ROOT / "tests" / "engine_cases" / "busy.sop")))
    )
    line = timeline(7, events)
    folder = tempfile.mkdtemp()
    clock = ManualClock(line["start"])
    executors = dict.fromkeys(ACTION_KINDS, lambda action, key: None)
    rt = Runtime(plan, f"sqlite:///{folder}/state.db", executors=executors, clock=clock)
    for group in line["groups"]:
        rt.add_group(group["id"], tags=group.get("tags", ()))
    for member in line["members"]:
        rt.add_member(member["id"], groups=member["groups"], tags=member["tags"])
    cpu = time.process_time()
    for index, event in enumerate(line["events"], 1):
        clock.set(event["time"])
        rt.feed(event)
        if index % 50 == 0:
            rt.dispatch()
    rt.dispatch()
    print(f"{sopdsl.__file__}: cpu {time.process_time() - cpu:.3f} s, {rt.stats()}")
    rt.close()


if __name__ == "__main__":
    main(int(sys.argv[1]))
