"""Running the sharded dry run from tests: a plan compiled from a file, a run in N processes
with its log, and what one shard reads of a timeline (tests/dryrun/test_shard*.py)."""

from __future__ import annotations

import io
import json
from collections.abc import Container, Iterator
from pathlib import Path
from typing import Any

from sopdsl.build import compile_files
from sopdsl.cli_dryrun import _action_writer
from sopdsl.dryrun.shard import ShardRun, simulate_sharded
from sopdsl.dryrun.shard_exchange import Exchange
from sopdsl.dryrun.shard_read import route_blocks, shard_blocks
from sopdsl.dryrun.timeline import open_timeline
from sopdsl.plan import Plan

ROOT = Path(__file__).parent.parent


def plan_of(sop: Path) -> Plan:
    """The plan of one playbook file, which must compile."""
    built = compile_files([sop], None)
    assert built.plan is not None, sop
    return built.plan


def run(plan: Plan, timeline: Path, jobs: int, fmt: str = "jsonl") -> tuple[bytes, ShardRun]:
    """The log of a dry run of a JSONL timeline in `jobs` processes, and how it ran."""
    out = io.BytesIO()
    zone = plan.declarations.timezone
    header = json.loads(timeline.read_text(encoding="utf-8").splitlines()[0])
    shown = header.get("timezone") or zone

    def writer(to: Any) -> Any:
        return _action_writer(to, fmt, True, shown, plan)

    done = simulate_sharded(plan, timeline, timeline.name, zone, writer, out, jobs)
    return out.getvalue(), done


def read_as_shard(
    path: Path, shard: int, folder: Path, known: Container[str] | None = None, shards: int = 2
) -> Iterator[Any]:
    """What shard `shard` of `shards` reads of a JSONL timeline (`shard_read.shard_blocks`), every
    shard's routes written first into `folder`, as a sharded run writes them."""
    folder.mkdir()
    done = [0] * shards
    for k in range(shards):
        ahead = open_timeline(path, path.name, "Asia/Shanghai")
        route_blocks(ahead, Exchange(folder, k, shards, done))
        ahead.close()
    timeline = open_timeline(path, path.name, "Asia/Shanghai")
    yield from shard_blocks(timeline, Exchange(folder, shard, shards, done), known)
    timeline.close()
