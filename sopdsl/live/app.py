"""The service's HTTP face as an ASGI app (Starlette): routes, the edge's checks, status codes.

Input: HTTP requests. Output: JSON answers (Prometheus text for `/metrics`), computed by the
service behind it (`sopdsl.live.service.Service`). Every request passes the `Host` check (a
DNS-rebinding page naming another host is refused, 421) and, but for the health endpoints and
the OpenAPI description, the bearer-token check (401 without a known token, 403 for a token not
allowed this shard). Bodies must be JSON (415), within the size, time and nesting limits (413,
408, 400; `bodies.py`). Events are fed through the group committer's thread, which the event
loop awaits without blocking, so a slow store never stalls it. `POST /events`, the one path
taken thousands of times a second, is answered by a plain ASGI handler behind the same guards,
without Starlette's routing and middleware (they cost more than the rest of the request; the
answers are the same). A bug while handling a request is answered with a 500 and logged, and
the service goes on.
"""

from __future__ import annotations

import json
import re
import traceback
import urllib.parse
from collections.abc import AsyncIterator, Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from sopdsl.live.auth import Grant
from sopdsl.live.bodies import BodyError, check_content_type, decode_json, read_body, whole_body
from sopdsl.live.metrics import CONTENT_TYPE
from sopdsl.live.openapi import describe
from sopdsl.live.redact import redact_urls_in
from sopdsl.live.service_types import ShuttingDownError

if TYPE_CHECKING:
    from sopdsl.live.service import Service

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/health", "/openapi.json"})  # no token needed
PROBE_HIDDEN = (
    "the timer loop failed; its error is shown with a token (Authorization: Bearer TOKEN), "
    "and is in the service's log"
)


class Answer(JSONResponse):
    """A JSON answer: UTF-8, Chinese text as is, keys sorted (stable for people and tests), one line."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """The body's bytes."""
        return _render(content)


# `json.dumps(content, ensure_ascii=False, sort_keys=True)`'s encoder, made once rather than per answer.
_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True)


def _render(content: Any) -> bytes:
    # A final newline, so answers printed by curl one after another stay one a line.
    return _ENCODER.encode(content).encode("utf-8") + b"\n"


_JSON_TYPE = (b"content-type", b"application/json")


