"""Request bodies at the service's edge: read within a size limit and a time limit, then decoded as
bounded JSON.

Input: an ASGI request's body stream (with or without `Content-Length`: chunked bodies are
read too). Output: the decoded JSON value, or a `BodyError` carrying the HTTP status to answer
(413 too large, 408 too slow, 415 not JSON, 400 malformed or beyond the nesting and number
limits) and a message that says what to change. Nothing here raises anything else for a
client's mistake: a deeply nested list or a 5,000-digit number is a 400, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import AsyncIterator
from typing import Any

import msgspec

MAX_BODY = 4 * 1024 * 1024  # bytes: about 10,000 events in one list
MAX_DEPTH = 32  # nesting of lists and objects; an event needs 3
MAX_NUMBER_DIGITS = 40  # characters of one number: ids and amounts fit, a 5,000-digit number does not
BODY_TIMEOUT = 30.0  # seconds to receive a whole body; a slower sender is answered 408
# An oversized body is read on (and dropped) up to this much, so the client, still sending, gets
# the 413 rather than a reset; beyond it the connection is closed after the answer.
DRAIN_LIMIT = 64 * 1024 * 1024


class BodyError(Exception):
    """A body refused at the edge: the HTTP status to answer with, and what is wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def check_content_type(value: str | None) -> None:
    """Raise 415 unless the body is declared JSON: a web page cannot send that without a CORS preflight."""
    kind = (value or "").split(";", 1)[0].strip().lower()
    if kind != "application/json" and not (kind.startswith("application/") and kind.endswith("+json")):
        shown = f"'{value}'" if value else "none"
        raise BodyError(415, f"send the body as JSON with Content-Type: application/json (got {shown})")


async def read_body(
    stream: AsyncIterator[bytes],
    declared: str | None,
    *,
    limit: int = MAX_BODY,
    timeout: float = BODY_TIMEOUT,
) -> bytes:
    """The whole body, at most `limit` bytes, within `timeout` seconds; raise `BodyError` (413, 408, 400)."""
    too_large = BodyError(413, f"the body is over {limit} bytes; send fewer events per request")
    if declared is not None:
        if not declared.strip().isdigit():
            raise BodyError(400, f"Content-Length must be a number of bytes, got '{declared}'")
        if int(declared) > limit:
            await _drain(stream, timeout)
            raise too_large
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in stream:
                size += len(chunk)
                if size > limit:
                    await _drain(stream, timeout)
                    raise too_large
                chunks.append(chunk)
    except TimeoutError:
        raise BodyError(408, f"the body did not arrive within {timeout:g} s") from None
    return b"".join(chunks)


def whole_body(body: bytes, declared: str | None, *, limit: int = MAX_BODY) -> bytes:
    """`read_body` for a body already received whole: the same checks, nothing to wait for."""
    if declared is not None and not declared.strip().isdigit():
        raise BodyError(400, f"Content-Length must be a number of bytes, got '{declared}'")
    if len(body) > limit or (declared is not None and int(declared) > limit):
        raise BodyError(413, f"the body is over {limit} bytes; send fewer events per request")
    return body


async def _drain(stream: AsyncIterator[bytes], timeout: float) -> None:
    """Read and drop the rest of a refused body, within bounds (see DRAIN_LIMIT)."""
    dropped = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in stream:
                dropped += len(chunk)
                if dropped > DRAIN_LIMIT:
                    break
    except TimeoutError:
        pass


def decode_json(raw: bytes) -> Any:
    """The JSON value of a body; raise `BodyError` (400) for text that is not UTF-8 JSON within the limits."""
    # msgspec's decoder, about ten times faster, takes a body with no run of number characters
    # longer than a number may be; for anything it refuses (or nests too deep) the careful
    # reading below decides, and says what is wrong.
    if not _LONG_NUMBER.search(raw):
        try:
            value = _DECODER.decode(raw)
        except (msgspec.DecodeError, RecursionError):
            pass
        else:
            # Nesting needs an opening bracket a level: with few of them, no need to walk the value.
            if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH or _depth(value) <= MAX_DEPTH:
                return value
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError(400, "the body is not UTF-8") from None
    try:
        value = json.loads(
            text, parse_int=_number(int), parse_float=_number(float), parse_constant=_no_constant
        )
    except json.JSONDecodeError as exc:
        raise BodyError(
            400, f"the body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except _LimitError as exc:
        raise BodyError(400, str(exc)) from None
    except RecursionError:
        raise BodyError(400, f"the body nests lists or objects deeper than {MAX_DEPTH} levels") from None
    if _depth(value) > MAX_DEPTH:
        raise BodyError(400, f"the body nests lists or objects deeper than {MAX_DEPTH} levels")
    return value


def _finite(text: str) -> float:
    """A JSON float, refused where it is beyond a float (1e999 reads as infinity, which JSON
    cannot carry back out): the careful reading then says so."""
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(text)
    return number


_DECODER = msgspec.json.Decoder(float_hook=_finite)
_LONG_NUMBER = re.compile(rb"[-+.0-9eE]{%d,}" % (MAX_NUMBER_DIGITS + 1))


class _LimitError(ValueError):
    """A JSON value beyond the limits (json.loads lets a hook's exception through)."""


def _number(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        if len(text) > MAX_NUMBER_DIGITS:
            raise _LimitError(
                f"the body holds a number of {len(text)} characters; at most {MAX_NUMBER_DIGITS} are taken"
            )
        number = kind(text)
        if isinstance(number, float) and not math.isfinite(number):
            raise _LimitError(f"the body holds a number out of range: {text}")
        return number

    return parse


def _no_constant(name: str) -> Any:
    raise _LimitError(f"the body holds {name}, which is not JSON")


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in a decoded value (iterative: no recursion limit)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
        else:
            continue
        deepest = max(deepest, level + 1)
        if deepest > MAX_DEPTH:
            break
    return deepest
