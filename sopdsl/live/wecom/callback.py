"""The WeCom callback receiver: URL verification, decryption, and the events fed to the service.

Input: WeCom's requests to the callback URL configured for the app (客户联系 回调): a `GET` with
`msg_signature`, `timestamp`, `nonce` and `echostr` when the URL is saved in the admin console,
then a `POST` per change, its XML body holding the encrypted event. Output: the decrypted
`echostr` (how WeCom checks the URL is ours), and for each change the sopdsl events of
`events.py`, fed to the runtime as `POST /events` feeds them (members joining a customer group
named as WeCom's `groupchat/get` names them, when the executor can ask); the answer is an empty
200 once they are stored. Decryption is wechatpy's (`wechatpy.enterprise.crypto`); the signature is
checked here first, in constant time, before anything reaches wechatpy, and a body for another corp
is refused. Staff members joining a customer group (`type` 1 in `groupchat/get`) are not customers:
their joins, and the leaves of staff known to the store (`contacts.py`), are logged, not fed.

WeCom authenticates by signature, not by bearer token, so the service's token check skips this
path. A refused signature is answered 403, as is a genuine one signed over `MAX_SKEW` seconds from
the service's clock (a replay), a body that is not WeCom's XML 400, a stopping service
503 (WeCom sends the callback again, up to three times). An event the runtime refuses (an
undeclared member field, say) is logged and acknowledged: sending it again cannot change that.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from sopdsl.errors import SopdslError
from sopdsl.live.bodies import BodyError, read_body
from sopdsl.live.store_contacts import ContactStore
from sopdsl.live.wecom.contacts import Contacts
from sopdsl.live.wecom.events import CallbackFormatError, Mapped, map_callback, parse

if TYPE_CHECKING:
    from sopdsl.live.service import Service

log = logging.getLogger("sopdsl.wecom")

PATH = "/wecom/callback"
MAX_CALLBACK = 256 * 1024  # bytes: a change event is under 2 KB encrypted
# Seconds a callback's signed timestamp may be from this service's clock. WeCom sends a callback
# again within seconds when unanswered; one signed long ago is a captured request replayed, which
# would otherwise re-arm its welcome code (kept a day) and bring back an owner deleted since.
MAX_SKEW = 300
FORGED = "the msg_signature does not match: a wrong Token, or not from WeCom"
TOO_LARGE = (
    f"the callback body is over {MAX_CALLBACK} bytes; WeCom's change callbacks are under 2 KB, "
    "so this request is not from WeCom"
)


class CallbackConfigError(SopdslError, ValueError):
    """Callback settings that cannot work: an EncodingAESKey that is not 43 base64 characters, or
    wechatpy (the `wecom` extra) missing."""


# The service's own paths: a callback mounted at one of them, or under /admin, would answer it
# without the bearer token, since WeCom's requests carry none (the token check skips the callback).
SERVICE_PATHS = (
    "/events",
    "/health",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/report",
    "/admin",
)
_PATH = re.compile(r"/[A-Za-z0-9._~/-]*")


def check_path(path: str) -> None:
    """Raise `CallbackConfigError` unless `path` can be the callback's own: a URL path that is none of the service's."""
    if not _PATH.fullmatch(path):
        raise CallbackConfigError(
            f"the callback path must be a URL path starting with /, such as {PATH}, got {path!r}"
        )
    taken = [p for p in SERVICE_PATHS if path.rstrip("/") == p or path.startswith(p + "/")]
    if taken:
        raise CallbackConfigError(
            f"the callback path {path} is the service's {taken[0]}, which would then answer without "
            f"a token: choose another, such as {PATH}"
        )


def check_aes_key(key: str) -> None:
    """Raise `CallbackConfigError` unless `key` is an EncodingAESKey: 43 characters, 32 bytes once decoded."""
    try:
        raw = base64.b64decode(key + "=", validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(key) != 43 or len(raw) != 32:
        raise CallbackConfigError(
            "the callback's EncodingAESKey must be the 43 characters the WeCom admin console shows "
            f"(got {len(key)} characters)"
        )


class WeComCallback:
    """The callback receiver of one WeCom app: mount it with `Service(..., receivers=[it])`."""

    path = PATH

    def __init__(
        self,
        *,
        token: str,
        aes_key: str,
        corp_id: str,
        contacts: Contacts | None = None,
        path: str = PATH,
        members: Callable[[str], Mapping[str, Mapping[str, str]]] | None = None,
    ) -> None:
        check_aes_key(aes_key)
        check_path(path)
        try:
            from wechatpy.enterprise.crypto import WeChatCrypto
            from wechatpy.enterprise.exceptions import InvalidCorpIdException
            from wechatpy.exceptions import InvalidSignatureException
        except ImportError:
            raise CallbackConfigError(
                "the WeCom callback decrypts with wechatpy, which is not installed: "
                "pip install 'sopdsl[wecom]'"
            ) from None

        self.crypto = WeChatCrypto(token, aes_key, corp_id)
        self._token = token
        self._forged = InvalidSignatureException
        self._other_corp = InvalidCorpIdException
        self.contacts = contacts if contacts is not None else Contacts()
        self.path = path
        # A customer group's members by id -> their name and nickname (the executor asks WeCom):
        # a callback names nobody, and a welcome should not greet a customer by their WeCom id.
        self.members = members

    def routes(self, service: Service) -> list[BaseRoute]:
        """The receiver's routes, feeding `service`; what callbacks teach is kept in its runtime's store."""
        store = getattr(service.runtime, "store", None)
        if isinstance(store, ContactStore):  # a Temporal front has none: kept in this process
            self.contacts.keep_in(store)

        async def verify(request: Request) -> Response:
            query = request.query_params
            missing = [p for p in ("msg_signature", "timestamp", "nonce", "echostr") if not query.get(p)]
            if missing:
                return _text(HTTPStatus.BAD_REQUEST, f"missing query parameter {missing[0]}")
            if not self._signed(query["msg_signature"], query["timestamp"], query["nonce"], query["echostr"]):
                return _text(HTTPStatus.FORBIDDEN, FORGED)
            try:
                echo = self.crypto.check_signature(
                    query["msg_signature"], query["timestamp"], query["nonce"], query["echostr"]
                )
            except Exception as exc:
                return self._refusal(exc)
            return PlainTextResponse(_plain(echo))

        async def receive(request: Request) -> Response:
            query = request.query_params
            missing = [p for p in ("msg_signature", "timestamp", "nonce") if not query.get(p)]
            if missing:
                return _text(HTTPStatus.BAD_REQUEST, f"missing query parameter {missing[0]}")
            try:
                raw = await read_body(
                    request.stream(), request.headers.get("content-length"), limit=MAX_CALLBACK
                )
            except BodyError as exc:
                # The shared 413 says to send fewer events, which means nothing to whoever reads
                # WeCom's logs: say instead that no WeCom callback is this large.
                if exc.status != HTTPStatus.REQUEST_ENTITY_TOO_LARGE:
                    raise
                raise BodyError(exc.status, TOO_LARGE) from None
            try:
                encrypted = parse(raw.decode("utf-8", errors="replace"), "callback body").get("Encrypt")
            except CallbackFormatError as exc:
                return _text(HTTPStatus.BAD_REQUEST, str(exc))
            if not isinstance(encrypted, str) or not encrypted.strip():
                return _text(HTTPStatus.BAD_REQUEST, "the callback body has no <Encrypt> element")
            if not self._signed(
                query["msg_signature"], query["timestamp"], query["nonce"], encrypted.strip()
            ):
                return _text(HTTPStatus.FORBIDDEN, FORGED)
            stale = self._stale(service, query["timestamp"])
            if stale is not None:
                service.say(f"wecom callback: refused: {stale}")
                return _text(HTTPStatus.FORBIDDEN, stale)
            try:
                plain = self.crypto.decrypt_message(
                    {"Encrypt": encrypted.strip()}, query["msg_signature"], query["timestamp"], query["nonce"]
                )
            except Exception as exc:
                return self._refusal(exc)
            try:
                mapped = map_callback(parse(_plain(plain)), _declared(service))
            except CallbackFormatError as exc:
                return _text(HTTPStatus.BAD_REQUEST, str(exc))
            from sopdsl.live.service import ShuttingDownError

            try:
                await run_in_threadpool(self._feed, service, mapped)
            except ShuttingDownError as exc:
                return _text(HTTPStatus.SERVICE_UNAVAILABLE, str(exc))
            return PlainTextResponse("")

        return [Route(self.path, verify, methods=["GET"]), Route(self.path, receive, methods=["POST"])]

    def _feed(self, service: Service, mapped: Mapped) -> None:
        # Before the events are fed, so that the actions they cause use what the callback says.
        if mapped.contact is not None and not self.contacts.learn(mapped.contact):
            # WeCom sends add_external_contact once a half-added customer (免验证) is confirmed: the
            # same customer and staff member, greeted at the half-add. Fed, `repeat always` greets twice.
            contact = mapped.contact
            mapped.events = []
            service.say(
                f"wecom callback: {contact.owner} confirmed {contact.external_userid}, added (免验证) "
                "and fed before; acknowledged, nothing fed"
            )
        if mapped.owner_gone is not None:
            self.contacts.forget_owner(mapped.owner_gone.external_userid, mapped.owner_gone.owner)
        if mapped.group_changed is not None:
            self.contacts.forget_group(mapped.group_changed)
        for reason in mapped.ignored:
            self._ignore(service, reason)
        joins = [event for event in mapped.events if event["kind"] == "join"]
        if joins and self.members is not None:
            self.contacts.remember_staff(self._name(service, joins))
        # WeCom's customer API refuses a staff userid (40096), and playbooks greet, tag and count
        # customers: a staff member joining or leaving is no customer's join or leave. A callback
        # names no member's type, and WeCom no longer lists one who left, so staff are known by
        # the store: those groupchat/get called staff, and those who added customers or own groups.
        changed = {str(e["member"]) for e in mapped.events if e["kind"] in ("join", "leave")}
        known = self.contacts.staff_among(changed) if changed else set()
        staff = [e for e in mapped.events if e["kind"] in ("join", "leave") and str(e["member"]) in known]
        if staff:
            mapped.events = [e for e in mapped.events if e not in staff]
            went = "joined" if staff[0]["kind"] == "join" else "left"
            service.say(
                f"wecom callback: staff {', '.join(sorted(str(e['member']) for e in staff))} {went} "
                f"customer group {staff[0]['group']}; not a customer, not fed"
            )
        # One at a time: a refused event must not keep the others of the callback out.
        for event in mapped.events:
            status, body = service.submit(event)
            if status == HTTPStatus.BAD_REQUEST:
                self._ignore(
                    service, f"the runtime refused {json.dumps(event, ensure_ascii=False)}: {body['error']}"
                )

    def _name(self, service: Service, joins: list[dict[str, Any]]) -> set[str]:
        """Add each joining member's name, as WeCom has it, to their join; without it if WeCom fails.
        Every member WeCom calls staff is returned (joining or there already), their joins left as they were."""
        assert self.members is not None
        chat = str(joins[0]["group"])
        try:
            known = self.members(chat)
        except SopdslError as exc:  # WeComError: the members join all the same, unnamed
            service.say(f"wecom callback: no names for the members joining {chat} ({exc}); fed without them")
            return set()
        staff = {userid for userid, member in known.items() if member.get("type") == STAFF}
        for event in joins:
            member = dict(known.get(str(event["member"]), {}))
            # `type` is not a join's data field (the runtime would refuse the join for it).
            if member.pop("type", None) == STAFF:
                continue
            event["data"] = {**member, **event["data"]}
        return staff

    def _signed(self, signature: str, timestamp: str, nonce: str, encrypted: str) -> bool:
        """Whether `signature` is WeCom's msg_signature of the request: the SHA-1 of the token,
        timestamp, nonce and encrypted text, sorted and joined (as wechatpy.crypto._get_signature)."""
        # wechatpy compares its signature with `!=`, whose time tells a forger how much of a guess
        # matched; compare_digest does not, so a forged one never reaches wechatpy's comparison.
        parts = sorted(p.encode("utf-8") for p in (self._token, timestamp, nonce, encrypted))
        expected = hashlib.sha1(b"".join(parts)).hexdigest()
        return hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8"))

    def _stale(self, service: Service, timestamp: str) -> str | None:
        """What is wrong with a signed callback's `timestamp`, if it is not within `MAX_SKEW` of
        the runtime's clock (the wall clock; without a runtime clock, the contacts')."""
        clock = getattr(service.runtime, "clock", None)
        now = clock.now() if clock is not None else self.contacts.clock()
        if not timestamp.strip().isdigit():
            return f"the callback's timestamp is not a number: {timestamp[:40]!r}"
        off = int(timestamp) - int(now)
        if abs(off) <= MAX_SKEW:
            return None
        return (
            f"the callback was signed {abs(off)} s {'before' if off < 0 else 'after'} this service's "
            f"clock (more than {MAX_SKEW} s): a callback captured and sent again, or a clock out "
            "of sync (check NTP); nothing fed"
        )

    def _refusal(self, exc: Exception) -> Response:
        if isinstance(exc, self._forged):
            return _text(HTTPStatus.FORBIDDEN, FORGED)
        if isinstance(exc, self._other_corp):
            return _text(HTTPStatus.FORBIDDEN, "the callback is for another corp id")
        # Undecodable base64 or padding after a matching signature: the EncodingAESKey is wrong.
        return _text(
            HTTPStatus.BAD_REQUEST,
            f"cannot decrypt the callback ({type(exc).__name__}): check the EncodingAESKey",
        )

    def _ignore(self, service: Service, reason: str) -> None:
        service.say(f"wecom callback: {reason}; acknowledged, nothing fed")


STAFF = "staff"  # a member's `type` in `members`' answer: 1 in groupchat/get, a staff member (企业成员)


def _declared(service: Service) -> Mapping[str, Mapping[str, Any]]:
    plan = getattr(service.runtime, "plan", None)
    if plan is None:
        return {}
    return {name: event.fields for name, event in plan.declarations.events.items()}


def _plain(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _text(status: int, message: str) -> Response:
    return PlainTextResponse(message + "\n", status_code=status)
