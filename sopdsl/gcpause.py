"""Pausing Python's cyclic garbage collector while a front-end stage builds its result.

Parsing, checking and compiling a large playbook set allocate hundreds of thousands of
long-lived objects and make no reference cycles worth collecting, yet each allocation burst
sets off full collections that scan everything built so far: a third of the time on a 1 MB file.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def paused_gc(fn: Callable[P, R]) -> Callable[P, R]:
    """Run `fn` with the cyclic collector off (re-enabled afterwards, also on error; nests)."""
    return _paused(fn, keep=False)


def kept_gc(fn: Callable[P, R]) -> Callable[P, R]:
    """`paused_gc` for a stage whose result lives on (a dry run's engine): what it built is then
    moved to the oldest generation (`promote`) instead of waiting in the youngest for a scan."""
    return _paused(fn, keep=True)


def _paused(fn: Callable[P, R], keep: bool) -> Callable[P, R]:
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if not gc.isenabled():
            return fn(*args, **kwargs)
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            if keep:
                promote()
            gc.enable()

    return wrapper


def promote() -> None:
    """Move every object the collector tracks out of the young generations, without a scan.

    While the collector is paused, what a stage allocates piles up in the youngest generation, and
    the first collection after it (set off by the next few hundred allocations) scans it all: at
    the end of a dry run, the whole engine's state (0.7% of a 20k x 90 run; in a sharded run's
    process, on its way to report back). Frozen, then unfrozen, the objects land in the oldest
    generation at once: still collectable by a full collection, but not scanned by the young
    generations' collections that come first. A process that froze its start-up (the command
    line's, `cli.load_command`) keeps them frozen instead: unfreezing would hand its imports back
    to every full collection, the one at exit too.
    """
    frozen = gc.get_freeze_count()
    gc.freeze()
    if not frozen:
        gc.unfreeze()
