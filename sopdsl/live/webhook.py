"""The webhook executor: each action POSTed as signed JSON to an HTTP endpoint the bot owns.

Input: an `Action` and its idempotency key, from the runtime's outbox. Output: one HTTP POST
(more on a transient failure) whose body is the action as JSON, signed with HMAC-SHA256 over a
timestamp, the attempt number and the exact body bytes, so a captured request cannot be replayed
once its timestamp is older than the receiver's tolerance (`verify_signature`, the receiver's
side). Raising tells the runtime the action did not go out: it retries later and, after its own
limit, parks the action as failed. A 4xx answer (other than 408 and 429) raises
`PermanentWebhookError`, since sending the same request again cannot succeed. Requests go
through httpx; retries within a call follow the runtime's one `RetryPolicy` (`retry.py`,
through tenacity), honouring a `Retry-After` in seconds. Error messages name
the URL with its credentials and secret parameters masked (`sopdsl.live.redact`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from sopdsl import __version__
from sopdsl.engine.actions import Action
from sopdsl.errors import EngineError
from sopdsl.live.dispatch import payload
from sopdsl.live.redact import redact_text, redact_url, secrets_of
from sopdsl.live.retry import RetryPolicy

# httpx logs every request's full URL at INFO, query-string tokens included: only its warnings pass.
logging.getLogger("httpx").setLevel(logging.WARNING)

SIGNATURE_HEADER = "X-Sopdsl-Signature"
TIMESTAMP_HEADER = "X-Sopdsl-Timestamp"
KEY_HEADER = "Idempotency-Key"
ATTEMPT_HEADER = "X-Sopdsl-Attempt"
SCHEME = "v1"  # the signature scheme's name in the header: HMAC-SHA256 of `signed_content`
TOLERANCE = 300  # seconds a receiver accepts a timestamp away from its own clock, by default
_RETRYABLE_4XX = (408, 429)
_MAX_RETRY_AFTER = 60.0


class WebhookError(EngineError):
    """A webhook delivery failed after its retries; the runtime may try the action again later."""

    permanent = False

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after  # the receiver's Retry-After: the outbox waits at least this


class _TransientError(Exception):
    """One attempt that may succeed if sent again (5xx, 408, 429, a timeout, a refused connection)."""

    def __init__(self, status: int | None, detail: str, retry_after: float | None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.retry_after = retry_after


class PermanentWebhookError(WebhookError):
    """The receiver refused the action (a 4xx answer, or a redirect): retrying cannot help."""

    permanent = True


class SignatureError(ValueError):
    """A request whose signature does not verify: missing, malformed, forged, tampered or too old."""


def signed_content(timestamp: int, attempt: int, body: bytes) -> bytes:
    """What is signed: `{timestamp}.{attempt}.` and the exact body bytes (which hold the idempotency key)."""
    return f"{timestamp}.{attempt}.".encode("ascii") + body


def sign(secret: bytes, body: bytes, *, timestamp: int, attempt: int) -> str:
    """The hex HMAC-SHA256 of `signed_content(timestamp, attempt, body)`, keyed with `secret`."""
    return hmac.new(secret, signed_content(timestamp, attempt, body), hashlib.sha256).hexdigest()


def signature_header(secrets: Sequence[bytes], body: bytes, *, timestamp: int, attempt: int) -> str:
    """The signature header's value: `t=TIMESTAMP,v1=HEX`, one `v1` per secret (several while rotating)."""
    signatures = ",".join(f"{SCHEME}={sign(s, body, timestamp=timestamp, attempt=attempt)}" for s in secrets)
    return f"t={timestamp},{signatures}"


