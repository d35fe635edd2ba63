"""The WeCom server API through httpx: the access token, JSON calls, media uploads, error codes.

Input: the corp id and the app's secret, and calls by path (`externalcontact/mark_tag`) with
their JSON body. Output: the answer's JSON when `errcode` is 0, or a `WeComError` that says
what the outbox should do, decided from the documented error codes (`OUTCOMES`):

- `retry`: WeCom is busy or the call was over a rate limit (-1, 45009, 45033). Tried again within
  the call, waiting as the runtime's one `RetryPolicy` says; if it still fails, the outbox tries
  the action again later.
- `park`: the app's set-up is wrong (a bad secret, no permission, a refused IP): the action is
  parked, to be sent again (`Runtime.requeue`) once the set-up is fixed.
- `fail`: this action can never succeed (the welcome code was used, the customer is not a
  contact, an unknown tag id): parked with WeCom's `errmsg`.

- `unknown`: a call that is not safe to repeat (`REPEATABLE`: a mass send) got no answer after
  its request may have reached WeCom (a read timeout, a connection dropped): WeCom may have
  done it, so it is not sent again, here or by the outbox, and the action is parked saying what
  to look for. It is tried again only when it surely did not take effect: the connection was
  never made (`retry.unsent`), or WeCom answered a `retry` code, each of which says it did nothing.

The token (`gettoken`) is cached until shortly before it expires; an answer saying it expired
or is invalid (42001, 40014) drops it, fetches a new one and sends the call again once. The
token travels in the query string, so nothing here logs or reports a URL.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from sopdsl.errors import EngineError
from sopdsl.live.retry import RetryPolicy, unsent

API = "https://qyapi.weixin.qq.com"
Outcome = Literal["retry", "park", "fail", "unknown"]

# Documented error codes and what the outbox does about each; any other code fails the action.
# A `retry` code is a refusal before WeCom did anything (全局错误码: -1 "服务器暂不可用，建议稍候
# 重试"; the frequency limits refuse the call), so even a call not safe to repeat is tried again.
OUTCOMES: dict[int, Outcome] = {
    -1: "retry",  # 系统繁忙
    45009: "retry",  # 接口调用超过限制
    45033: "retry",  # 接口并发调用超过限制
    40001: "park",  # 不合法的secret参数
    40013: "park",  # 不合法的CorpID
    48002: "park",  # API接口无权限调用
    60011: "park",  # 指定的成员/部门/标签参数无权限
    60020: "park",  # 不安全的访问IP
    41051: "fail",  # externaluser has started chatting: the welcome code is spent
    40096: "fail",  # 不合法的外部联系人userid
    84061: "fail",  # 不存在外部联系人的关系
    40068: "fail",  # 不合法的标签ID
}
# What a `park` code asks of whoever set the app up: said in the parked action's error.
SETUP = {
    40001: "the secret is not this app's (WECOM_SECRET)",
    40013: "the corp id is wrong (WECOM_CORPID: 我的企业 → 企业ID)",
    48002: "the app may not call this API (客户联系 → API: give the app access)",
    60011: "the app may not act for this staff member or department (the app's visible range, 可见范围)",
    60020: "this server's IP is not among the app's trusted IPs (企业可信IP)",
}
TOKEN_CODES = frozenset({40014, 42001})  # 不合法的access_token, access_token已过期
# Whether each call the executors make may be sent again when its outcome is unknown (a timeout, a
# connection dropped after the request was written): doing it twice must be the same as once.
REPEATABLE: dict[str, bool] = {
    "gettoken": True,
    "externalcontact/get": True,  # reads
    "externalcontact/groupchat/get": True,
    "externalcontact/mark_tag": True,  # a tag added (or removed) twice is added once
    "media/upload": True,  # a second upload makes a second media_id, never used
    # A second mass send for its sender to confirm: customers may get the message twice.
    "externalcontact/add_msg_template": False,
    # The welcome code is spent by the first; the second is refused with 41051, which the executor
    # takes for a customer who wrote first, and sends the message again as a mass send.
    "externalcontact/send_welcome_msg": False,
    # An app message goes twice, unless sent with WeCom's duplicate check (`repeatable`).
    "message/send": False,
}
_EARLY = 300  # seconds before its stated expiry a token is fetched anew


class WeComError(EngineError):
    """A WeCom call that did not succeed; `outcome` says whether trying again can help."""

    def __init__(
        self,
        message: str,
        *,
        errcode: int | None,
        outcome: Outcome,
        retry_after: float | None = None,
        cause: str | None = None,
    ):
        super().__init__(message)
        self.errcode = errcode
        self.cause = cause  # of an `unknown` outcome: what happened instead of an answer (ReadTimeout)
        self.outcome = outcome
        self.permanent = outcome != "retry"  # the outbox parks a permanent failure at once
        self.retry_after = retry_after


def repeatable(path: str, body: Mapping[str, Any] | None = None) -> bool:
    """Whether the call `path` with `body` may be sent again when its outcome is unknown
    (`REPEATABLE`; a call not listed is not); an app message sent with WeCom's duplicate check is."""
    if body is not None and body.get("enable_duplicate_check") == 1:
        return True  # WeCom drops the repeat of the same message within the check's interval
    return REPEATABLE.get(path, False)


