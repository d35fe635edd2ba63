"""Inputs found by fuzzing the service's HTTP API (schemathesis and by hand), each once a 500, a
traceback in the log or a misleading answer: every one is now a 4xx naming what is wrong."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_admin import AUTH, START, admin_service
from test_app import Client

from sopdsl.live.app import create_app
from sopdsl.live.clock import ManualClock
from sopdsl.live.service import Service


@pytest.fixture(params=["memory", "sqlite"])
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Service]:
    store = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'state.db'}"
    svc = admin_service(store, ManualClock(START))
    yield svc
    svc.runtime.close()


@pytest.fixture
def client(service: Service) -> Client:
    return Client(create_app(service))


def logged(service: Service) -> str:
    return str(service.log.getvalue())  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "days",
    ["from=9999-12-31&to=9999-12-31", "from=0001-01-01&to=0001-01-01", "from=1969-12-31&to=1970-01-01"],
)
def test_a_report_of_days_at_the_ends_of_the_calendar_is_refused_not_a_500(
    client: Client, service: Service, days: str
) -> None:
    answer = client.get(f"/report?{days}&format=json", headers=AUTH)
    assert answer.status_code == 400, answer.text
    assert "out of range" in answer.json()["error"]
    assert "Traceback" not in logged(service)
