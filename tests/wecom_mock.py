"""A local WeCom server for the adapter's tests: the documented request and response shapes and error codes.

Each endpoint answers as the WeCom server API documents it (`errcode`, `errmsg`, then its own
fields), checks what the documentation says a request must carry, and answers the documented
error codes: 41001 without a token, 40014 for a token it never issued, 42001 for one it has
expired (`expire_tokens`), 45009 when a test scripts a rate limit (`fail_next`), 41051 for a
welcome code used twice, 40068 for an unknown tag id, 84061 for a customer who is not the staff
member's contact. It records every call (`calls`) so a test can check what was sent.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from wechatpy.enterprise.crypto import WeChatCrypto

from sopdsl.live.http import Server

CORP_ID = "ww1234567890abcdef"
SECRET = "contact-secret-0123456789"
CALLBACK_TOKEN = "QDG6eK"  # the callback's Token and EncodingAESKey, from WeCom's own crypto sample
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"

# From the WeCom global error code table (全局错误码) and the external-contact pages.
ERRMSG = {
    -1: "system busy",
    40001: "invalid credential",
    40013: "invalid corpid",
    40014: "invalid access_token",
    40058: "invalid parameter",
    40068: "invalid tagid",
    40096: "invalid external userid",
    41001: "access_token missing",
    41051: "externaluser has started chatting",
    42001: "access_token expired",
    45009: "api freq out of limit",
    48002: "api forbidden",
    84061: "not external contact",
}


def error(code: int) -> dict[str, Any]:
    """A documented error answer."""
    return {"errcode": code, "errmsg": f"{ERRMSG.get(code, 'error')}, hint: [1773000000_mock]"}


@dataclass
class MockWeCom:
    """The server's state: issued tokens, contacts, groups, tags, and what the tests script."""

    contacts: dict[str, list[str]] = field(default_factory=dict)  # customer -> staff who added them
    groups: dict[str, str] = field(default_factory=dict)  # chat id -> owner
    members: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # chat id -> member_list
    tag_ids: set[str] = field(default_factory=set)
    welcome_codes: set[str] = field(default_factory=set)
    users: set[str] | None = None  # the app's visible staff userids (None: any userid is one)
    fail_next: dict[str, list[int]] = field(default_factory=dict)  # path -> errcodes to answer first
    calls: list[tuple[str, Any]] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    expired: set[str] = field(default_factory=set)
    _numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def expire_tokens(self) -> None:
        """Every token issued so far is now expired (42001), as after two hours."""
        self.expired |= self.tokens

    def paths(self) -> list[str]:
        """The paths called, in order."""
        return [path for path, _ in self.calls]

    def bodies(self, path: str) -> list[Any]:
        """What was sent to one path, in order."""
        return [body for p, body in self.calls if p == path]

    def app(self) -> Starlette:
        """The ASGI app."""

        async def gettoken(request: Request) -> Response:
            query = request.query_params
            self._record("gettoken", dict(query))
            if query.get("corpid") != CORP_ID:
                return JSONResponse(error(40013))
            if query.get("corpsecret") != SECRET:
                return JSONResponse(error(40001))
            scripted = self._scripted("gettoken")
            if scripted:
                return JSONResponse(error(scripted))
            token = f"ACCESS_TOKEN_{next(self._numbers)}"
            self.tokens.add(token)
            return JSONResponse({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200})

        async def api(request: Request) -> Response:
            path = request.path_params["path"]
            token = request.query_params.get("access_token")
            if path == "media/upload":
                content = _media_part(request.headers.get("content-type", ""), await request.body())
                body: Any = {"type": request.query_params.get("type"), "size": len(content)}
            elif request.method == "GET":
                body = {k: v for k, v in request.query_params.items() if k != "access_token"}
            else:
                body = json.loads(await request.body())
            self._record(path, body)
            if not token:
                return JSONResponse(error(41001))
            if token in self.expired:
                return JSONResponse(error(42001))
            if token not in self.tokens:
                return JSONResponse(error(40014))
            scripted = self._scripted(path)
            if scripted:
                return JSONResponse(error(scripted))
            handler = getattr(self, "_" + path.replace("/", "_"), None)
            if handler is None:
                return JSONResponse(error(48002))
            return JSONResponse(handler(body, request.query_params))

        return Starlette(
            routes=[
                Route("/cgi-bin/gettoken", gettoken, methods=["GET"]),
                Route("/cgi-bin/{path:path}", api, methods=["GET", "POST"]),
            ]
        )

    def _record(self, path: str, body: Any) -> None:
        with self._lock:
            self.calls.append((path, body))

    def _scripted(self, path: str) -> int | None:
        with self._lock:
            queue = self.fail_next.get(path)
            return queue.pop(0) if queue else None

    # ---- endpoints, as documented ---------------------------------------------------------------

    @staticmethod
    def _content_ok(body: dict[str, Any]) -> bool:
        # text and attachments may not both be empty; at most 9 attachments.
        attachments = body.get("attachments") or []
        has_text = bool((body.get("text") or {}).get("content"))
        return (
            (has_text or bool(attachments))
            and len(attachments) <= 9
            and all(a.get("msgtype") in a for a in attachments)
        )

    def _externalcontact_send_welcome_msg(self, body: dict[str, Any], query: Any) -> dict[str, Any]:
        if not self._content_ok(body):
            return error(40058)
        code = body.get("welcome_code")
        if code not in self.welcome_codes:
            return error(41051)
        self.welcome_codes.discard(code)  # usable once
        return {"errcode": 0, "errmsg": "ok"}

    def _externalcontact_add_msg_template(self, body: dict[str, Any], query: Any) -> dict[str, Any]:
        if not self._content_ok(body) or body.get("chat_type", "single") not in ("single", "group"):
            return error(40058)
        if body.get("chat_type") == "group":
            if not body.get("sender") or any(
                self.groups.get(c) != body["sender"] for c in body.get("chat_id_list", [])
            ):
                return error(40058)
            fail: list[str] = []
        else:
            customers = body.get("external_userid") or []
            sender = body.get("sender")
            fail = [
                c for c in customers if c not in self.contacts or (sender and sender not in self.contacts[c])
            ]
        return {"errcode": 0, "errmsg": "ok", "fail_list": fail, "msgid": f"msg{next(self._numbers)}"}

    def _externalcontact_mark_tag(self, body: dict[str, Any], query: Any) -> dict[str, Any]:
        if body.get("userid") not in self.contacts.get(body.get("external_userid", ""), []):
            return error(84061)
        tags = [*body.get("add_tag", []), *body.get("remove_tag", [])]
        if not tags or any(t not in self.tag_ids for t in tags):
            return error(40068)
        return {"errcode": 0, "errmsg": "ok"}

    def _externalcontact_get(self, body: dict[str, Any], query: Any) -> dict[str, Any]:
        customer = body.get("external_userid", "")
        if customer not in self.contacts:
            return error(40096)
        follow = [{"userid": u, "createtime": 1773000000 + i} for i, u in enumerate(self.contacts[customer])]
        return {
            "errcode": 0,
            "errmsg": "ok",
            "external_contact": {"external_userid": customer, "name": customer, "type": 1},
            "follow_user": follow,
        }

    def _externalcontact_groupchat_get(self, body: dict[str, Any], query: Any) -> dict[str, Any]:
        chat = body.get("chat_id", "")
        if chat not in self.groups:
            return error(40058)
        return {
            "errcode": 0,
            "errmsg": "ok",
            "group_chat": {
                "chat_id": chat,
                "name": "群",
                "owner": self.groups[chat],
                # As documented: `name` only when asked with need_name=1.
                "member_list": [
                    m if body.get("need_name") else {k: v for k, v in m.items() if k != "name"}
                    for m in self.members.get(chat, [])
                ],
            },
        }

    def _media_upload(self, body: dict[str, Any], query: Any) -> dict[str, Any]:
        if body["type"] not in ("image", "voice", "video", "file") or not body["size"]:
            return error(40058)
        return {
            "errcode": 0,
            "errmsg": "",
            "type": body["type"],
            "media_id": f"MEDIA_{next(self._numbers)}",
            "created_at": "1773000000",
        }

    def _message_send(self, body: dict[str, Any], query: Any) -> dict[str, Any]:
        if not body.get("touser") or not body.get("agentid"):
            return error(40058)
        # As documented: the send goes ahead, the receivers it cannot reach named in `invaliduser`.
        given = str(body["touser"]).split("|")
        invalid = [u for u in given if self.users is not None and u not in self.users]
        answer = {"errcode": 0, "errmsg": "ok", "invaliduser": "|".join(invalid)}
        return answer | {"msgid": f"msg{next(self._numbers)}"}


