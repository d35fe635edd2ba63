"""The health endpoints, which answer without a token, show the timer loop's error only to a
caller whose token reaches the shard.

Before, anyone who could reach the port read it from `/readyz` or `/health`: the store's user,
host and database, and what PostgreSQL quoted of the row at fault, a customer's id among them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from asgiclient import Client
from runtime_helpers import Replaced
from test_admin import AUTH, START, TOKEN, admin_service

from sopdsl.errors import EngineError
from sopdsl.live.app import create_app
from sopdsl.live.auth import parse_tokens
from sopdsl.live.clock import ManualClock
from sopdsl.live.service import Service

FAILURE = (
    "store postgresql://app:***@db.internal:5432/shop: duplicate key value violates unique constraint\n"
    "DETAIL:  Key (customer, owner)=(wmCUSTOMER42, zhangsan) already exists."
)


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> Iterator[Service]:
    svc = admin_service("memory://", ManualClock(START))

    def broken(now: int | None = None) -> list[Any]:
        raise EngineError(FAILURE)

    runtime = svc.runtime
    monkeypatch.setattr(svc, "runtime", Replaced(runtime, tick=broken))
    svc.tick()
    yield svc
    runtime.close()


@pytest.mark.parametrize("path", ["/readyz", "/health"])
def test_a_failing_timer_loop_is_told_to_all_and_its_error_only_with_a_token(
    service: Service, path: str
) -> None:
    client = Client(create_app(service))
    for headers in ({}, {"Authorization": "Bearer not-a-token-of-this-service"}):
        answer = client.get(path, headers=headers)
        assert answer.status_code == 503 and answer.json()["status"] == "failing"
        assert "db.internal" not in answer.text and "wmCUSTOMER42" not in answer.text
        assert "with a token" in answer.json()["error"]
    answer = client.get(path, headers=AUTH)
    assert answer.status_code == 503 and "wmCUSTOMER42" in answer.json()["error"]


def test_a_token_of_another_shard_does_not_see_it(service: Service) -> None:
    service.tokens = parse_tokens(f"{TOKEN} default\nother-shard-token-0123456789 shop2\n", "t")
    answer = Client(create_app(service)).get(
        "/readyz", headers={"Authorization": "Bearer other-shard-token-0123456789"}
    )
    assert answer.status_code == 503 and "db.internal" not in answer.text
