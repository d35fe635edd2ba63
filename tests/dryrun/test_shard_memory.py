"""A shard's process keeps the memory it frees for its next block (`shard.keep_freed_memory`),
instead of handing it back to the system and faulting it in again."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest

_GLIBC = sys.platform == "linux" and platform.libc_ver()[0] == "glibc"

# In a process of its own, so this one's allocator is left as it is: 24 MB allocated, touched
# and freed, and how much of it the process still holds after.
_FREE_A_BLOCK = """
import sys
from sopdsl.dryrun.shard import keep_freed_memory

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
        cwd=Path(__file__).resolve().parents[2],
    )
    kept, given_back = done.stdout.split()
    return kept, int(given_back)


@pytest.mark.skipif(not _GLIBC, reason="the C allocator's options are glibc's (mallopt)")
def test_a_shard_keeps_a_freed_block_where_a_process_by_default_gives_it_back() -> None:
    assert _given_back_kb("default")[1] > 20 << 10  # the 24 MB unmapped as soon as freed
    kept, given_back = _given_back_kb("kept")
    assert kept == "True" and given_back < 4 << 10