class _BusyError(Exception):
    """One attempt WeCom asked to repeat later (a retry code, a 5xx, a lost connection)."""

    def __init__(self, error: WeComError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass
class WeComApi:
    """A client of one WeCom app (corp id and secret), with its token cached; safe across threads."""

    corp_id: str
    secret: str
    base_url: str = API
    timeout: float = 10.0
    policy: RetryPolicy = field(default_factory=lambda: RetryPolicy(attempts=3, base=1.0, cap=10.0))
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    _token: str | None = field(init=False, default=None)
    _expires: float = field(init=False, default=0.0)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)
    tokens_fetched: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._client = httpx.Client(base_url=self.base_url.rstrip("/"), timeout=self.timeout)

    def __repr__(self) -> str:
        return f"WeComApi(corp_id={self.corp_id!r}, base_url={self.base_url!r})"

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST `body` as JSON to `/cgi-bin/PATH`; the answer, or `WeComError`."""
        return self._call(
            path,
            lambda token: self._client.post(
                f"/cgi-bin/{path}", params={"access_token": token}, json=dict(body)
            ),
            repeatable(path, body),
        )

    def get(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        """GET `/cgi-bin/PATH` with `params`; the answer, or `WeComError`."""
        return self._call(
            path,
            lambda token: self._client.get(f"/cgi-bin/{path}", params={"access_token": token, **params}),
            True,  # a GET reads
        )

    def upload(self, kind: str, name: str, content: bytes) -> str:
        """Upload a temporary media file (`media/upload`, valid 3 days); its media_id."""
        answer = self._call(
            "media/upload",
            lambda token: self._client.post(
                "/cgi-bin/media/upload",
                params={"access_token": token, "type": kind},
                files={"media": (name, content)},
            ),
            repeatable("media/upload"),
        )
        media = answer.get("media_id")
        if not isinstance(media, str) or not media:
            raise WeComError(
                f"WeCom media/upload answered no media_id for {name}", errcode=None, outcome="fail"
            )
        return media

    def token(self) -> str:
        """The cached access token, fetched with `gettoken` when there is none or it is about to expire."""
        with self._lock:
            if self._token is not None and self.clock() < self._expires:
                return self._token
            answer = self._attempts(
                "gettoken",
                lambda: self._client.get(
                    "/cgi-bin/gettoken", params={"corpid": self.corp_id, "corpsecret": self.secret}
                ),
                True,
            )
            token = answer.get("access_token")
            if not isinstance(token, str) or not token:
                raise WeComError("WeCom gettoken answered no access_token", errcode=None, outcome="park")
            lifetime = answer.get("expires_in")
            seconds = float(lifetime) if isinstance(lifetime, int | float) else 7200.0
            self._token, self._expires = token, self.clock() + max(0.0, seconds - _EARLY)
            self.tokens_fetched += 1
            return token

    def _forget(self, token: str) -> None:
        with self._lock:
            if self._token == token:
                self._token = None

    def _call(self, path: str, send: Callable[[str], httpx.Response], again: bool) -> dict[str, Any]:
        token = self.token()
        try:
            return self._attempts(path, lambda: send(token), again)
        except WeComError as exc:
            if exc.errcode not in TOKEN_CODES:
                raise
        # The token expired (or was revoked) before we thought: WeCom refused the call, so once
        # more with a fresh one, whether or not the call is safe to repeat.
        self._forget(token)
        fresh = self.token()
        return self._attempts(path, lambda: send(fresh), again)

    def _attempts(self, path: str, send: Callable[[], httpx.Response], again: bool) -> dict[str, Any]:
        """One call with the policy's retries of busy answers; the answer or `WeComError`. A call
        that may not be repeated (`again` false) is not tried again after an unknown outcome."""

        def attempt(number: int) -> dict[str, Any]:
            return self._once(path, send, again)

        try:
            return self.policy.call(attempt, retry_on=_BusyError, sleep=self.sleep)
        except _BusyError as busy:
            raise busy.error from None

    def _once(self, path: str, send: Callable[[], httpx.Response], again: bool) -> dict[str, Any]:
        try:
            response = send()
        except httpx.HTTPError as exc:
            if again or unsent(exc):
                raise _BusyError(
                    WeComError(
                        f"WeCom {path}: connection failed: {type(exc).__name__}",
                        errcode=None,
                        outcome="retry",
                    )
                ) from None
            raise _unknown(path, type(exc).__name__) from None
        if response.status_code >= 500:
            # A gateway's 5xx may come after WeCom did the call.
            if not again:
                raise _unknown(path, f"HTTP {response.status_code}")
            raise _BusyError(
                WeComError(f"WeCom {path}: HTTP {response.status_code}", errcode=None, outcome="retry")
            )
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise WeComError(
                f"WeCom {path}: HTTP {response.status_code}, not a JSON object", errcode=None, outcome="fail"
            )
        code = answer.get("errcode", 0)
        if code == 0:
            return answer
        errcode = code if isinstance(code, int) else None
        message = str(answer.get("errmsg", ""))[:300]
        outcome: Outcome = "retry" if errcode in TOKEN_CODES else OUTCOMES.get(errcode or 0, "fail")
        text = f"WeCom {path}: errcode {code}: {message}"
        if outcome == "park":
            setup = SETUP.get(errcode or 0, "the app's set-up")
            text += f" -- {setup}; fix it, then requeue the action (POST /admin/parked/KEY/requeue)"
        error = WeComError(text, errcode=errcode, outcome=outcome)
        if outcome == "retry" and errcode not in TOKEN_CODES:
            raise _BusyError(error)
        raise error


def _unknown(path: str, what: str) -> WeComError:
    """A call not safe to repeat that got no answer after its request may have reached WeCom."""
    return WeComError(
        f"WeCom {path}: no answer ({what}) after the request was sent: WeCom may have done it, "
        "so it is not sent again",
        errcode=None,
        outcome="unknown",
        cause=what,
    )
