"""The collector paused around a stage, and what a dry run builds promoted when it ends."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from sopdsl.gcpause import kept_gc, paused_gc


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


@pytest.fixture
def collecting() -> Iterator[None]:
    """A collector running, nothing frozen; as it was afterwards."""
    was = gc.isenabled()
    gc.unfreeze()  # whatever an earlier test in this process froze (the command line's start-up)
    gc.enable()
    yield
    gc.unfreeze()
    if not was:
        gc.disable()


@kept_gc
def _build(n: int) -> tuple[list[_Node], weakref.ref[_Node]]:
    kept = [_Node() for _ in range(n)]  # objects the collector tracks, alive afterwards
    a, b = _Node(), _Node()
    a.other, b.other = b, a  # a cycle, garbage once this returns: only a collection frees it
    return kept, weakref.ref(a)


def test_a_kept_stage_leaves_nothing_in_the_young_generation_to_scan(collecting: None) -> None:
    kept, cycle = _build(50_000)
    assert gc.isenabled()
    # Without the promotion the youngest generation would hold the 50,000 nodes, and the next
    # few allocations would set off a collection scanning them all.
    assert gc.get_count()[0] < 1_000
    assert gc.get_freeze_count() == 0  # promoted, not frozen: still the collector's
    assert cycle() is not None
    gc.collect()
    assert cycle() is None  # the cycle made inside is still collected
    assert len(kept) == 50_000


def test_where_start_up_was_frozen_a_kept_stage_stays_frozen_too(collecting: None) -> None:
    gc.freeze()  # as the command line does after its imports
    kept, _ = _build(10_000)
    # Frozen: in none of the generations a collection scans. (Not told by the freeze count, which
    # also drops as frozen start-up objects die meanwhile.)
    built = {id(node) for node in kept}
    scanned = sum(1 for generation in range(3) for o in gc.get_objects(generation) if id(o) in built)
    assert scanned == 0
    assert gc.get_freeze_count() >= 10_000
    assert gc.get_count()[0] < 1_000
    assert len(kept) == 10_000


def test_a_paused_stage_only_pauses(collecting: None) -> None:
    @paused_gc
    def stage() -> bool:
        return gc.isenabled()

    assert stage() is False
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0
