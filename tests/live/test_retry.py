"""The one retry policy: its delays, its tenacity loop, and both of its users (outbox and webhook)."""

from __future__ import annotations

import httpx
import pytest
from test_service import JOIN, START, ZONE, plan

from sopdsl.engine.actions import Action
from sopdsl.live.clock import ManualClock
from sopdsl.live.dispatch import RetryPolicy as DispatchRetryPolicy
from sopdsl.live.retry import RetryPolicy, unsent
from sopdsl.live.runtime import Runtime
from sopdsl.live.store import PENDING
from sopdsl.live.webhook import Webhook, WebhookError


def test_delays_double_up_to_the_cap_and_a_retry_after_lengthens_them() -> None:
    policy = RetryPolicy(attempts=5, base=30, cap=100, max_retry_after=600)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [30, 60, 100, 100]
    assert policy.delay(1, retry_after=90) == 90
    assert policy.delay(2, retry_after=10) == 60  # never shorter than the backoff
    assert policy.delay(1, retry_after=10_000) == 600


class FlakyError(Exception):
    def __init__(self, retry_after: float | None = None) -> None:
        self.retry_after = retry_after


def test_a_call_is_retried_on_its_error_only_and_the_last_error_is_raised() -> None:
    sleeps: list[float] = []
    policy = RetryPolicy(attempts=3, base=1, cap=10)
    seen: list[int] = []

    def attempt(number: int) -> str:
        seen.append(number)
        if number < 3:
            raise FlakyError(retry_after=5 if number == 2 else None)
        return "done"

    assert policy.call(attempt, retry_on=FlakyError, sleep=sleeps.append) == "done"
    assert seen == [1, 2, 3] and sleeps == [1, 5]

    def always(number: int) -> str:
        raise FlakyError()

    with pytest.raises(FlakyError):
        policy.call(always, retry_on=FlakyError, sleep=sleeps.append)

    def wrong(number: int) -> str:
        raise KeyError("not retried")

    seen.clear()
    with pytest.raises(KeyError):
        policy.call(wrong, retry_on=FlakyError, sleep=sleeps.append)


def test_the_webhook_and_the_outbox_share_one_policy_type() -> None:
    assert DispatchRetryPolicy is RetryPolicy
    hook = Webhook(
        url="http://127.0.0.1:1/hook", secret=b"k", zone=ZONE, retries=2, backoff=0.5, max_backoff=4
    )
    try:
        assert hook.policy == RetryPolicy(attempts=3, base=0.5, cap=4, max_retry_after=60.0)
    finally:
        hook.close()


def test_the_outbox_waits_as_long_as_a_receivers_retry_after_asks() -> None:
    def busy(action: Action, key: str) -> None:
        raise WebhookError("webhook busy", status=429, retry_after=900)

    runtime = Runtime(plan(), "memory://", executors={"send": busy}, clock=ManualClock(START))
    try:
        runtime.feed(JOIN)
        runtime.tick()
        [row] = [r for r in runtime.store.outbox() if r.kind == "send"]
        assert row.status == PENDING and row.failures == 1
        assert row.next_at == START + 900  # not the policy's 30 s
    finally:
        runtime.close()


def test_only_a_connection_never_made_is_surely_unsent() -> None:
    """What a call not safe to repeat may be tried again after: the request never left."""
    request = httpx.Request("POST", "https://qyapi.weixin.qq.com/cgi-bin/x")
    assert unsent(httpx.ConnectError("refused", request=request))
    assert unsent(httpx.ConnectTimeout("no connection", request=request))
    assert unsent(httpx.PoolTimeout("pool full", request=request))
    assert not unsent(httpx.ReadTimeout("no answer", request=request))  # WeCom may have done it
    assert not unsent(httpx.WriteTimeout("half written", request=request))
    assert not unsent(httpx.RemoteProtocolError("dropped", request=request))
