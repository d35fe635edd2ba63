"""The syntax tree's nodes compare and hash as `@dataclass(frozen=True)` would make them.

Their `__eq__` and `__hash__` are written once, in `nodes._Node`, not generated for each class
(start-up time): over the same fields, in the same order, with the same results.
"""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from sopdsl.syntax import nodes

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
    span = nodes.Span.point("x.sop")
    assert nodes.Number(nan, "nan", span) == nodes.Number(nan, "nan", span)
