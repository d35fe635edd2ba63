"""Engine snapshots as data: a versioned msgpack document, encoded and decoded by declared types.

Input: the engine's state as a mapping of names to values, and a schema naming each one's type
(`Engine` declares both). Output: bytes, and back. Nothing here imports, calls or constructs
anything the data names: the schema alone decides what each value becomes, and every value read
is checked against its declared type, so a blob written by someone else is refused with an
`EngineError`, never run. Pickle is not used, and a pickle blob is recognised and not read.

A blob is `MAGIC`, the codec version (2 bytes, big-endian), the shape of the state (16 ASCII
characters: `engine.SNAPSHOT_FORMAT`), then one msgpack map of state names to values:

- str, int, float, bool and None as themselves; `X | None` as either;
- a dataclass (a member, group, flow or action) as an array of its fields in declared order (the
  shape covers the fields' names and order); a field added later just gets encoded;
- a union of dataclasses (what a flow waits for), or of them and None, as
  `[class name, *fields]`: read back only as one of the union's own classes;
- `set[T]` as a sorted array, `list[T]`, `deque[T]` and `tuple[...]` as arrays;
- `dict[K, V]` with str or int keys as a map (insertion order kept); with tuple keys as an array
  of `[key, value]` pairs, each key an array;
- `ZoneInfo` as its key ("Asia/Shanghai"); an enum member as its value; a `Literal` as itself;
- `Any` (attributes, event data, action details) as plain msgpack where the value is plain
  (None, bool, int, float, str, list, dict with str keys) and as a msgpack extension otherwise:
  a tuple, a date, a datetime, a time (as ISO text: an aware one keeps its offset, not its zone
  name), an int beyond 64 bits, a dict with other keys; anything else is refused when written;
- the timer heap (`Heap`) as an array of entries in heap order, each
  `[due, playbook, member, group, seq, kind, *payload]` with its payload typed by its kind.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

import msgspec

from sopdsl.engine.snapshot_types import _codecs
from sopdsl.engine.snapshot_values import (
    _DECODER,
    Heap,
    Scalar,
    _bad,
    _BadDataError,
    _UnsupportedError,
    describe,
    describe_type,
)
from sopdsl.errors import EngineError
from sopdsl.gcpause import paused_gc

__all__ = ["CODEC_VERSION", "MAGIC", "Heap", "Scalar", "decode", "describe", "describe_type", "encode"]

MAGIC = b"sopdsl-snapshot\x00"
CODEC_VERSION = 1  # bump when the encoding below changes in a way older blobs do not fit
_HEADER = struct.Struct(">H16s")

# ---- writing ---------------------------------------------------------------------------------------


@paused_gc  # a large state makes many small containers: collections would scan them all, repeatedly
def encode(state: Mapping[str, Any], schema: Mapping[str, Any], shape: str) -> bytes:
    """`state` (every name in `schema`) as a snapshot blob; raises `EngineError` for a value the
    codec cannot write (a type no schema declares, say)."""
    codecs = _codecs(schema)
    body: dict[str, Any] = {}
    try:
        for name, codec in codecs.items():
            value = state[name]
            body[name] = codec.encode(value)
        data = msgspec.msgpack.encode(body)
    except (_BadDataError, _UnsupportedError, TypeError, ValueError, OverflowError) as exc:
        raise EngineError(f"cannot snapshot the engine: {exc}") from None
    return MAGIC + _HEADER.pack(CODEC_VERSION, shape.encode("ascii")) + data


# ---- reading ---------------------------------------------------------------------------------------


@paused_gc
def decode(blob: bytes, schema: Mapping[str, Any], shape: str) -> dict[str, Any]:
    """The state a snapshot blob holds, by name; raises `EngineError` saying why for any blob
    that is not a well-formed snapshot of this codec version and shape."""
    data = bytes(blob)
    if data[:1] == b"\x80":
        raise EngineError("engine snapshot of an older format (pickle, never unpickled)")
    if not data.startswith(MAGIC):
        raise EngineError("unreadable engine snapshot (not a sopdsl engine snapshot)")
    try:
        version, found = _HEADER.unpack_from(data, len(MAGIC))
    except struct.error:
        raise EngineError("unreadable engine snapshot (truncated header)") from None
    if version != CODEC_VERSION:
        age = "an older" if version < CODEC_VERSION else "a newer"
        raise EngineError(
            f"engine snapshot of {age} format (codec version {version}, this sopdsl reads {CODEC_VERSION})"
        )
    found_shape = found.decode("ascii", "replace")
    if found_shape != shape:
        raise EngineError(f"engine snapshot format {found_shape}, not {shape}")
    codecs = _codecs(schema)
    try:
        body = _DECODER.decode(memoryview(data)[len(MAGIC) + _HEADER.size :])
        if type(body) is not dict:
            _bad("the document", "a map", body)
        if set(body) != set(codecs):
            missing = sorted(set(codecs) - set(body), key=str)
            extra = sorted(set(body) - set(codecs), key=str)
            raise _BadDataError(f"the document's keys differ (missing {missing}, unexpected {extra})")
        state: dict[str, Any] = {}
        for name, codec in codecs.items():
            try:
                state[name] = codec.decode(body[name])
            except _BadDataError as exc:
                raise _BadDataError(f"{name}: {exc}") from None
    except _BadDataError as exc:
        raise EngineError(f"unreadable engine snapshot ({exc})") from None
    except Exception as exc:  # msgspec's DecodeError, a RecursionError from deep nesting, ...
        raise EngineError(f"unreadable engine snapshot ({type(exc).__name__}: {exc})") from None
    return state
