"""The C allocator of a sharded dry run's processes, told to keep what they free.

A shard reads a timeline block after block, each allocating and freeing megabytes of lines,
lists and events. By default glibc gives the top of its heap, and each allocation large enough
for a mapping of its own, back to the system as soon as it is freed, and the next block faults
the same pages in again: a tenth of a shard's time at 100k x 90 was spent in the kernel. A shard
is a process of its own that ends with its run, so what it keeps is given back then. (In one
process, where the engine's state outweighs a block's, it measured no faster: not set there.)
"""

from __future__ import annotations

# glibc's `mallopt` options (malloc.h) and what a shard sets them to.
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_KEPT = ((_M_TRIM_THRESHOLD, 256 << 20), (_M_TOP_PAD, 64 << 20), (_M_MMAP_THRESHOLD, 32 << 20))


def keep_freed_memory() -> bool:
    """Have the C allocator keep what this process frees for its next use (glibc only; says
    whether it could). For a process of sopdsl's own only (a shard), never one that embeds the
    engine, whose allocator is its owner's."""
    import ctypes  # here: a shard's process pays for it, not every command that imports the dry run

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no C library to load, or not one with `mallopt`
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = [mallopt(option, value) == 1 for option, value in _KEPT]  # each tried, whatever the others did
    return all(done)
