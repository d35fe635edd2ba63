"""`sopdsl run --fronts N`: HTTP front processes before the one process that holds the store.

Input: the service's ASGI app (`app.py`), a host and a port, how many fronts. Output: the port,
listening, served by N front processes (`front.py`, each uvicorn on the inherited socket), each
sending every request it reads to this process over its own Unix socket (a socketpair) as
length-prefixed frames; here the app answers it exactly as it answers a request it reads
itself (the `Host` and token checks, body limits, group commit: an event's answer comes after
its commit), and the answer goes back the same way. So parsing HTTP, the connections' system
calls and the responses' writing run on other cores than the store's commits, while the store
keeps one writer and one process's answers; the fronts hold no state.

A front that dies is started again (what it was forwarding was fed or not, as for a client
that went away); a front whose store process died exits. `stop` stops the fronts first, which
finish the requests they hold, then this side.

Frames (msgpack, after a 4-byte big-endian length): a front sends `[id, method, path, query,
headers, body, more]` to begin a request, `[id, chunk, more]` for each further part of a body
read in parts (a chunk of None: the client went away), and `[0]` once it serves; this side
answers that with `[0, checks]` (the allowed hosts, the tokens, the shard), and each request
with `[id, status, headers, body]`. A `POST /events` that passes the checks the app would make
(`Host`, token, JSON body within the limits) comes as `[id, payload]`, decoded: the front did
the checking and decoding, so here only the feeding is left, and the answer goes back as
`[id, status, json]` for the front to render. Whatever fails a
check comes whole, for the app to refuse (and count) as it always does.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.types import ASGIApp, Message

from sopdsl.live.app import answer_events_soon, rendered
from sopdsl.live.http import GRACE, listening

if TYPE_CHECKING:
    from sopdsl.live.service import Service

READY_TIMEOUT = 60.0  # seconds for the fronts to start serving
RESTART_AFTER = 1.0  # seconds before a front that died is started again

_ENCODE = msgspec.msgpack.Encoder().encode
_DECODE = msgspec.msgpack.Decoder().decode


def frame(item: Any) -> bytes:
    """One frame: `item` in msgpack after its length."""
    data = _ENCODE(item)
    return len(data).to_bytes(4, "big") + data


class FrameReader:
    """Splits a byte stream into decoded frames."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        """The frames `data` completes, in order (the rest is kept for the next call)."""
        buffer = self._buffer
        buffer += data
        frames, at, size = [], 0, len(buffer)
        while size - at >= 4:
            end = at + 4 + int.from_bytes(buffer[at : at + 4], "big")
            if end > size:
                break
            frames.append(_DECODE(memoryview(buffer)[at + 4 : end]))
            at = end
        if at:
            del buffer[:at]
        return frames


class Link(asyncio.Protocol, ABC):
    """A frame connection whose writes in one turn of the event loop leave as one write."""

    transport: asyncio.Transport | None = None

    def __init__(self) -> None:
        self._reader = FrameReader()
        self._out: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport

    def data_received(self, data: bytes) -> None:
        for item in self._reader.feed(data):
            self.received(item)

    @abstractmethod
    def received(self, item: Any) -> None:
        """One frame from the other side."""

    def send(self, item: Any) -> None:
        """Queue a frame of `item`; it goes out at the end of this turn of the loop, with the others."""
        self.send_frame(frame(item))

    def send_frame(self, data: bytes) -> None:
        """Queue a frame already encoded (`frame`)."""
        if not self._out:
            asyncio.get_running_loop().call_soon(self._flush)
        self._out.append(data)

    def _flush(self) -> None:
        out, self._out = self._out, []
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(out))


class _Cycle:
    """One forwarded request's body as the app receives it (`more_body`: more is still to come)."""

    def __init__(self, body: bytes, more: bool) -> None:
        self.chunks: deque[bytes] = deque([body])
        self.more_body = more
        self.gone = False
        self._waiter: asyncio.Future[None] | None = None

    def add(self, chunk: bytes | None, more: bool) -> None:
        """The next part of the body (None: the client went away)."""
        if chunk is None:
            self.gone, self.more_body = True, False
        else:
            self.chunks.append(chunk)
            self.more_body = more
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def receive(self) -> Message:
        """The ASGI receive: the body's parts, then a disconnect once the client goes away."""
        while not self.chunks and not self.gone:
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        if self.chunks:
            body = self.chunks.popleft()
            return {"type": "http.request", "body": body, "more_body": bool(self.chunks) or self.more_body}
        return {"type": "http.disconnect"}