def _media_part(content_type: str, raw: bytes) -> bytes:
    """The `media` part of a multipart/form-data body (the standard library's MIME parser: no extra package)."""
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "media":
            payload = part.get_payload(decode=True)
            return payload if isinstance(payload, bytes) else b""
    return b""


def _encrypted(text: str, nonce: str, timestamp: str, corp: str) -> tuple[str, str]:
    """`text` encrypted as WeCom does (wechatpy's WeChatCrypto): the ciphertext and its msg_signature."""
    envelope = WeChatCrypto(CALLBACK_TOKEN, AES_KEY, corp).encrypt_message(text, nonce, timestamp)
    encrypted = envelope.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
    signature = envelope.split("<MsgSignature><![CDATA[")[1].split("]]>")[0]
    return encrypted, signature


def callback_request(
    xml: str, *, nonce: str, timestamp: int, corp: str = CORP_ID, forged: bool = False
) -> tuple[str, bytes]:
    """A change callback as WeCom posts it: the query string (signature, timestamp, nonce) and the XML body."""
    encrypted, signature = _encrypted(xml, nonce, str(timestamp), corp)
    if forged:
        signature = "0" * 40
    query = urllib.parse.urlencode({"msg_signature": signature, "timestamp": timestamp, "nonce": nonce})
    body = (
        f"<xml><ToUserName><![CDATA[{corp}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt>"
        "<AgentID><![CDATA[218]]></AgentID></xml>"
    )
    return query, body.encode()


def verification_query(echo: str, *, nonce: str = "n0", timestamp: str = "1409659589") -> str:
    """The query string of WeCom's URL check (`GET` with an encrypted `echostr` to answer decrypted)."""
    echostr, signature = _encrypted(echo, nonce, timestamp, CORP_ID)
    return urllib.parse.urlencode(
        {"msg_signature": signature, "timestamp": timestamp, "nonce": nonce, "echostr": echostr}
    )


@contextmanager
def serving(mock: MockWeCom, *, late: dict[str, float] | None = None) -> Iterator[str]:
    """The mock served on a free local port; its base URL. A path in `late` is carried out as
    usual, and answered that many seconds later: past a client's timeout, WeCom did the call."""
    inner = mock.app()
    delays = {f"/cgi-bin/{path}": seconds for path, seconds in (late or {}).items()}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        delay = delays.get(scope.get("path", "")) if scope["type"] == "http" else None
        if delay is None:
            await inner(scope, receive, send)
            return

        async def answer_late(message: Any) -> None:
            if message["type"] == "http.response.start":
                await asyncio.sleep(delay)
            await send(message)

        await inner(scope, receive, answer_late)

    server = Server(app, "127.0.0.1", 0)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()
