"""`GET /report` with the shard on Temporal, against a real dev server: the shard's workflow keeps
the per-playbook figures (flows, actions by kind and status, goal conversions, experiment arms)
as the in-process runtime does, across continue-as-new, and the report equals `sopdsl report`'s."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from asgiclient import Client
from livestores import G5, dry_report, per_playbook, read_fixture
from temporalserver import Recorder
from test_workflow import replay

from sopdsl.build import build_paths
from sopdsl.live.app import create_app
from sopdsl.live.service import Service
from sopdsl.plan import timeutil

ONE_DAY = dt.timedelta(days=1)


@contextmanager
def g5_on_temporal(temporal_server: str, **options: Any) -> Iterator[Client]:
    """G5's fixture run by a shard's workflow (`options` for its `ShardClient`), on a signalled
    clock through the front's own worker, a new run every few entries, so the figures must cross
    continue-as-new; a client of the service in front of it, which is closed after."""
    from sopdsl.temporal.front import TemporalFront

    plan = build_paths([str(G5)]).plan
    assert plan is not None
    shard, queue = f"g5-{uuid.uuid4().hex[:8]}", f"figures-{uuid.uuid4().hex[:8]}"
    front = TemporalFront(
        plan, f"temporal://{temporal_server}", executors=Recorder().executors(), shard=shard, task_queue=queue
    )
    try:
        # One event a signal: its 9 events in one signal could all be applied before the history
        # reached 8, if the signals came before the first workflow task, and the run settle
        # without continuing.
        fixture = read_fixture(G5.with_suffix(".yaml"))
        assert len(fixture.events) >= 8
        status = front._call(
            replay(
                front.client.client,
                plan,
                fixture,
                shard,
                batch=1,
                task_queue=queue,
                continue_after=8,
                **options,
            ),
            timeout=180,
        )
        assert status["runs"] > 1, status
        service = Service(
            front, zone=timeutil.zone("Asia/Shanghai"), host="127.0.0.1", tokens=None, log=io.StringIO()
        )
        yield Client(create_app(service))
    finally:
        front.close()


def test_the_report_of_a_shard_on_temporal_has_its_per_playbook_figures(temporal_server: str) -> None:
    with g5_on_temporal(temporal_server) as client:
        dry = dry_report(G5)
        first, last = dry["days"][0], dry["days"][-1]
        answer = client.get(f"/report?from={first}&to={last}&format=json")
        assert answer.status_code == 200, answer.text
        live: dict[str, Any] = answer.json()
        assert live["days"] == dry["days"]
        assert per_playbook(live)[:2] == per_playbook(dry)[:2]  # playbooks (flows, actions, goals), arms
        poster = next(p for p in live["playbooks"] if p["name"] == "poster_ab")
        assert poster["goals"]["下单"]["conversions"] > 0 and poster["flows"]["started"] > 0
        assert {arm["arm"]: arm["members"] > 0 for arm in live["experiments"][0]["arms"]} == {
            "red": True,
            "yellow": True,
            "control": True,
        }
        # Part of the days: what began in them, as the in-process runtime counts it.
        before = client.get("/report?from=2027-01-08&to=2027-01-09&format=json").json()
        assert {p["name"]: p for p in before["playbooks"]}["poster_ab"]["flows"]["started"] == 0


def test_a_shard_on_temporal_hands_on_its_figures_past_by_day(temporal_server: str) -> None:
    """A shard keeping a quarter of an hour (`keep_days`): at each continue-as-new the goal events
    older than that are dropped, so fewer conversions show than in the dry run, while every
    sum (flows, actions by kind and status) reads as the dry run's, merged by day."""
    with g5_on_temporal(temporal_server, keep_days=0.01) as client:
        dry = dry_report(G5)
        live = client.get(f"/report?from={dry['days'][0]}&to={dry['days'][-1]}&format=json")
        assert live.status_code == 200, live.text
        kept = {p["name"]: p for p in live.json()["playbooks"]}
        whole = {p["name"]: p for p in dry["playbooks"]}
        assert {n: (p["flows"], p["actions"]) for n, p in kept.items()} == {
            n: (p["flows"], p["actions"]) for n, p in whole.items()
        }
        conversions = whole["poster_ab"]["goals"]["下单"]["conversions"]
        assert kept["poster_ab"]["goals"]["下单"]["conversions"] < conversions


def test_a_range_without_figures_on_temporal_names_the_days_that_hold_them(temporal_server: str) -> None:
    # A Temporal front could not tell which days hold figures: the notice only said the range had none.
    with g5_on_temporal(temporal_server) as client:
        dry = dry_report(G5)
        answer = client.get("/report?from=2020-01-01&to=2020-01-31&format=json")
        assert answer.status_code == 200, answer.text
        notice = answer.json()["notice"]
        first, last = notice["figures_from"], notice["figures_to"]
        assert notice["text"] == f"2020-01-01 至 2020-01-31 没有任何数据：有数据的日子是 {first} 至 {last}。"
        # The days named are the run's, and a report of them holds figures (no notice).
        assert dry["days"][0] <= first <= last <= dry["days"][-1]
        named = client.get(f"/report?from={first}&to={last}&format=json").json()
        assert "notice" not in named and any(p["flows"]["started"] for p in named["playbooks"])
        # ...and no day outside them does: the day before the first and the day after the last.
        for day in (dt.date.fromisoformat(first) - ONE_DAY, dt.date.fromisoformat(last) + ONE_DAY):
            assert "notice" in client.get(f"/report?from={day}&to={day}&format=json").json(), day
