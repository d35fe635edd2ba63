"""Codecs by declared type: how each type a snapshot's schema names is written and read back,
checked, constructing only the declared types."""

from __future__ import annotations

import collections
import dataclasses
import enum
import functools
import heapq
import operator
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from sopdsl.engine.record_types import field_types
from sopdsl.engine.snapshot_values import (
    Decode,
    Encode,
    Heap,
    _bad,
    _BadDataError,
    _UnsupportedError,
    _value_in,
    _value_out,
)
from sopdsl.errors import EngineError

# ---- codecs by type ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Codec:
    """How one declared type is written and read; both check the value against the type."""

    encode: Encode
    decode: Decode
    scalar: frozenset[type] | None = None  # a scalar type: the Python types it allows


@functools.cache
def _codec_table(schema: tuple[tuple[str, Any], ...]) -> dict[str, _Codec]:
    return {name: _codec(tp) for name, tp in schema}


def _codecs(schema: Mapping[str, Any]) -> dict[str, _Codec]:
    try:
        return _codec_table(tuple(schema.items()))
    except _UnsupportedError as exc:
        raise EngineError(f"engine snapshots cannot hold {exc}") from None


_EMPTY: frozenset[Any] = frozenset()
_SCALARS: dict[Any, frozenset[type]] = {
    str: frozenset((str,)),
    int: frozenset((int,)),
    float: frozenset((float, int)),  # 1 is a float as far as typing goes, and stays an int
    bool: frozenset((bool,)),
    type(None): frozenset((type(None),)),
    None: frozenset((type(None),)),
}


def _scalar_types(tp: Any) -> frozenset[type] | None:
    """The Python types a scalar type (or a union of them) allows, or None if it is not one."""
    if tp in _SCALARS:
        return _SCALARS[tp]
    if typing.get_origin(tp) in (types.UnionType, typing.Union):
        found: frozenset[type] = frozenset()
        for arg in typing.get_args(tp):
            allowed = _scalar_types(arg)
            if allowed is None:
                return None
            found |= allowed
        return found
    return None


