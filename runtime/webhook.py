"""The webhook executor: each action POSTed as signed JSON to an HTTP endpoint the bot owns.

Input: an `Action` and its idempotency key, from the runtime's outbox. Output: one HTTP POST
(more on a transient failure) whose body is the action as JSON, signed with HMAC-SHA256 over the
exact body bytes. Raising tells the runtime the action did not go out: it retries later and, after
its own limit, parks the action as failed. A 4xx answer (other than 408 and 429) raises
`PermanentWebhookError`, since sending the same request again cannot succeed.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sopdsl import __version__
from sopdsl.errors import EngineError
from sopdsl.runtime.actions import Action

SIGNATURE_HEADER = "X-Sopdsl-Signature"
KEY_HEADER = "Idempotency-Key"
ATTEMPT_HEADER = "X-Sopdsl-Attempt"
_RETRYABLE_4XX = (408, 429)
_MAX_RETRY_AFTER = 60.0


class WebhookError(EngineError):
    """A webhook delivery failed after its retries; the runtime may try the action again later."""

    permanent = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class PermanentWebhookError(WebhookError):
    """The receiver refused the action (a 4xx answer, or a redirect): retrying cannot help."""

    permanent = True


def sign(secret: bytes, body: bytes) -> str:
    """The signature header's value for a body: `sha256=` and the hex HMAC-SHA256."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header: str | None) -> bool:
    """Whether a signature header matches the body (constant-time), as a receiver checks it."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)


def encode(action: Action, key: str, zone: ZoneInfo) -> bytes:
    """The request body: the action's JSON with the idempotency key inside, so the key is signed too."""
    payload = {**action.to_json(zone), "idempotency_key": key}
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib would replay a redirected POST as a GET without the body; a redirect is reported instead.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


@dataclass
class Webhook:
    """An executor that POSTs each action to `url`; call it as `webhook(action, key)`."""

    url: str
    secret: bytes
    zone: ZoneInfo
    timeout: float = 5.0
    retries: int = 2  # extra attempts after the first, for 5xx, 408, 429 and connection errors
    backoff: float = 0.5  # seconds before the first retry, doubled for each further one
    max_backoff: float = 10.0
    headers: Mapping[str, str] = field(default_factory=dict)
    sleep: Callable[[float], None] = time.sleep

    def __call__(self, action: Action, key: str) -> None:
        """Deliver one action, retrying transient failures; raise `WebhookError` if it did not go out."""
        body = encode(action, key, self.zone)
        what = f"{action.kind} action {key}"
        for attempt in range(1, self.retries + 2):
            status, detail, retry_after = self._post(body, key, attempt)
            if status is not None and 200 <= status < 300:
                return
            if status is not None and (300 <= status < 500) and status not in _RETRYABLE_4XX:
                raise PermanentWebhookError(
                    f"webhook {self.url} refused {what}: HTTP {status}{detail}; not retried",
                    status=status,
                )
            if attempt > self.retries:
                answer = f"HTTP {status}{detail}" if status is not None else detail
                raise WebhookError(
                    f"webhook {self.url} failed for {what} after {attempt} attempt(s): {answer}",
                    status=status,
                )
            delay = min(self.backoff * 2 ** (attempt - 1), self.max_backoff)
            if retry_after is not None:
                delay = max(delay, min(retry_after, _MAX_RETRY_AFTER))
            self.sleep(delay)

    def _post(self, body: bytes, key: str, attempt: int) -> tuple[int | None, str, float | None]:
        """One attempt: (status or None on a connection error, a short description, Retry-After)."""
        headers = {
            **self.headers,
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": f"sopdsl/{__version__}",
            SIGNATURE_HEADER: sign(self.secret, body),
            KEY_HEADER: key,
            ATTEMPT_HEADER: str(attempt),
        }
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with _OPENER.open(request, timeout=self.timeout) as response:
                response.read()
                return int(response.status), "", None
        except urllib.error.HTTPError as exc:
            text = exc.read(300).decode("utf-8", errors="replace").strip()
            location = exc.headers.get("Location") if 300 <= exc.code < 400 else None
            detail = f" (redirect to {location}: configure the final URL)" if location else ""
            if text and not location:
                detail = f" ({text[:200]})"
            return exc.code, detail, _retry_after(exc.headers.get("Retry-After"))
        except (OSError, http.client.HTTPException) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            return None, f"connection failed: {reason or type(exc).__name__}", None


def _retry_after(value: str | None) -> float | None:
    # Only the delay-seconds form: an HTTP-date would need the wall clock of the receiver.
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