def create_app(service: Service) -> ASGIApp:
    """The ASGI app of `service`: its routes behind the host and token checks."""

    async def post_events(scope: Scope, receive: Receive, send: Send) -> None:
        headers = scope.get("sopdsl.headers") or _headers(scope)
        try:
            check_content_type(headers.get("content-type"))
            raw = await _whole_body(receive, headers.get("content-length"))
            payload = decode_json(raw)
        except _DisconnectedError:
            return  # nobody to answer
        except BodyError as exc:
            await body_refusal(exc)(scope, receive, send)
            return
        except Exception as exc:
            await bug(exc)(scope, receive, send)
            return
        status, head, data = rendered(*await answer_events(service, payload, scope.get("sopdsl.shard")))
        # Sent as two ASGI messages built here: the same bytes as `Answer(body, status)`,
        # without a Response object, its header list and its __call__ (the hot path).
        await send({"type": "http.response.start", "status": status, "headers": head})
        await send({"type": "http.response.body", "body": data})

    async def json_body(request: Request) -> Any:
        check_content_type(request.headers.get("content-type"))
        raw = await read_body(request.stream(), request.headers.get("content-length"))
        return decode_json(raw)

    def probed(request: Request, found: tuple[int, dict[str, Any]]) -> Response:
        # The health endpoints answer without a token (a load balancer's probe has none); the
        # timer loop's error, which names the store's host and database and can quote its rows
        # (PostgreSQL's DETAIL: a member's id), only to a caller whose token reaches the shard.
        status, body = found
        if "error" in body and service.tokens is not None:
            grant = service.tokens.check(request.headers.get("authorization"))
            if _refusal(grant, service.runtime.shard) is not None:
                body = {**body, "error": PROBE_HIDDEN}
        return Answer(body, status)

    async def health(request: Request) -> Response:
        return probed(request, service.health())

    async def healthz(request: Request) -> Response:
        return probed(request, service.live())

    async def readyz(request: Request) -> Response:
        return probed(request, service.ready())

    async def metrics(request: Request) -> Response:
        text = await run_in_threadpool(service.metrics)
        return Response(text, media_type=CONTENT_TYPE)

    async def report(request: Request) -> Response:
        from sopdsl.live.report import answer

        status, body, media = await run_in_threadpool(
            answer, service.runtime, request.query_params.multi_items()
        )
        if status != HTTPStatus.OK:
            return refuse(status, body)
        return Response(body, media_type=media)

    async def openapi(request: Request) -> Response:
        return Answer(describe())

    def refuse(status: int, message: str, **extra: Any) -> Response:
        service.counters.refuse(status)
        return Answer({"error": message, **extra}, status_code=status)

    def body_refusal(exc: BodyError) -> Response:
        if exc.status in (HTTPStatus.BAD_REQUEST, HTTPStatus.UNSUPPORTED_MEDIA_TYPE):
            service.counters.rejected += 1  # a body that is not events is a rejected event too
        close = {"Connection": "close"} if exc.status in (408, 413) else None
        answer = refuse(exc.status, exc.message, field=None)
        if close:
            answer.headers.update(close)
        return answer

    async def on_body_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BodyError)
        return body_refusal(exc)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == HTTPStatus.NOT_FOUND:
            message = f"no such endpoint {request.url.path}; see GET /openapi.json"
        elif exc.status_code == HTTPStatus.METHOD_NOT_ALLOWED:
            message = f"{request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        answer = refuse(exc.status_code, message)
        answer.headers.update(exc.headers or {})
        return answer

    def bug(exc: Exception) -> Response:
        report_bug(service, exc)
        return refuse(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error: {type(exc).__name__}")

    async def on_bug(request: Request, exc: Exception) -> Response:
        return bug(exc)

    routes = [
        # A plain ASGI endpoint (the guards call it directly; Starlette only routes other methods to 405).
        Route("/events", _Plain(post_events), methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/report", report, methods=["GET"]),
    ]
    from sopdsl.live.admin import admin_routes

    routes.extend(admin_routes(service, json_body))
    for receiver in service.receivers:
        routes.extend(receiver.routes(service))
    app = Starlette(
        routes=routes,
        exception_handlers={BodyError: on_body_error, HTTPException: on_http_error, Exception: on_bug},
    )
    return app_with_guards(app, service, post_events)


async def answer_events(service: Service, payload: Any, shard: str | None = None) -> tuple[int, Any]:
    """The answer to `POST /events` with a decoded body, after its commit: status and JSON body.

    A stop under way is a 503, a bug a 500 (logged), as for any request.
    """
    try:
        found = await (
            service.submit_async(payload) if shard is None else service.submit_async(payload, shard)
        )
    except Exception as exc:
        return _answered(service, None, exc)
    return _answered(service, found, None)


def answer_events_soon(service: Service, payload: Any, reply: Callable[[int, Any], None]) -> None:
    """`answer_events` by callback, from the event loop: `reply(status, body)` is called in it
    after the commit (HTTP fronts' hot path, `fronts.py`: no task a request)."""

    def done(found: tuple[int, dict[str, Any]] | None, error: BaseException | None) -> None:
        reply(*_answered(service, found, error))

    try:
        service.submit_soon(payload, done)
    except Exception as exc:
        done(None, exc)


def _answered(
    service: Service, found: tuple[int, Any] | None, error: BaseException | None
) -> tuple[int, Any]:
    """The status and body for a submission's outcome, counted as a refusal where it is one."""
    if error is None:
        assert found is not None
        status, body = found
        if status == HTTPStatus.BAD_REQUEST:
            service.counters.refuse(status)
        return status, body
    if isinstance(error, ShuttingDownError):
        status, body = HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(error)}
    elif isinstance(error, Exception):
        report_bug(service, error)
        status, body = HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"internal error: {type(error).__name__}"}
    else:  # KeyboardInterrupt, SystemExit: not this request's to swallow
        raise error
    service.counters.refuse(status)
    return status, body


def rendered(status: int, body: Any) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """An answer's status, headers and bytes: the same as `Answer(body, status)` sends."""
    data = _render(body)
    return status, [(b"content-length", b"%d" % len(data)), _JSON_TYPE], data


def report_bug(service: Service, exc: Exception) -> None:
    """Log a bug met while handling a request (not the caller's mistake); the service goes on."""
    service.say(
        "error: internal error while handling a request: " + redact_urls_in(f"{type(exc).__name__}: {exc}")
    )
    service.say(redact_urls_in("".join(traceback.format_exception(exc)).rstrip()))


class _Plain:
    """An ASGI callable that Starlette mounts as is, not as a request-response function."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Hand the request to the app."""
        await self.app(scope, receive, send)


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


class _DisconnectedError(Exception):
    """The client went away before its whole body arrived."""


async def _whole_body(receive: Receive, declared: str | None) -> bytes:
    """The request's body, read as `read_body` reads it (limits, timeout, BodyError)."""
    # uvicorn's request cycle (the bound method's owner) says whether the whole body is in
    # already; if so the first receive returns it at once, and neither a timeout nor a chunk
    # iterator is needed. Otherwise (or under another server) the careful reading.
    if getattr(getattr(receive, "__self__", None), "more_body", True) is False:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _DisconnectedError
        if not message.get("more_body", False):
            return whole_body(message.get("body", b""), declared)
        return await read_body(_body(receive, message), declared)
    return await read_body(_body(receive), declared)


async def _body(receive: Receive, first: Any = None) -> AsyncIterator[bytes]:
    """A request's body, chunk by chunk, from the ASGI messages (`first` already received)."""
    while True:
        message, first = (first, None) if first is not None else (await receive(), None)
        if message["type"] == "http.disconnect":
            raise _DisconnectedError
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


