"""The service's HTTP face: `POST /events`, `GET /health`, `GET /metrics`.

Input: HTTP requests. Output: JSON answers (Prometheus text for `/metrics`), computed by the
service behind it (`sopdsl.live.service.Service`); this module only speaks HTTP: routes, methods,
body limits and decoding, status codes. A bug while handling an event is answered with a 500 and
logged, and the server goes on.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from sopdsl.live.redact import redact_urls_in

MAX_BODY = 4 * 1024 * 1024


class ShuttingDownError(Exception):
    """An event arrived after the service began to stop; it was not fed (answered 503)."""


class Endpoints(Protocol):
    """What the HTTP server serves (`sopdsl.live.service.Service` is one)."""

    def health(self) -> tuple[int, dict[str, Any]]:
        """The status and JSON body of `GET /health`."""
        ...

    def metrics(self) -> str:
        """The Prometheus text of `GET /metrics`."""
        ...

    def submit(self, payload: Any) -> tuple[int, dict[str, Any]]:
        """Feed a decoded `POST /events` body; the status and JSON body to answer with."""
        ...

    def say(self, message: str) -> None:
        """Write one line to the service's log."""
        ...


def listen(endpoints: Endpoints, host: str, port: int) -> ThreadingHTTPServer:
    """A server bound to `host:port` (raises OSError if the address is taken); run `serve_forever` in a thread."""
    server = ThreadingHTTPServer((host, port), _handler(endpoints))
    server.daemon_threads = True
    return server


def _handler(service: Endpoints) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "sopdsl"

        def do_GET(self) -> None:
            if self._endpoint == "/health":
                self._json(*service.health())
            elif self._endpoint == "/metrics":
                self._send(
                    HTTPStatus.OK, service.metrics().encode(), "text/plain; version=0.0.4; charset=utf-8"
                )
            elif self._endpoint == "/events":
                self._json(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "send events with POST"}, allow="POST")
            else:
                self._not_found()

        def do_POST(self) -> None:
            if self._endpoint != "/events":
                if self._endpoint in ("/health", "/metrics"):
                    self._json(
                        HTTPStatus.METHOD_NOT_ALLOWED, {"error": f"use GET {self._endpoint}"}, allow="GET"
                    )
                else:
                    self._not_found()
                return
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit():
                self._json(HTTPStatus.LENGTH_REQUIRED, {"error": "a Content-Length header is required"})
                return
            if int(length) > MAX_BODY:
                self._json(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    {"error": f"the body is over {MAX_BODY} bytes; send fewer events per request"},
                )
                return
            raw = self.rfile.read(int(length))
            try:
                payload = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                self._json(HTTPStatus.BAD_REQUEST, {"error": "the body is not UTF-8", "field": None})
                return
            except json.JSONDecodeError as exc:
                error = f"the body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
                self._json(HTTPStatus.BAD_REQUEST, {"error": error, "field": None})
                return
            try:
                self._json(*service.submit(payload))
            except ShuttingDownError as exc:
                self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(exc)})
            except Exception as exc:
                # A bug, not the caller's mistake: answered and logged, and the service goes on.
                service.say(
                    "error: internal error while handling an event: "
                    + redact_urls_in(f"{type(exc).__name__}: {exc}")
                )
                service.say(redact_urls_in(traceback.format_exc().rstrip()))
                self._json(
                    HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"internal error: {type(exc).__name__}"}
                )

        @property
        def _endpoint(self) -> str:
            return self.path.split("?", 1)[0]  # a scraper may add a query string

        def _not_found(self) -> None:
            self._json(
                HTTPStatus.NOT_FOUND, {"error": f"no such endpoint {self._endpoint}; try POST /events"}
            )

        def _json(self, status: int, body: Mapping[str, Any], allow: str | None = None) -> None:
            data = json.dumps(body, ensure_ascii=False, sort_keys=True).encode("utf-8")
            self._send(status, data, "application/json; charset=utf-8", allow)

        def _send(self, status: int, data: bytes, content_type: str, allow: str | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            if allow:
                self.send_header("Allow", allow)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per request would drown the action log; errors are reported above

    return Handler