class _FromFront(Link):
    """This side of one front's socket: each request in, through the app, its answer out."""

    def __init__(
        self, service: Service, app: ASGIApp, ready: threading.Event, lost: Callable[[], None]
    ) -> None:
        super().__init__()
        self.service = service
        self.app = app
        self.ready = ready
        self.lost = lost
        self.reading: dict[int, _Cycle] = {}  # requests whose body is still arriving
        self.tasks: set[asyncio.Task[None]] = set()

    def received(self, item: Any) -> None:
        if len(item) == 2:  # events the front checked and decoded (the hot path)
            number, payload = item
            answer_events_soon(self.service, payload, lambda status, body: self._reply(number, status, body))
        elif len(item) == 7:
            number, method, path, query, headers, body, more = item
            cycle = _Cycle(body, more)
            if more:
                self.reading[number] = cycle
            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": method,
                "scheme": "http",
                "path": path,
                "raw_path": path.encode(),
                "query_string": query,
                "root_path": "",
                "headers": headers,
                "client": None,
                "server": None,
            }
            self._keep(asyncio.get_running_loop().create_task(self._answer(number, scope, cycle)))
        elif len(item) == 3:
            number, chunk, more = item
            reading = self.reading.get(number)
            if reading is not None:
                reading.add(chunk, more)
                if not reading.more_body:
                    del self.reading[number]
        else:  # the front serves: it checks as the app does from now on
            self.send([0, _checks(self.service)])
            self.ready.set()

    def _keep(self, task: asyncio.Task[None]) -> None:
        # The loop holds its tasks weakly: one nothing else refers to could be collected mid-way.
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _reply(self, number: int, status: int, body: Any) -> None:
        try:  # the front renders the answer: less work in this process, which holds the store
            self.send([number, status, body])
        except (OverflowError, TypeError):  # a value msgpack cannot carry: rendered here
            self.send([number, *rendered(status, body)])

    async def _answer(self, number: int, scope: dict[str, Any], cycle: _Cycle) -> None:
        status, headers, parts = 500, [], []

        async def send(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status, headers = message["status"], message.get("headers", [])
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))

        try:
            await self.app(scope, cycle.receive, send)
        except Exception as exc:  # the app answers its own bugs; this is a last resort
            status, headers, parts = (
                500,
                [],
                [f'{{"error":"internal error: {type(exc).__name__}"}}\n'.encode()],
            )
        self.reading.pop(number, None)
        self.send([number, status, headers, b"".join(parts)])

    def connection_lost(self, exc: Exception | None) -> None:
        for cycle in self.reading.values():
            cycle.add(None, False)
        self.reading.clear()
        self.lost()


def _checks(service: Service) -> dict[str, Any]:
    """What a front needs to check `POST /events` as the app does: the hosts, the tokens, the shard."""
    tokens = service.tokens
    return {
        "hosts": service.allowed_hosts,
        "grants": None if tokens is None else [[g.token, sorted(g.shards), g.where] for g in tokens.grants],
        "shard": service.runtime.shard,
    }


class Fronts:
    """`service`'s port served by front processes feeding `app` here; `start`, then `stop` (as `http.Server`)."""

    def __init__(self, service: Service, app: ASGIApp) -> None:
        self.service = service
        self.app = app
        self.count = service.fronts
        # Raises OSError (address in use) to the caller.
        self.socket = listening(service.host, service.port, reuse_port=service.reuse_port)
        self.port = int(self.socket.getsockname()[1])
        self.processes: list[subprocess.Popen[bytes] | None] = [None] * self.count
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="sopdsl-fronts", daemon=True)

    def _run(self) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def start(self, timeout: float = READY_TIMEOUT) -> None:
        """Start the loop and the fronts; return once each serves (raise OSError if one could not)."""
        try:
            import uvloop

            self._loop = uvloop.new_event_loop()
        except ImportError:  # pragma: no cover - a dependency of sopdsl
            self._loop = asyncio.new_event_loop()
        self._thread.start()
        readies = [self._spawn(slot) for slot in range(self.count)]
        for slot, ready in enumerate(readies):
            if not ready.wait(timeout):
                self.stop()
                raise OSError(f"HTTP front {slot + 1} of {self.count} did not start")

    def pids(self) -> list[int]:
        """The front processes' ids (the benchmark reads their CPU time)."""
        return [p.pid for p in self.processes if p is not None]

    def _spawn(self, slot: int) -> threading.Event:
        """Start front `slot` with its own socketpair; an event set once it serves."""
        assert self._loop is not None
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        ready = threading.Event()
        with theirs:
            self.processes[slot] = subprocess.Popen(
                [sys.executable, "-m", "sopdsl.live.front", str(self.socket.fileno()), str(theirs.fileno())],
                pass_fds=(self.socket.fileno(), theirs.fileno()),
                stdin=subprocess.DEVNULL,
            )

        def lost() -> None:
            if not self._stopping:  # the front died: another takes its place (not in the loop: it waits)
                threading.Thread(target=self._replace, args=(slot,), daemon=True).start()

        async def connect() -> None:
            assert self._loop is not None
            await self._loop.connect_accepted_socket(
                lambda: _FromFront(self.service, self.app, ready, lost), ours
            )

        asyncio.run_coroutine_threadsafe(connect(), self._loop)
        return ready

    def _replace(self, slot: int) -> None:
        process = self.processes[slot]
        if process is not None:
            try:
                process.wait(timeout=GRACE + 5)
            except subprocess.TimeoutExpired:  # its socket closed, yet it runs on: it is stuck
                process.kill()
                process.wait()
        time.sleep(RESTART_AFTER)
        if not self._stopping:
            self._spawn(slot)

    def stop(self) -> None:
        """Stop the fronts (each finishes the requests it holds, up to GRACE s), then the loop (idempotent)."""
        self._stopping = True
        for process in self.processes:
            if process is not None and process.poll() is None:
                process.terminate()
        for process in self.processes:
            if process is not None:
                try:
                    process.wait(timeout=GRACE + 5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        if self._loop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        self.socket.close()