def check_signature(
    secret: bytes | str | Iterable[bytes | str],
    headers: Mapping[str, str] | Any,
    body: bytes,
    *,
    tolerance: float = TOLERANCE,
    now: float | None = None,
) -> int:
    """Verify a webhook request as its receiver; return its timestamp, or raise `SignatureError` saying why.

    `headers` is anything with `.items()` (a dict, `http.server`'s message, a framework's
    headers), read case-insensitively; `body` is the exact bytes received. `secret` may be several
    (while rotating): any one of them signing the request is enough. Refused: a missing or
    malformed signature, a timestamp more than `tolerance` seconds from `now` (default: the
    wall clock) either way, a signature that matches no secret (the body, the timestamp or the
    attempt header changed), and an `Idempotency-Key` header other than the key in the body.
    Signatures are compared in constant time. A request replayed within the tolerance verifies:
    remember the signatures (or idempotency keys) seen in that window to refuse it too.
    """
    given = [secret] if isinstance(secret, bytes | bytearray | str) else list(secret)
    keys = [k.encode("utf-8") if isinstance(k, str) else bytes(k) for k in given]
    if not keys or not all(keys):
        raise SignatureError("no secret to verify with")
    found = {str(name).lower(): str(value) for name, value in headers.items()}
    header = found.get(SIGNATURE_HEADER.lower())
    if not header:
        raise SignatureError(f"no {SIGNATURE_HEADER} header")
    stamps: list[str] = []
    signatures: list[str] = []
    for part in header.split(","):
        name, eq, value = part.strip().partition("=")
        if eq and name == "t":
            stamps.append(value.strip())
        elif eq and name == SCHEME:
            signatures.append(value.strip())
    if len(stamps) != 1 or not _digits(stamps[0]) or not signatures:
        raise SignatureError(f"malformed {SIGNATURE_HEADER} header: expected t=TIMESTAMP,{SCHEME}=HEX")
    timestamp = int(stamps[0])
    sent = found.get(TIMESTAMP_HEADER.lower())
    if sent is not None and sent.strip() != stamps[0]:
        raise SignatureError(f"the {TIMESTAMP_HEADER} header differs from the signed timestamp")
    attempt = found.get(ATTEMPT_HEADER.lower(), "").strip()
    if not _digits(attempt):
        raise SignatureError(f"no {ATTEMPT_HEADER} header")
    clock = time.time() if now is None else now
    if abs(clock - timestamp) > tolerance:
        raise SignatureError(
            f"the timestamp is {int(clock - timestamp)}s from now, outside the {tolerance:g}s tolerance: "
            "a replayed request, or a clock out of step"
        )
    # Every pair compared, none skipped on a match: the time taken does not say which one was close.
    matched = False
    for key in keys:
        expected = sign(key, body, timestamp=timestamp, attempt=int(attempt))
        for signature in signatures:
            matched |= hmac.compare_digest(expected, signature)
    if not matched:
        raise SignatureError("the signature does not match: a wrong secret, or a changed body or header")
    idempotency_key = found.get(KEY_HEADER.lower())
    if idempotency_key is not None:
        try:
            inside = json.loads(body).get("idempotency_key")
        except (ValueError, AttributeError):
            inside = None
        if inside != idempotency_key:
            raise SignatureError(f"the {KEY_HEADER} header differs from the signed key in the body")
    return timestamp


def verify_signature(
    secret: bytes | str | Iterable[bytes | str],
    headers: Mapping[str, str] | Any,
    body: bytes,
    *,
    tolerance: float = TOLERANCE,
    now: float | None = None,
) -> bool:
    """Whether a webhook request verifies, as `check_signature` decides (which also says why not)."""
    try:
        check_signature(secret, headers, body, tolerance=tolerance, now=now)
    except SignatureError:
        return False
    return True


def encode(action: Action, key: str, zone: ZoneInfo) -> bytes:
    """The request body: the action's JSON with the idempotency key inside, so the key is signed too."""
    return json.dumps(
        payload(action, key, zone), ensure_ascii=False, sort_keys=True, separators=(",", ":")
    ).encode("utf-8")


