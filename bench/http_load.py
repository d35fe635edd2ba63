"""The load clients' connection: one keep-alive HTTP/1.1 connection posting a request, reading its
answer and posting the next, with no HTTP library (one preformatted request a write), so the client
costs the machine little. `bench/live_http.py` posts single events with it, `bench/live_pg.py`
lists of events."""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from typing import Any


class Poster(asyncio.Protocol, ABC):
    """Posts `request()`'s body to its path until `end`; answers other than 202 are errors, and the
    latencies of requests sent from `begin` on are kept."""

    def __init__(self, slot: int, port: int, begin: float, end: float, done: Any) -> None:
        self.slot, self.port, self.begin, self.end, self.done = slot, port, begin, end, done
        self.number = 0
        self.sent_at = 0.0
        self.buffer = b""
        self.latencies: list[float] = []
        self.errors = 0
        self.transport: asyncio.Transport | None = None

    @abstractmethod
    def request(self) -> tuple[str, bytes]:
        """The next request's path and JSON body (`self.number` is its number, from 1)."""

    def answered(self, now: float) -> None:
        """A 202 came for the request sent at `self.sent_at`."""
        if self.sent_at >= self.begin:
            self.latencies.append(now - self.sent_at)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport
        self.send()

    def send(self) -> None:
        assert self.transport is not None
        self.number += 1
        path, body = self.request()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.sent_at = time.monotonic()
        self.transport.write(head + body)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end]
        at = head.lower().find(b"content-length:")
        length = int(head[at + 15 : head.find(b"\r\n", at) if head.find(b"\r\n", at) > 0 else None])
        if len(self.buffer) < end + 4 + length:
            return
        self.buffer = self.buffer[end + 4 + length :]
        now = time.monotonic()
        if not head.startswith(b"HTTP/1.1 202"):
            self.errors += 1
        else:
            self.answered(now)
        if now >= self.end:
            assert self.transport is not None
            self.transport.close()
        else:
            self.send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)
