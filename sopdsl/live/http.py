"""Serving the service's ASGI app with uvicorn, in a thread of the `sopdsl run` process.

Input: the app (`app.py`), a host and a port. Output: a listening socket bound at once (so an
address in use is an `OSError` the command reports, not uvicorn exiting the process), an event
loop in its own thread serving it, and a graceful stop: no new connections, requests in
progress finish (up to a deadline), idle connections close. Slow clients cost no thread: a
connection that has not sent a whole request head within `HEAD_TIMEOUT` is closed, one idle
after a response within `KEEP_ALIVE`; the listen backlog is large, so bursts of connections
queue instead of being reset.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Any

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

HEAD_TIMEOUT = 10.0  # seconds for a new connection to send its request line and headers
KEEP_ALIVE = 5  # seconds an idle connection is kept after a response
BACKLOG = 4096  # connections the kernel queues before accept
MAX_CONNECTIONS = 2000  # beyond this, new requests are answered 503 at once
GRACE = 10  # seconds requests in progress get to finish at shutdown


class _Coalescing:
    """A transport whose writes in one turn of the event loop reach the socket as one write.

    uvicorn writes an answer's head and body separately: two system calls and two TCP segments,
    each waking the client. Gathered, an answer is one of each. Everything else is the transport's.
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        """Queue `data`; it goes out at the end of this turn of the loop, with what follows it."""
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        """Write what is queued, then close."""
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _HeadTimeout(asyncio.Protocol):
    """Closes a connection that does not send a whole request head within HEAD_TIMEOUT seconds.

    Mixed into uvicorn's HTTP protocols: `cycle` is set once a request head has arrived; after
    that uvicorn's own keep-alive timer covers the idle time between requests.
    """

    cycle: Any
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.transport = _Coalescing(self.transport, self.loop)  # type: ignore[assignment]
        self._head_timer = self.loop.call_later(HEAD_TIMEOUT, self._head_timeout)

    def _head_timeout(self) -> None:
        if self.cycle is None and not self.transport.is_closing():
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_timer.cancel()
        super().connection_lost(exc)


class _TimedH11(_HeadTimeout, H11Protocol):
    """uvicorn's pure-Python HTTP/1.1 protocol (h11), with the head timeout."""


try:  # the C parser and event loop, when installed: about twice the requests per second
    import uvloop  # noqa: F401
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class _TimedHttpTools(_HeadTimeout, HttpToolsProtocol):
        """uvicorn's httptools protocol, with the head timeout."""

    PROTOCOL: type[asyncio.Protocol] = _TimedHttpTools
    LOOP = "uvloop"
except ImportError:  # pragma: no cover - the dependencies include both
    PROTOCOL, LOOP = _TimedH11, "asyncio"


def listening(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A TCP socket bound to `host`:`port` and listening (raises OSError, e.g. address in use)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not 0: asyncio sets TCP_NODELAY only on sockets that say so, and
    # without it every answer waited ~40 ms for the client's delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:  # `sopdsl run --workers N`: the kernel spreads connections over the workers
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock


class Server:
    """An ASGI app served by uvicorn in a daemon thread; `start`, then `stop`.

    `sock`: a listening socket to serve instead of binding one (a front process's, inherited);
    `lifespan`: pass uvicorn's startup and shutdown events to the app.
    """

    def __init__(
        self,
        app: ASGIApp,
        host: str,
        port: int,
        *,
        reuse_port: bool = False,
        sock: socket.socket | None = None,
        lifespan: bool = False,
    ) -> None:
        self.socket = sock if sock is not None else listening(host, port, reuse_port=reuse_port)
        self.port = int(self.socket.getsockname()[1])
        config = uvicorn.Config(
            app,
            http=PROTOCOL,
            loop=LOOP,
            lifespan="on" if lifespan else "off",
            log_config=None,  # the command's logging stays as it set it up
            log_level=logging.WARNING,
            access_log=False,
            timeout_keep_alive=KEEP_ALIVE,
            timeout_graceful_shutdown=GRACE,
            limit_concurrency=MAX_CONNECTIONS,
            backlog=BACKLOG,
            server_header=False,
            # Nothing here reads the client's address; rewriting it from X-Forwarded-For cost
            # a middleware call a request.
            proxy_headers=False,
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="sopdsl-http", daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            self.server.run(sockets=[self.socket])
        except BaseException as exc:  # reported by `start`; uvicorn exits with SystemExit on some failures
            self.error = exc

    def start(self, timeout: float = 30.0) -> None:
        """Serve in a thread; return once uvicorn accepts connections (raise OSError if it could not start)."""
        self._thread.start()
        waited = 0.0
        while not self.server.started and self._thread.is_alive() and waited < timeout:
            self._thread.join(0.01)
            waited += 0.01
        if not self.server.started:
            self.server.should_exit = True
            self.socket.close()
            raise OSError(f"the HTTP server did not start: {self.error!r}")

    def stop(self) -> None:
        """Stop accepting, let requests in progress finish (up to GRACE s), then close (idempotent)."""
        self.server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=GRACE + 5)
        self.socket.close()