@dataclass(repr=False)
class Webhook:
    """An executor that POSTs each action to `url`; call it as `webhook(action, key)`.

    Credentials in the URL (`https://user:password@host/...`) are sent as HTTP Basic
    authentication (unless `headers` sets `Authorization`), never in the request line, and are
    masked, like secret query parameters, wherever the URL is named in an error.
    """

    url: str
    secret: bytes
    zone: ZoneInfo
    timeout: float = 5.0
    retries: int = 2  # extra attempts after the first, for 5xx, 408, 429 and connection errors
    backoff: float = 0.5  # seconds before the first retry, doubled for each further one
    max_backoff: float = 10.0
    headers: Mapping[str, str] = field(default_factory=dict)
    sleep: Callable[[float], None] = time.sleep
    previous_secrets: Sequence[bytes] = ()  # also signed with, while receivers move to `secret`
    clock: Callable[[], float] = time.time  # the signature's timestamp
    _target: str = field(init=False, default="")
    _auth: tuple[str, str] | None = field(init=False, default=None)
    _secrets: list[str] = field(init=False, default_factory=list)
    # Attempts that failed and were retried within a call (the outbox counts a call that raised).
    failed_attempts: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._target, self._auth = _split_credentials(self.url)
        self._secrets = secrets_of(self.url)  # masked in a receiver's answer, too
        self.policy = RetryPolicy(
            attempts=self.retries + 1,
            base=self.backoff,
            cap=self.max_backoff,
            max_retry_after=_MAX_RETRY_AFTER,
        )
        # Redirects are reported, not followed: a redirected POST would lose its body or its signature's meaning.
        own = any(name.lower() == "authorization" for name in self.headers)
        self._client = httpx.Client(
            timeout=self.timeout, follow_redirects=False, auth=None if own else self._auth
        )

    def __repr__(self) -> str:
        return f"Webhook(url={redact_url(self.url)!r}, timeout={self.timeout}, retries={self.retries})"

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __call__(self, action: Action, key: str) -> None:
        """Deliver one action, retrying transient failures; raise `WebhookError` if it did not go out."""
        body = encode(action, key, self.zone)
        what = f"{action.kind} action {key}"
        where = redact_url(self.url)

        def attempt(number: int) -> None:
            status, detail, retry_after = self._post(body, key, number)
            detail = redact_text(detail, self._secrets)
            if status is not None and 200 <= status < 300:
                return
            if status is not None and (300 <= status < 500) and status not in _RETRYABLE_4XX:
                raise PermanentWebhookError(
                    f"webhook {where} refused {what}: HTTP {status}{detail}; not retried", status=status
                )
            if number <= self.retries:
                self.failed_attempts += 1  # retried below; a call that raises is counted by the outbox
            raise _TransientError(status, detail, retry_after)

        try:
            self.policy.call(attempt, retry_on=_TransientError, sleep=self.sleep)
        except _TransientError as exc:
            answer = f"HTTP {exc.status}{exc.detail}" if exc.status is not None else exc.detail
            raise WebhookError(
                f"webhook {where} failed for {what} after {self.retries + 1} attempt(s): {answer}",
                status=exc.status,
                retry_after=exc.retry_after,
            ) from None

    def _post(self, body: bytes, key: str, attempt: int) -> tuple[int | None, str, float | None]:
        """One attempt: (status or None on a connection error, a short description, Retry-After)."""
        timestamp = int(self.clock())
        headers = {
            **self.headers,
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": f"sopdsl/{__version__}",
            SIGNATURE_HEADER: signature_header(
                [self.secret, *self.previous_secrets], body, timestamp=timestamp, attempt=attempt
            ),
            TIMESTAMP_HEADER: str(timestamp),
            KEY_HEADER: key,
            ATTEMPT_HEADER: str(attempt),
        }
        try:
            response = self._client.post(self._target, content=body, headers=headers)
        except httpx.TimeoutException:
            return None, f"connection failed: timed out after {self.timeout:g} s", None
        except httpx.HTTPError as exc:
            return None, f"connection failed: {exc or type(exc).__name__}", None
        status = response.status_code
        if 200 <= status < 300:
            return status, "", None
        location = response.headers.get("Location") if 300 <= status < 400 else None
        detail = f" (redirect to {redact_url(location)}: configure the final URL)" if location else ""
        text = response.content[:300].decode("utf-8", errors="replace").strip()
        if text and not location:
            detail = f" ({text[:200]})"
        return status, detail, _retry_after(response.headers.get("Retry-After"))


def _split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """The URL without its `user:password@`, and those as a pair for HTTP Basic authentication."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    target = urllib.parse.urlunsplit(parts._replace(netloc=hostport))
    return target, (urllib.parse.unquote(user), urllib.parse.unquote(password))


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _retry_after(value: str | None) -> float | None:
    # Only the delay-seconds form: an HTTP-date would need the wall clock of the receiver.
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
