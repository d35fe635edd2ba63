"""One HTTP front process of `sopdsl run --fronts N` (see `fronts.py`): `python -m sopdsl.live.front LISTEN_FD STORE_FD`.

Input: an inherited listening TCP socket and one end of a Unix socketpair to the store process.
Output: uvicorn serving the socket (the same limits and timeouts as the service's own server),
every request sent whole, or its body part by part as it arrives, to the store process, and the
answer that comes back written to the client. Nothing is checked or decided here, so the
answers are the store process's own. SIGTERM stops the front gracefully (requests in progress
are answered); it exits by itself when the store process goes away.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import socket
import sys
import threading
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from sopdsl.live.app import host_allowed, rendered
from sopdsl.live.auth import Grant, Tokens
from sopdsl.live.bodies import BodyError, check_content_type, decode_json, whole_body
from sopdsl.live.fronts import Link, frame
from sopdsl.live.http import Server

_GONE = b'{"error":"the service is restarting; send the request again"}\n'


class _ToStore(Link):
    """The front's side of the socketpair: requests out, each answer to the request waiting for it."""

    def __init__(self, lost: threading.Event) -> None:
        super().__init__()
        self.waiting: dict[int, asyncio.Future[Any]] = {}
        self.lost = lost
        self.checks: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    def received(self, item: Any) -> None:
        if item[0] == 0:  # the checks to make, once
            self.checks.set_result(item[1])
            return
        answer = self.waiting.pop(item[0], None)
        if answer is not None and not answer.done():
            answer.set_result(item)

    def connection_lost(self, exc: Exception | None) -> None:
        for answer in self.waiting.values():
            if not answer.done():
                answer.set_exception(ConnectionError("the store process went away"))
        self.waiting.clear()
        self.lost.set()


class Forward:
    """The front's ASGI app: each request to the store process and its answer back."""

    def __init__(self, store: socket.socket) -> None:
        self.store = store
        self.lost = threading.Event()
        self.link: _ToStore | None = None
        self._numbers = itertools.count(1)
        self._hosts: list[str] | None = None
        self._tokens: Tokens | None = None
        self._shard = ""

    def _checked(self, scope: Scope, message: Message, number: int) -> bytes | None:
        """The frame of a `POST /events` that passes the app's checks (decoded), or None: forwarded whole."""
        if scope["path"] != "/events" or scope["method"] != "POST" or scope["query_string"]:
            return None
        if message.get("more_body", False):
            return None
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self._hosts is not None and not host_allowed(headers.get("host", ""), self._hosts):
            return None
        if self._tokens is not None:
            grant = self._tokens.check(headers.get("authorization"))
            if grant is None or not grant.allows(self._shard):
                return None
        try:
            check_content_type(headers.get("content-type"))
            payload = decode_json(whole_body(message.get("body", b""), headers.get("content-length")))
            return frame([number, payload])
        except (BodyError, OverflowError):  # a number msgpack cannot carry: the app decodes it
            return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Forward one request (lifespan: connect to the store process at startup)."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        link = self.link
        message = await receive()
        if scope["type"] != "http" or link is None or message["type"] == "http.disconnect":
            return
        number = next(self._numbers)
        answer = asyncio.get_running_loop().create_future()
        link.waiting[number] = answer
        checked = self._checked(scope, message, number)
        if checked is not None:
            link.send_frame(checked)
            await self._reply(answer, send)
            return
        more = message.get("more_body", False)
        head = [scope["method"], scope["path"], scope["query_string"], scope["headers"]]
        link.send([number, *head, message.get("body", b""), more])
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                link.send([number, None, False])
                break
            more = message.get("more_body", False)
            link.send([number, message.get("body", b""), more])
        await self._reply(answer, send)

    @staticmethod
    async def _reply(answer: asyncio.Future[Any], send: Send) -> None:
        try:
            got = await answer
        except ConnectionError:
            status, headers, body = 503, [(b"content-type", b"application/json")], _GONE
        else:
            status, headers, body = got[1:] if len(got) == 4 else rendered(got[1], got[2])
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                loop = asyncio.get_running_loop()
                _, self.link = await loop.connect_accepted_socket(lambda: _ToStore(self.lost), self.store)
                self.link.send([0])  # serving: the store process says what to check
                checks = await self.link.checks
                self._hosts, self._shard = checks["hosts"], checks["shard"]
                grants = checks["grants"]
                if grants is not None:
                    self._tokens = Tokens([Grant(t, frozenset(shards), where) for t, shards, where in grants])
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


def main(argv: list[str]) -> int:
    """Serve until SIGTERM or until the store process goes away; the exit code."""
    listening = socket.socket(fileno=int(argv[1]))
    forward = Forward(socket.socket(fileno=int(argv[2])))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    # Ctrl-C reaches the whole process group: the store process stops its fronts in its order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    server = Server(forward, "", 0, sock=listening, lifespan=True)
    server.start()
    while not stop.wait(0.2) and not forward.lost.is_set():
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