def app_with_guards(app: ASGIApp, service: Service, post_events: ASGIApp | None = None) -> ASGIApp:
    """`app` behind the `Host` check and the bearer-token check; `post_events` takes `POST /events`."""
    hosts = service.allowed_hosts
    # A platform's callback authenticates by its own signature, not by our bearer tokens.
    open_paths = OPEN_PATHS | {receiver.path for receiver in service.receivers}

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = _headers(scope)
        if hosts is not None and not host_allowed(headers.get("host", ""), hosts):
            service.counters.refuse(HTTPStatus.MISDIRECTED_REQUEST)
            shown = headers.get("host", "")[:100]
            message = f"this service does not answer to Host '{shown}' (allowed: {', '.join(hosts)})"
            await Answer({"error": message}, status_code=421)(scope, receive, send)
            return
        shard: str = service.runtime.shard
        query = scope.get("query_string")
        if query and _reads_query(scope["path"]):
            unknown = _unknown_parameter(scope["path"], query, shard)
            if unknown is not None:
                service.counters.refuse(HTTPStatus.BAD_REQUEST)
                await Answer({"error": unknown[1], "field": unknown[0]}, status_code=400)(
                    scope, receive, send
                )
                return
        if scope["path"] == "/events" and query:
            # `POST /events?shard=NAME`: another community of the store (a PostgreSQL service's workers
            # serve them all). Checked before the token, which must be allowed that shard.
            asked = _shard_asked(scope["query_string"], shard)
            if asked is None or not service.serves(asked):
                service.counters.refuse(HTTPStatus.BAD_REQUEST)
                message = (
                    "shard: give ?shard=NAME of letters, digits and _ . : - (at most 64)"
                    if asked is None
                    else f"this service serves only shard '{service.runtime.shard}'"
                )
                await Answer({"error": message, "field": "shard"}, status_code=400)(scope, receive, send)
                return
            shard = scope["sopdsl.shard"] = asked
        if service.tokens is not None and scope["path"] not in open_paths:
            grant = service.tokens.check(headers.get("authorization"))
            refusal = _refusal(grant, shard)
            if refusal is not None:
                status, message = refusal
                service.counters.refuse(status)
                extra = {"WWW-Authenticate": 'Bearer realm="sopdsl"'} if status == 401 else None
                await Answer({"error": message}, status_code=status, headers=extra)(scope, receive, send)
                return
            scope.setdefault("state", {})["grant"] = grant
        if post_events is not None and scope["path"] == "/events" and scope["method"] == "POST":
            scope["sopdsl.headers"] = headers
            await post_events(scope, receive, send)
            return
        await app(scope, receive, send)

    return guarded


SHARD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
# The query parameters each path reads (the admin API's: none); any other is refused, not ignored:
# `?shrd=` would have fed the default shard, and `?shard=` on the admin API would have changed
# it, not the one named.
_PARAMETERS = {"/events": ("shard",), "/report": ("from", "to", "format", "attribution")}


def _reads_query(path: str) -> bool:
    """Whether a path's query is checked: where data goes in or comes out. Health, metrics and the
    OpenAPI description take whatever a prober adds (`?verbose=1`, a cache buster); a platform's
    callback reads its own (a signature)."""
    return path in _PARAMETERS or path.startswith("/admin/")


def _unknown_parameter(path: str, query: bytes, shard: str) -> tuple[str, str] | None:
    """The first query parameter `path` does not read, and what to say of it; None if all are known."""
    known = _PARAMETERS.get(path, ())
    for name in urllib.parse.parse_qs(query.decode("latin-1"), keep_blank_values=True):
        if name in known:
            continue
        if name == "shard":
            return name, (
                f"{path} serves this process's shard ('{shard}'); ?shard= names another one for "
                "POST /events only (start a process with --shard NAME for another's admin API)"
            )
        takes = f"it takes {', '.join(known)}" if known else "it takes no query parameters"
        return name, f"unknown query parameter '{name}' for {path}: {takes}"
    return None


def _shard_asked(query: bytes, default: str) -> str | None:
    """The shard a query string names (`shard=NAME`), the default without one, None for a bad name."""
    values = urllib.parse.parse_qs(query.decode("latin-1"), keep_blank_values=True).get("shard")
    if not values:
        return default
    name = values[-1]
    return name if len(values) == 1 and SHARD_NAME.fullmatch(name) else None


def _refusal(grant: Grant | None, shard: str) -> tuple[int, str] | None:
    if grant is None:
        return 401, "send a known token: Authorization: Bearer TOKEN"
    if not grant.allows(shard):
        return 403, f"this token (from {grant.where}) is not allowed shard '{shard}'"
    return None


def host_allowed(header: str, allowed: list[str]) -> bool:
    """Whether a Host header (name or address, with an optional port) names one of the allowed hosts."""
    value = header.strip().lower()
    name = (
        value[: value.index("]") + 1] if value.startswith("[") and "]" in value else value.rsplit(":", 1)[0]
    )
    if "*" in allowed:
        return True
    return name in allowed or name.strip("[]") in allowed
