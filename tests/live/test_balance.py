"""The lease rule's assignment (`sopdsl.live.balance.assign`): shares, agreement between processes,
and how little moves when a worker comes or goes. Workers applying it on PostgreSQL:
tests/live/test_workers.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

from sopdsl.live.balance import assign

SHARDS = [f"s{i:02d}" for i in range(64)] + ["default"]
WORKERS = ["bench-1", "bench-2", "bench-3", "bench-4"]


def test_every_worker_gets_its_share_of_the_shards() -> None:
    for count in (1, 2, 3, 4, 7):
        owners = assign(SHARDS, WORKERS[:count] + [f"extra-{n}" for n in range(count - 4)])
        held = Counter(owners.values())
        assert set(owners) == set(SHARDS)
        assert len(held) == count and max(held.values()) - min(held.values()) <= 1, held
    assert assign(SHARDS, []) == {}
    assert assign([], WORKERS) == {}


def test_every_process_assigns_alike_whatever_the_order_and_the_hash_seed() -> None:
    mine = assign(reversed(SHARDS), list(reversed(WORKERS)))
    assert mine == assign(SHARDS, WORKERS + WORKERS[:1])  # the order and repeats do not matter
    script = (
        "import json, sys; from sopdsl.live.balance import assign; "
        "print(json.dumps(assign(json.loads(sys.argv[1]), json.loads(sys.argv[2]))))"
    )
    for seed in ("1", "2"):
        found = subprocess.run(
            [sys.executable, "-c", script, json.dumps(SHARDS), json.dumps(WORKERS)],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(found.stdout) == mine


def test_a_worker_leaving_or_joining_moves_little_more_than_its_own_share() -> None:
    four = assign(SHARDS, WORKERS)
    three = assign(SHARDS, WORKERS[:3])
    # The leaver's shards go to the others; of the rest, a few move to even the shares out.
    assert {three[s] for s in SHARDS if four[s] == "bench-4"} <= set(WORKERS[:3])
    stayed = [s for s in SHARDS if four[s] != "bench-4"]
    assert sum(three[s] != four[s] for s in stayed) <= len(stayed) // 10
    five = assign(SHARDS, [*WORKERS, "bench-5"])
    joined = sum(five[s] == "bench-5" for s in SHARDS)
    assert sum(five[s] != four[s] for s in SHARDS) <= joined + len(SHARDS) // 10
