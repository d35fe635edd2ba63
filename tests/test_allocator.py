"""A shard's process keeps the memory it frees for its next block (`allocator.keep_freed_memory`),
instead of handing it back to the system and faulting it in again; a process that runs the dry
run in one, or embeds the engine, is left as it is."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest
from benchmods import bench
from click.testing import CliRunner

from sopdsl.cli import main

_GLIBC = sys.platform == "linux" and platform.libc_ver()[0] == "glibc"

# In a process of its own, so this one's allocator is left as it is: 24 MB allocated, touched
# and freed, and how much of it the process still holds after.
_FREE_A_BLOCK = """
import sys
from sopdsl.allocator import keep_freed_memory

def rss_kb():
    with open("/proc/self/status", encoding="ascii") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))

kept = keep_freed_memory() if sys.argv[1] == "kept" else None
block = b"x" * (24 << 20)  # written, so resident: over the default threshold for a mapping, under the kept one
held = rss_kb()
del block
print(kept, held - rss_kb())
"""


def _given_back_kb(mode: str) -> tuple[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", _FREE_A_BLOCK, mode],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    kept, given_back = done.stdout.split()
    return kept, int(given_back)


@pytest.mark.skipif(not _GLIBC, reason="the C allocator's options are glibc's (mallopt)")
def test_a_shard_s_process_keeps_a_freed_block_where_a_process_by_default_gives_it_back() -> None:
    assert _given_back_kb("default")[1] > 20 << 10  # the 24 MB unmapped as soon as freed
    kept, given_back = _given_back_kb("kept")
    assert kept == "True" and given_back < 4 << 10


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_each_shard_keeps_freed_memory_and_a_run_in_one_process_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: str
) -> None:
    # Each shard's process tells its allocator as it starts (a fork, which keeps the stand-in set
    # here; it says so in a file); the command's own process, which may run the dry run itself,
    # does not.
    import sopdsl.dryrun.shard

    said = tmp_path / "said"

    def stand_in() -> bool:
        with said.open("a", encoding="utf-8") as out:
            out.write("shard\n")
        return True

    monkeypatch.setattr(sopdsl.dryrun.shard, "keep_freed_memory", stand_in)
    root = Path(__file__).resolve().parents[1]
    generate = bench("generate")
    timeline = tmp_path / "200x7.jsonl"
    generate.generate(generate.Size(200, 7), timeline)
    args = ["simulate", str(root / "bench" / "reference.sop"), "--timeline", str(timeline), "--jobs", jobs]
    done = CliRunner().invoke(main, [*args, "--format", "jsonl"])
    assert done.exit_code == 0, done.output
    assert done.output.count('"kind":"send"') > 10  # the run ran
    shards = 0 if jobs == "1" else int(jobs)
    assert (said.read_text(encoding="utf-8").split() if said.exists() else []) == ["shard"] * shards
