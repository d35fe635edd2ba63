"""The syntax tree's nodes compare and hash as `@dataclass(frozen=True)` would make them.

Their `__eq__` and `__hash__` are written once, in `nodes._Node`, not generated for each class
(start-up time): over the same fields, in the same order, with the same results.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from collections.abc import Callable
from typing import ClassVar

import pytest

from sopdsl.source import Span
from sopdsl.syntax import nodes
from sopdsl.syntax.node_base import dataclass

CLASSES = [
    c
    for _, c in inspect.getmembers(nodes, inspect.isclass)
    if dataclasses.is_dataclass(c) and c.__module__.startswith("sopdsl.syntax.node")
]


def test_every_node_shares_the_one_equality() -> None:
    assert len(CLASSES) > 90
    for cls in CLASSES:
        assert issubclass(cls, nodes._Node), cls
        params = cls.__dataclass_params__  # type: ignore[attr-defined]
        assert params.frozen and not params.eq, cls


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_equality_and_hash_are_the_dataclass_ones(cls: type) -> None:
    names = [f.name for f in dataclasses.fields(cls) if f.compare]
    assert [f.name for f in dataclasses.fields(cls)] == names
    values = [f"v{i}" for i in range(len(names))]
    node = cls(*values)
    assert node == cls(*values)
    assert hash(node) == hash(tuple(values))  # what the generated __hash__ returns
    assert node != tuple(values)
    for i in range(len(values)):
        other = cls(*[v + "x" if j == i else v for j, v in enumerate(values)])
        assert node != other
        assert not node == other  # __eq__ itself, not __ne__
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(node, names[0], "changed")
    # Another class with the same field values is not equal (the dataclass rule: same class only).
    twin = next((c for c in CLASSES if c is not cls and len(dataclasses.fields(c)) == len(names)), None)
    if twin is not None:
        assert node != twin(*values)


def test_a_nan_field_is_equal_to_itself_as_in_a_tuple() -> None:
    # The generated __eq__ compares tuples, which take identity as equality; so does _Node.
    nan = float("nan")
    span = Span.point("x.sop")
    assert nodes.Number(nan, "nan", span) == nodes.Number(nan, "nan", span)


class _Plain:
    __slots__ = ()


def _standard_twin(cls: type) -> type:
    """The class `@dataclasses.dataclass(frozen=True, slots=True, eq=False)` makes of `cls`'s fields."""
    space = {
        "__annotations__": {f.name: f.type for f in dataclasses.fields(cls)},
        "__qualname__": cls.__qualname__,
        "__module__": cls.__module__,
        **{f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING},
    }
    return dataclasses.dataclass(frozen=True, slots=True, eq=False)(type(cls.__name__, (_Plain,), space))


def _failure(action: Callable[[], object]) -> tuple[type, str]:
    with pytest.raises(Exception) as caught:
        action()
    return type(caught.value), str(caught.value)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_node_class_is_what_the_standard_dataclass_makes(cls: type) -> None:
    """Each node class is `@dataclass(frozen=True, slots=True, eq=False)` to everything outside
    it (`node_base.dataclass` only makes it cheaper): fields, signature, text, immutability,
    pickling, `replace`, `asdict`, the match arguments and the slots."""
    twin = _standard_twin(cls)

    def described(c: type) -> list[tuple[object, ...]]:
        return [
            (f.name, f.type, f.default, f.init, f.repr, f.compare, f.hash, f.kw_only)
            for f in dataclasses.fields(c)
        ]

    assert described(cls) == described(twin)
    assert cls.__match_args__ == twin.__match_args__  # type: ignore[attr-defined]
    assert cls.__slots__ == twin.__slots__  # type: ignore[attr-defined]
    assert str(inspect.signature(cls)) == str(inspect.signature(twin))
    assert cls.__init__.__qualname__ == twin.__init__.__qualname__  # type: ignore[misc]
    values = [f"v{i}" for i in range(len(dataclasses.fields(cls)))]
    node, other = cls(*values), twin(*values)
    assert repr(node) == repr(other)
    assert dataclasses.asdict(node) == dataclasses.asdict(other)
    first = dataclasses.fields(cls)[0].name
    assert repr(dataclasses.replace(node, **{first: "new"})) == repr(
        dataclasses.replace(other, **{first: "new"})
    )
    for copied in (pickle.loads(pickle.dumps(node)), copy.copy(node), copy.deepcopy(node)):
        assert type(copied) is cls and copied == node and repr(copied) == repr(node)
    assert not hasattr(node, "__dict__") and not hasattr(other, "__dict__")
    assert _failure(lambda: setattr(node, first, 1)) == _failure(lambda: setattr(other, first, 1))
    assert _failure(lambda: delattr(node, first)) == _failure(lambda: delattr(other, first))
    # Another name fails on both too (Python 3.11's own decorator fails it with a TypeError from
    # `super()`, a bug of slotted classes; the node says what it is).
    assert _failure(lambda: setattr(node, "unknown", 1))[0] is dataclasses.FrozenInstanceError
    _failure(lambda: setattr(other, "unknown", 1))
    assert _failure(lambda: cls()) == _failure(lambda: twin())
    assert cls(**dict(zip(cls.__match_args__, values, strict=True))) == node  # type: ignore[attr-defined]


def test_the_node_decorator_refuses_what_it_does_not_imitate() -> None:
    with pytest.raises(TypeError):
        dataclass(frozen=False)
    with pytest.raises(TypeError):

        @dataclass(frozen=True, slots=True, eq=False)
        class Counted(nodes._Node):
            total: ClassVar[int]
            value: int
