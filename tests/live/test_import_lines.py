"""An import's body read line by line however it is cut into chunks, in time linear in its size.

Before, each chunk was added to the unfinished line and the whole was split again: a line sent a
byte a packet cost the event loop, which every request of the service shares, the line's length
at every byte: 0.6 s of CPU for one line of 60 KB (a line may hold 64 KB, `MAX_LINE`), and as
much again for each such line of an import that never ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from sopdsl.live.member_records import MAX_LINE, RecordError, lines_of

BODY = b"id,name\r\nm1,\xe7\x94\xb2\nm2,\xff\n\nm4,last"


async def chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def read(stream: AsyncIterator[bytes]) -> list[tuple[int, str]]:
    async def all_lines() -> list[tuple[int, str]]:
        return [(n, str(line)) async for n, line in lines_of(stream)]

    return asyncio.run(all_lines())


@pytest.mark.parametrize("size", [1, 2, 3, 7, len(BODY)])
def test_the_lines_are_the_same_however_the_body_is_cut(size: int) -> None:
    assert read(chunks(BODY, size)) == read(chunks(BODY, len(BODY)))
    lines = read(chunks(BODY, size))
    assert [n for n, _ in lines] == [1, 2, 3, 4, 5] and lines[1][1] == "m1,甲" and lines[4][1] == "m4,last"


def test_a_line_too_long_is_refused_even_sent_a_byte_at_a_time() -> None:
    with pytest.raises(RecordError, match="line 2: longer than"):
        read(chunks(b"id\n" + b"a" * (MAX_LINE + 1), 1024))


def test_a_line_sent_a_byte_at_a_time_takes_time_linear_in_its_length() -> None:
    def seconds(length: int) -> float:
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            read(chunks(b"a" * length + b"\n", 1))
            best = min(best, time.perf_counter() - start)
        return best

    # Eight times the bytes: about eight times the time (it was over thirty times, and growing).
    assert seconds(64_000) / seconds(8_000) < 20
