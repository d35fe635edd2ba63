"""The base every node of the syntax tree shares (`sopdsl.syntax.nodes`): equality, hashing,
and the `dataclass` decorator the node classes are written with."""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, dataclass_transform

if TYPE_CHECKING:
    from sopdsl.source import Span

T = TypeVar("T", bound=type)

Builder = Callable[["Span", list[Any]], Any]

# Rule name to builder, `(span, children) -> node`, as the transformer's own methods are: the
# builders of the nodes that carry their own rules (the actions, `wait … for`), merged into its RULES.
BUILDERS: dict[str, Builder] = {}


def builds(rule: str) -> Callable[[Builder], Builder]:
    """Register a function as the builder of a grammar rule (see `BUILDERS`)."""

    def register(build: Builder) -> Builder:
        BUILDERS[rule] = build
        return build

    return register


class _Node:
    """What every node shares: equality and hashing over its fields, in order, exactly as
    `@dataclass(frozen=True)` writes them for each class (same class and equal field tuples;
    the hash of the field tuple), and its text (`repr`), immutability and pickling, as
    `@dataclass(frozen=True, slots=True)` writes them. Written once here rather than generated
    and compiled for each of the hundred classes (see `dataclass` below).
    """

    __slots__ = ()
    _fields: ClassVar[Callable[[Any], tuple[Any, ...]]]
    _names: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        names = tuple(vars(cls).get("__annotations__", ()))  # its fields, in order (no other annotation)
        if not names:
            return  # an abstract base of nodes (`ActionNode`): nothing to compare
        getter = operator.attrgetter(*names)
        cls._fields = getter if len(names) > 1 else lambda node: (getter(node),)
        cls._names = names

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return type(self)._fields(self) == type(self)._fields(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(type(self)._fields(self))

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in type(self)._names)
        return f"{self.__class__.__qualname__}({shown})"

    def __setattr__(self, name: str, value: object) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")

    def __getstate__(self) -> list[Any]:
        return [getattr(self, name) for name in type(self)._names]

    def __setstate__(self, state: list[Any]) -> None:
        for name, value in zip(type(self)._names, state, strict=False):
            object.__setattr__(self, name, value)


# What the standard `dataclass` records of its options, as far as anything reads them (a
# dataclass inheriting from a node asks `frozen`).
_PARAMS = SimpleNamespace(init=True, repr=True, eq=False, order=False, unsafe_hash=False, frozen=True)


@dataclass_transform(frozen_default=True, eq_default=False)
def dataclass(*, frozen: bool = True, slots: bool = True, eq: bool = False) -> Callable[[T], T]:
    """`@dataclasses.dataclass(frozen=True, slots=True, eq=False)` for a `_Node`, made cheaper.

    The standard decorator compiles four functions for each class (`__init__`, `__repr__`,
    `__setattr__`, `__delattr__`) and builds each class twice; over a hundred node classes that
    was a fifth of `sopdsl check`'s start-up. Here only `__init__` is compiled (setting the slots
    directly, so nodes are also quicker to make); the rest is `_Node`'s, the same for every
    class. The result is a dataclass to `dataclasses.fields`, `replace` and `is_dataclass`;
    tests/syntax/test_nodes.py holds every node class to what the standard decorator makes.
    """
    if not (frozen and slots and not eq):
        raise TypeError("node classes are frozen, slotted, and compare through _Node")
    return _make_node  # type: ignore[return-value]


def _make_node(cls: type[_Node]) -> type[_Node]:
    space = dict(cls.__dict__)
    names = cls._names
    if not issubclass(cls, _Node) or not names or "__slots__" in space or "__post_init__" in space:
        raise TypeError(f"{cls.__name__}: a node class is a _Node with fields, no slots, no __post_init__")
    annotations = space["__annotations__"]
    fields: dict[str, dataclasses.Field[Any]] = {}
    defaults: dict[str, Any] = {}
    for name in names:
        if "ClassVar" in str(annotations[name]) or "InitVar" in str(annotations[name]):
            raise TypeError(f"{cls.__name__}.{name}: node classes take fields only")
        if name in space:
            defaults[name] = space.pop(name)
            if isinstance(defaults[name], dataclasses.Field):
                raise TypeError(f"{cls.__name__}.{name}: plain defaults only")
        field: dataclasses.Field[Any] = dataclasses.field(default=defaults.get(name, dataclasses.MISSING))
        field.name = name
        field.type = annotations[name]
        field.kw_only = False  # resolved, as the standard decorator leaves it
        field._field_type = dataclasses._FIELD  # type: ignore[attr-defined]  # what `fields` keeps
        fields[name] = field
    space.pop("__dict__", None)
    space.pop("__weakref__", None)
    space["__slots__"] = names
    space["__match_args__"] = names
    space["__dataclass_fields__"] = fields
    space["__dataclass_params__"] = _PARAMS
    meta: Any = type(cls)  # `type`, or `ABCMeta` for the action nodes
    made: type[_Node] = meta(cls.__name__, cls.__bases__, space)
    made.__qualname__ = cls.__qualname__
    made.__init__ = _init(made, names, defaults)  # type: ignore[method-assign]
    made.__init__.__annotations__ = {**annotations, "return": None}  # as the standard one has
    return made


def _init(cls: type, names: tuple[str, ...], defaults: dict[str, Any]) -> Callable[..., None]:
    """The class's `__init__`, with the standard decorator's signature, setting each slot."""
    space: dict[str, Any] = {f"_set_{name}": cls.__dict__[name].__set__ for name in names}
    space.update({f"_default_{name}": value for name, value in defaults.items()})
    params = ", ".join(f"{name}=_default_{name}" if name in defaults else name for name in names)
    body = "".join(f"\n    _set_{name}(self, {name})" for name in names)
    exec(f"def __init__(self, {params}):{body}", space)  # our own field names: nothing from outside
    init: Callable[..., None] = space["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    return init
