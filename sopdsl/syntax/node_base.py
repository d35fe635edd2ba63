"""The base every node of the syntax tree shares (`sopdsl.syntax.nodes`): equality and hashing."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from sopdsl.source import Span

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
    the hash of the field tuple). Written once here rather than generated and compiled for each
    of the hundred classes (`eq=False` on them), which saves about 10 ms of start-up.
    """

    __slots__ = ()
    _fields: ClassVar[Callable[[Any], tuple[Any, ...]]]

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        names = tuple(vars(cls).get("__annotations__", ()))  # its fields, in order (no other annotation)
        if not names:
            return  # an abstract base of nodes (`ActionNode`): nothing to compare
        getter = operator.attrgetter(*names)
        cls._fields = getter if len(names) > 1 else lambda node: (getter(node),)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return type(self)._fields(self) == type(self)._fields(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(type(self)._fields(self))
