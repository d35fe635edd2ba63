"""What snapshots are made of below the schema: plain values (`Any`) with their msgpack
extensions, the timer heap's type, and the errors the codecs raise."""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import msgspec

Scalar = str | int | float | bool | None

# Extension codes for `Any` values that plain msgpack would change the type of.
_TUPLE, _DATE, _DATETIME, _TIME, _BIGINT, _MAP = range(1, 7)
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1  # what msgpack holds as an int

Encode = Callable[[Any], Any]
Decode = Callable[[Any], Any]


@dataclasses.dataclass(frozen=True, eq=False)
class Heap:
    """The type of a timer heap: entries `(due, playbook, member, group, seq, timer)`, written as
    `[due, playbook, member, group, seq, kind, *payload]`, each kind's payload a `tuple[...]` type.

    `split` gives a timer's kind and payload, `join` makes the timer back from them; they are not
    part of the shape (only the payload types are), so the typed timers read the tuples' snapshots.
    """

    payloads: Mapping[int, Any]
    split: Callable[[Any], tuple[int, tuple[Any, ...]]]
    join: Callable[[int, tuple[Any, ...]], Any]

    def __repr__(self) -> str:
        kinds = ", ".join(f"{kind}: {_describe(tp)}" for kind, tp in sorted(self.payloads.items()))
        return f"Heap({{{kinds}}})"


class _BadDataError(Exception):
    """A value read does not fit its declared type."""


class _UnsupportedError(Exception):
    """A value to write has a type the codec has no encoding for."""


def describe(schema: Mapping[str, Any]) -> list[str]:
    """The schema as text, for the snapshot's shape hash: a type changed changes the shape."""
    return [f"{name}:{_describe(tp)}" for name, tp in schema.items()]


def describe_type(tp: Any) -> str:
    """One declared type as text (a record's field, for the shape hash)."""
    return _describe(tp)


def _describe(tp: Any) -> str:
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__qualname__
    # A frozenset is written as a set is (a sorted array), so a snapshot written when a member's
    # tags were a set restores into frozen ones: the shape is the same.
    text = repr(tp).replace("sopdsl.engine.state.", "").replace("sopdsl.engine.actions.", "")
    return text.replace("frozenset[", "set[")


def _value_out(value: Any) -> Any:
    """An `Any` value as msgpack data (see the module docstring)."""
    kind = type(value)
    if kind is str or kind is float or kind is bool or value is None:
        return value
    if kind is int:
        return value if _INT_MIN <= value <= _INT_MAX else _ext(_BIGINT, str(value))
    if kind is list:
        return [_value_out(item) for item in value]
    if kind is dict:
        if all(type(key) is str for key in value):
            return {key: _value_out(item) for key, item in value.items()}
        return _ext(_MAP, [[_value_out(key), _value_out(item)] for key, item in value.items()])
    if kind is tuple:
        return _ext(_TUPLE, [_value_out(item) for item in value])
    if kind is dt.datetime:
        return _ext(_DATETIME, value.isoformat())
    if kind is dt.date:
        return _ext(_DATE, value.isoformat())
    if kind is dt.time:
        return _ext(_TIME, value.isoformat())
    # Subclasses (a str enum, a jinja Markup, an OrderedDict) are kept as their plain base type.
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int | float | list | tuple | dict):
        plain: type[Any] = next(t for t in (int, float, list, tuple, dict) if isinstance(value, t))
        return _value_out(plain(value))
    raise _UnsupportedError(f"a value of type {kind.__name__} ({value!r:.60})")


def _ext(code: int, data: Any) -> msgspec.msgpack.Ext:
    return msgspec.msgpack.Ext(code, msgspec.msgpack.encode(data))


def _ext_in(code: int, data: memoryview) -> Any:
    """An extension value read: only the types `_value_out` writes, built from plain data."""
    if code not in (_TUPLE, _MAP, _DATE, _DATETIME, _TIME, _BIGINT):
        raise _BadDataError(f"an unknown extension type {code}")
    inner = _DECODER.decode(data)
    if code == _TUPLE or code == _MAP:
        if type(inner) is not list:
            _bad("an extension", "an array", inner)
        if code == _TUPLE:
            return tuple(inner)
        out = {}
        for pair in inner:
            if type(pair) is not list or len(pair) != 2:
                _bad("a map entry", "a [key, value] pair", pair)
            out[pair[0]] = pair[1]  # an unhashable key raises TypeError: refused
        return out
    if type(inner) is not str:
        _bad("an extension", "a string", inner)
    if code == _BIGINT:
        if not (inner.removeprefix("-").isdigit() and inner.isascii() and len(inner) < 400):
            raise _BadDataError(f"a bad big int {inner[:40]!r}")
        return int(inner)
    # A ValueError for a bad one: refused.
    if code == _DATE:
        return dt.date.fromisoformat(inner)
    if code == _DATETIME:
        return dt.datetime.fromisoformat(inner)
    return dt.time.fromisoformat(inner)


_DECODER = msgspec.msgpack.Decoder(ext_hook=_ext_in)
_VALUE_LEAVES = (str, int, float, bool, type(None), dt.date, dt.datetime, dt.time)


def _value_in(value: Any) -> Any:
    """Check an `Any` value read: plain data and the extension types only."""
    kind = type(value)
    if kind in _VALUE_LEAVES:
        return value
    if kind is list or kind is tuple:
        for item in value:
            _value_in(item)
        return value
    if kind is dict:
        for key, item in value.items():
            if type(key) is tuple:
                _value_in(key)
            elif type(key) not in _VALUE_LEAVES:
                _bad("a map key", "plain data", key)
            _value_in(item)
        return value
    _bad("a value", "plain data", value)


def _bad(what: str, expected: str, found: Any) -> NoReturn:
    raise _BadDataError(f"{what}: expected {expected}, found {type(found).__name__}")