def _codec(tp: Any) -> _Codec:
    """The codec of a declared type; raises `_UnsupportedError` for a type it cannot encode."""
    allowed = _scalar_types(tp)
    if allowed is not None:
        check = _checker(allowed, _type_name(tp))
        return _Codec(check, check, allowed)
    if tp is Any:
        return _Codec(_value_out, _value_in)
    if tp is ZoneInfo:
        return _Codec(_zone_out, _zone_in)
    if isinstance(tp, Heap):
        return _heap_codec(tp)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _enum_codec(tp)
    if typing.get_origin(tp) is typing.Literal:
        return _literal_codec(typing.get_args(tp))
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _record_codec(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        rest = [arg for arg in args if arg is not type(None)]
        if len(rest) == 1 and len(args) == 2:
            return _optional(_codec(rest[0]))
        if rest and all(dataclasses.is_dataclass(arg) and isinstance(arg, type) for arg in rest):
            tagged = _tagged_codec(rest)
            return _optional(tagged) if len(rest) < len(args) else tagged
    if origin in (list, set, frozenset, collections.deque) and len(args) == 1:
        return _sequence_codec(origin, _codec(args[0]), args[0])
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _sequence_codec(tuple, _codec(args[0]), args[0])
    if origin is tuple and args:
        return _tuple_codec([_codec(arg) for arg in args], tp)
    if origin is dict and len(args) == 2:
        if typing.get_origin(args[0]) is tuple:
            return _pairs_codec(_codec(args[0]), _codec(args[1]))
        if args[0] in (str, int):
            return _map_codec(args[0], _codec(args[1]), args[1])
    raise _UnsupportedError(f"a value of type {tp!r}")


def _type_name(tp: Any) -> str:
    return str(getattr(tp, "__name__", None) or repr(tp))


def _checker(allowed: frozenset[type], name: str) -> Decode:
    def check(value: Any) -> Any:
        if type(value) not in allowed:
            _bad("a value", name, value)
        return value

    return check


def _check_all(allowed: frozenset[type], name: str, values: Any, what: str = "an item") -> None:
    if not allowed.issuperset(map(type, values)):
        _bad(what, name, next(x for x in values if type(x) not in allowed))


def _enum_codec(cls: type[enum.Enum]) -> _Codec:
    """An enum member as its value (a str or an int); read back by looking the value up in the enum."""
    if not all(type(m.value) in (str, int) for m in cls):
        raise _UnsupportedError(f"enum {cls.__name__} (its values are not all str or int)")
    members = {m.value: m for m in cls}

    def encode(value: Any) -> Any:
        if type(value) is not cls:
            _bad("an enum member", cls.__name__, value)
        return value.value

    def decode(value: Any) -> Any:
        if type(value) not in (str, int) or value not in members:
            raise _BadDataError(f"not a {cls.__name__}: {str(value)[:40]!r}")
        return members[value]

    return _Codec(encode, decode)


def _literal_codec(values: tuple[Any, ...]) -> _Codec:
    """`Literal[...]` of str, int or bool values: the value itself, one of those."""
    if not all(type(v) in (str, int, bool) for v in values):
        raise _UnsupportedError(f"Literal{list(values)} (only str, int and bool literals)")
    allowed = {(type(v), v) for v in values}

    def check(value: Any) -> Any:
        if (type(value), value) not in allowed:
            raise _BadDataError(f"not one of {sorted(map(str, values))}: {str(value)[:40]!r}")
        return value

    return _Codec(check, check)


def _optional(inner: _Codec) -> _Codec:
    enc, dec = inner.encode, inner.decode

    def encode(value: Any) -> Any:
        return None if value is None else enc(value)

    def decode(value: Any) -> Any:
        return None if value is None else dec(value)

    return _Codec(encode, decode)


def _zone_out(zone: Any) -> str:
    if type(zone) is not ZoneInfo or zone.key is None:
        raise _UnsupportedError(f"a time zone without a name ({zone!r:.60})")
    return str(zone.key)


_ZONE_NAME = re.compile(r"[A-Za-z0-9_+-]{1,40}(/[A-Za-z0-9_+-]{1,40}){0,3}")  # IANA: no dots, no root


def _zone_in(value: Any) -> ZoneInfo:
    if type(value) is not str:
        _bad("a time zone", "its name", value)
    if not _ZONE_NAME.fullmatch(value):
        raise _BadDataError(f"a time zone {value[:60]!r}: not a zone name")
    try:
        return ZoneInfo(value)
    except (ValueError, OSError, KeyError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise _BadDataError(f"a time zone {value[:60]!r} ({type(exc).__name__})") from None


def _sequence_codec(origin: Any, item: _Codec, item_type: Any) -> _Codec:
    """`set[T]`, `frozenset[T]`, `list[T]`, `deque[T]` or `tuple[T, ...]`: an array (a set's sorted)."""
    enc, dec, scalar = item.encode, item.decode, item.scalar
    name = _type_name(item_type)
    if origin is not set and origin is not frozenset:
        order: Callable[[Any], list[Any]] = list
    elif item_type in (str, int):
        order = sorted
    else:  # mixed types (fired keys hold str, int and None): by their encoding, a total order
        order = functools.partial(sorted, key=msgspec.msgpack.encode)
    deque = origin is collections.deque

    def encode(value: Any) -> Any:
        if type(value) is not origin:
            _bad("a collection", origin.__name__, value)
        if not value:
            return []
        if deque and value.maxlen is not None:
            raise _UnsupportedError("a deque with a maximum length")
        if scalar is None:
            return order([enc(x) for x in value])
        if not scalar.issuperset(map(type, value)):
            _check_all(scalar, name, value)
        return order(value)

    def decode(value: Any) -> Any:
        if type(value) is not list:
            _bad("a collection", "an array", value)
        if scalar is None:
            value = [dec(x) for x in value]
        elif value and not scalar.issuperset(map(type, value)):
            _check_all(scalar, name, value)
        if origin is frozenset and not value:
            return _EMPTY  # shared, as the engine shares it: a restored member costs what a new one does
        return value if origin is list else origin(value)

    return _Codec(encode, decode)


def _tuple_codec(items: list[_Codec], tp: Any) -> _Codec:
    """`tuple[A, B, ...]`: an array of its items; tuples of scalars are checked by their item types."""
    size = len(items)
    name = _type_name(tp)
    allowed = [a for c in items if (a := c.scalar) is not None]
    if len(allowed) == size:
        seen: set[tuple[type, ...]] = set()

        def check(value: Any, shape: tuple[type, ...]) -> None:
            if len(shape) != size or any(t not in a for t, a in zip(shape, allowed, strict=True)):
                _bad("a tuple", name, value)
            if len(seen) < 1024:
                seen.add(shape)

        def encode(value: Any) -> Any:
            if type(value) is not tuple:
                _bad("a tuple", name, value)
            shape = tuple(map(type, value))
            if shape not in seen:
                check(value, shape)
            return list(value)

        def decode(value: Any) -> Any:
            if type(value) is not list:
                _bad("a tuple", name, value)
            shape = tuple(map(type, value))
            if shape not in seen:
                check(value, shape)
            return tuple(value)

        return _Codec(encode, decode)

    encoders = [c.encode for c in items]
    decoders = [c.decode for c in items]

    def encode_mixed(value: Any) -> Any:
        if type(value) is not tuple or len(value) != size:
            _bad("a tuple", name, value)
        return [e(x) for e, x in zip(encoders, value, strict=True)]

    def decode_mixed(value: Any) -> Any:
        if type(value) is not list or len(value) != size:
            _bad("a tuple", name, value)
        return tuple([d(x) for d, x in zip(decoders, value, strict=True)])

    return _Codec(encode_mixed, decode_mixed)


def _map_codec(key_type: Any, item: _Codec, item_type: Any) -> _Codec:
    """`dict[str, V]` or `dict[int, V]`: a msgpack map, in insertion order."""
    enc, dec, scalar = item.encode, item.decode, item.scalar
    keys = _SCALARS[key_type]
    key_name = _type_name(key_type)

    def check(value: Any) -> None:
        _check_all(keys, key_name, value, "a map key")
        if scalar is not None:
            _check_all(scalar, _type_name(item_type), value.values(), "a map value")

    def encode(value: Any) -> Any:
        if type(value) is not dict:
            _bad("a map", "a dict", value)
        if not value:
            return value
        if not keys.issuperset(map(type, value)):
            check(value)
        if scalar is None:
            return {k: enc(v) for k, v in value.items()}
        if not scalar.issuperset(map(type, value.values())):
            check(value)
        return value

    def decode(value: Any) -> Any:
        if type(value) is not dict:
            _bad("a map", "a map", value)
        if not value:
            return value
        if not keys.issuperset(map(type, value)):
            check(value)
        if scalar is not None:
            if not scalar.issuperset(map(type, value.values())):
                check(value)
            return value
        try:
            for key, item in value.items():
                value[key] = dec(item)
        except _BadDataError as exc:
            raise _BadDataError(f"[{str(key)[:40]!r}] {exc}") from None
        return value

    return _Codec(encode, decode)


def _pairs_codec(key: _Codec, item: _Codec) -> _Codec:
    """`dict[tuple[...], V]`: an array of `[key, value]` pairs, each key an array, in insertion order."""
    key_enc, key_dec = key.encode, key.decode
    enc, dec = item.encode, item.decode

    def encode(value: Any) -> Any:
        if type(value) is not dict:
            _bad("a map", "a dict", value)
        return [[key_enc(k), enc(v)] for k, v in value.items()]

    def decode(value: Any) -> Any:
        if type(value) is not list:
            _bad("a map with tuple keys", "an array of pairs", value)
        out = {}
        for pair in value:
            if type(pair) is not list or len(pair) != 2:
                _bad("a map entry", "a [key, value] pair", pair)
            out[key_dec(pair[0])] = dec(pair[1])
        return out

    return _Codec(encode, decode)


def _record_codec(cls: type[Any]) -> _Codec:
    """A dataclass as the array of its fields in declared order, each of its type (`field_types`)."""
    try:
        hints = field_types(cls)
    except Exception as exc:
        raise _UnsupportedError(f"{cls.__name__} (its field types do not resolve: {exc})") from None
    names = [f.name for f in dataclasses.fields(cls)]
    codecs: list[_Codec] = []
    for name in names:
        try:
            codecs.append(_codec(hints[name]))
        except _UnsupportedError as exc:
            raise _UnsupportedError(f"{cls.__name__}.{name}: {exc}") from None
    size = len(names)
    fetch = operator.attrgetter(*names) if names else (lambda _obj: ())
    # Scalar fields are checked all at once, by the tuple of the row's types: the combinations
    # met (a handful: which optional fields are set) are remembered. Other fields have codecs.
    scalars = [(i, c.scalar) for i, c in enumerate(codecs) if c.scalar is not None]
    encoders = [(i, c.encode) for i, c in enumerate(codecs) if c.scalar is None]
    decoders = [(i, c.decode) for i, c in enumerate(codecs) if c.scalar is None]
    seen: set[tuple[type, ...]] = set()

    def check(row: list[Any], shape: tuple[type, ...]) -> None:
        for i, allowed in scalars:
            if shape[i] not in allowed:
                _bad(f"{cls.__name__}.{names[i]}", _type_name(hints[names[i]]), row[i])
        if len(seen) < 1024:
            seen.add(shape)

    def encode(obj: Any) -> Any:
        if type(obj) is not cls:
            _bad("a record", cls.__name__, obj)
        row = list(fetch(obj)) if size != 1 else [fetch(obj)]
        shape = tuple(map(type, row))
        if shape not in seen:
            check(row, shape)
        for i, enc in encoders:
            try:
                row[i] = enc(row[i])
            except (_BadDataError, _UnsupportedError) as exc:
                raise type(exc)(f"{cls.__name__}.{names[i]}: {exc}") from None
        return row

    def decode(row: Any) -> Any:
        if type(row) is not list or len(row) != size:
            _bad(cls.__name__, f"an array of its {size} fields", row)
        shape = tuple(map(type, row))
        if shape not in seen:
            check(row, shape)
        for i, dec in decoders:
            try:
                row[i] = dec(row[i])
            except _BadDataError as exc:
                raise _BadDataError(f"{cls.__name__}.{names[i]}: {exc}") from None
        return cls(*row)

    return _Codec(encode, decode)


def _tagged_codec(classes: list[type[Any]]) -> _Codec:
    """A union of dataclasses: `[class name, *fields]`; read back only as one of the union's classes."""
    by_name: dict[str, tuple[type[Any], _Codec]] = {}
    for cls in classes:
        if cls.__name__ in by_name:
            raise _UnsupportedError(f"a union of two classes named {cls.__name__}")
        by_name[cls.__name__] = (cls, _record_codec(cls))
    by_class = {cls: (name, codec.encode) for name, (cls, codec) in by_name.items()}
    names = " | ".join(by_name)

    def encode(value: Any) -> Any:
        found = by_class.get(type(value))
        if found is None:
            _bad("a value", names, value)
        name, enc = found
        return [name, *enc(value)]

    def decode(value: Any) -> Any:
        if type(value) is not list or not value or type(value[0]) is not str or value[0] not in by_name:
            _bad("a value", f"[one of {names}, *its fields]", value)
        return by_name[value[0]][1].decode(value[1:])

    return _Codec(encode, decode)


_ENTRY_HEAD = (int, int, str, str, int, int)  # due, playbook, member, group, seq, kind


def _heap_codec(spec: Heap) -> _Codec:
    """The timer heap: its entries in heap order, each with the payload its kind declares."""
    payloads: dict[int, tuple[list[Encode], list[Decode]]] = {}
    for kind, tp in spec.payloads.items():
        if typing.get_origin(tp) is not tuple:
            raise _UnsupportedError(f"timer payload {tp!r} (declare a tuple[...])")
        codecs = [_codec(arg) for arg in typing.get_args(tp)]
        payloads[kind] = ([c.encode for c in codecs], [c.decode for c in codecs])

    split, join = spec.split, spec.join

    def encode(heap: Any) -> Any:
        if type(heap) is not list:
            _bad("the heap", "a list", heap)
        out = []
        for entry in heap:
            if type(entry) is not tuple or len(entry) != 6 or tuple(map(type, entry[:5])) != _ENTRY_HEAD[:5]:
                _bad("a timer", "(due, playbook, member, group, seq, timer)", entry)
            kind, payload = split(entry[5])
            if kind not in payloads:
                raise _UnsupportedError(f"a timer of kind {kind!r}")
            encoders = payloads[kind][0]
            if len(payload) != len(encoders):
                raise _UnsupportedError(f"a timer of kind {kind} with {len(payload)} payload items")
            row = [*entry[:5], kind]
            row.extend([e(x) for e, x in zip(encoders, payload, strict=True)])
            out.append(row)
        return out

    def decode(value: Any) -> Any:
        if type(value) is not list:
            _bad("the heap", "an array", value)
        heap = []
        for row in value:
            if type(row) is not list or len(row) < 6 or tuple(map(type, row[:6])) != _ENTRY_HEAD:
                _bad("a timer", "[due, playbook, member, group, seq, kind, ...]", row)
            kind = row[5]
            if kind not in payloads:
                raise _BadDataError(f"a timer of unknown kind {kind}")
            decoders = payloads[kind][1]
            if len(row) != 6 + len(decoders):
                raise _BadDataError(
                    f"a timer of kind {kind} with {len(row) - 6} payload items, not {len(decoders)}"
                )
            payload = tuple(d(x) for d, x in zip(decoders, row[6:], strict=True))
            heap.append((*row[:5], join(kind, payload)))
        if len({entry[4] for entry in heap}) != len(heap):
            raise _BadDataError("two timers with one sequence number")
        heapq.heapify(heap)  # leaves a heap as written as it is; puts a reordered one right
        return heap

    return _Codec(encode, decode)
