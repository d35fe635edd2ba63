"""What the builders share: tuples marking what a built child is, and lookups among built children."""

from __future__ import annotations

from typing import Any, TypeVar

from sopdsl.syntax import nodes as n

T = TypeVar("T")


# Built lists and blocks are tuples of their own type, so a parent builder can pick a child out
# by its type (`_of`, `_list`) whatever optional children come before it.
class _Names(tuple[n.Name, ...]):
    __slots__ = ()


class _Strs(tuple[n.Str, ...]):
    __slots__ = ()


class _Times(tuple[n.Time, ...]):
    __slots__ = ()


class _Dates(tuple[n.Date, ...]):
    __slots__ = ()


class _Steps(tuple[Any, ...]):
    __slots__ = ()


class _Block(tuple[Any, ...]):
    """Steps of a `block`, remembering whether they were braced."""

    braced: bool = True


class _Then(_Steps):
    __slots__ = ()


class _Else(_Steps):
    __slots__ = ()


def _of(children: list[Any], kind: type[T]) -> T | None:
    for child in children:
        if isinstance(child, kind):
            return child
    return None


def _all(children: list[Any], kind: type[T]) -> tuple[T, ...]:
    return tuple(child for child in children if isinstance(child, kind))


def _list(children: list[Any], kind: type[tuple[T, ...]]) -> tuple[T, ...]:
    found = _of(children, kind)
    return tuple(found) if found is not None else ()


def _fields(children: list[Any]) -> tuple[n.Field, ...]:
    for child in children[1:]:
        if isinstance(child, tuple):
            return child
    return ()
