"""An import's body read line by line however it is cut into chunks, in time linear in its size,
and answered once it stops arriving.

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
from asgiclient import Client
from test_admin import AUTH, START, admin_service

from sopdsl.live import admin
from sopdsl.live.app import create_app
from sopdsl.live.clock import ManualClock
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
        for _ in range(5):  # the best of five: a busy machine slows some runs, never speeds one up
            start = time.perf_counter()
            read(chunks(b"a" * length + b"\n", 1))
            best = min(best, time.perf_counter() - start)
        return best

    # Sixteen times the bytes: about sixteen times the time where quadratic work would take 256
    # times (eight times the bytes took over thirty times, and growing, before the fix).
    assert seconds(64_000) / seconds(4_000) < 64


def test_an_import_that_stops_sending_is_answered_with_what_it_imported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # It held its connection for good: a client that sent a few rows and then nothing kept one
    # of the service's connections, and a few thousand such kept every one.
    monkeypatch.setattr(admin, "IMPORT_IDLE", 0.2, raising=False)

    async def stalled() -> AsyncIterator[bytes]:
        yield "id,name\nm1,甲\nm2,乙\nm3,".encode()
        await asyncio.sleep(30)
        yield b"never\n"

    service = admin_service("memory://", ManualClock(START))
    try:
        client = Client(create_app(service))
        started = time.monotonic()
        answer = client.post(
            "/admin/members/import", content=stalled(), headers={**AUTH, "Content-Type": "text/csv"}
        )
        assert time.monotonic() - started < 10
        assert answer.status_code == 408, answer.text
        assert answer.json()["imported"] == 2
        assert "no byte of the body came for 0.2 s" in answer.json()["failed"][-1]["error"]
        assert client.get("/admin/members/m2", headers=AUTH).status_code == 200
        assert client.get("/admin/members/m3", headers=AUTH).status_code == 404
    finally:
        service.runtime.close()
