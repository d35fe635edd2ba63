"""The engine is built from parts, each a module of its own, joined over one declared base.

What this guards: a new timer kind that a snapshot cannot carry, a part that grows past the size
a reader can hold in mind, and a method a part needs of another that nobody defines.
"""

from __future__ import annotations

import inspect
import typing
from pathlib import Path

import pytest

from sopdsl.engine import engine as engine_module
from sopdsl.engine.actions import Action
from sopdsl.engine.engine import Engine
from sopdsl.engine.parts import _Parts
from sopdsl.engine.snapshot_schema import _SNAPSHOT_STATE
from sopdsl.engine.timers import RECORDS, TIMERS, Timer, fields_of, from_fields

ENGINE = Path(engine_module.__file__).parent


def test_every_timer_kind_has_a_payload_a_snapshot_can_carry() -> None:
    heap = _SNAPSHOT_STATE["heap"]
    assert set(heap.payloads) == set(Timer)
    # Read back from a snapshot a kind is a plain int: TIMERS turns it into its Timer.
    assert all(TIMERS[int(kind)] is kind for kind in Timer)
    # Each kind has its typed record, written as the fields its payload type declares, and read back.
    assert set(RECORDS) == set(Timer) and all(record.KIND is kind for kind, record in RECORDS.items())
    for kind, payload in heap.payloads.items():
        if kind is Timer.DELIVER:
            sample: tuple[object, ...] = (Action(0, "send", "p", "k"), (1, 2))
        else:
            sample = tuple(7 if arg is int else "g" for arg in typing.get_args(payload))
        timer = from_fields(kind, sample)
        assert type(timer) is RECORDS[kind] and fields_of(timer) == sample


@pytest.mark.source
def test_the_engine_defines_every_method_its_parts_declare() -> None:
    declared = {
        name for name, member in vars(_Parts).items() if getattr(member, "__isabstractmethod__", False)
    }
    assert declared  # the parts do use each other through the base
    assert not inspect.isabstract(Engine), Engine.__abstractmethods__
    for name in declared:
        assert not getattr(getattr(Engine, name), "__isabstractmethod__", False), name


def test_no_engine_module_is_over_about_500_lines() -> None:
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in ENGINE.glob("*.py")}
    assert {name: n for name, n in sizes.items() if n > 520} == {}
