"""Live figures: counted in the store as events are journaled and sends are done, queried by date
range, and served as the report by `GET /report`. The shop community of tests/figures/cases, run
live, gives the figures its dry run gives (tests/figures/goldens/), on every store."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from asgiclient import Client
from livestores import (
    G5,
    KINDS,
    dry_report,
    fixture_events,
    fixture_setup,
    per_playbook,
    read_fixture,
    store_url,
)

import sopdsl
from sopdsl.dryrun.simulate import to_epoch
from sopdsl.engine.actions import Action
from sopdsl.live.app import create_app
from sopdsl.live.dispatch import ACTION_KINDS
from sopdsl.live.runtime import ManualClock, Runtime
from sopdsl.live.service import Service
from sopdsl.live.store import DONE
from sopdsl.live.store_figures import SLOT

CASES = Path(__file__).parent.parent / "figures" / "cases"
GOLDENS = Path(__file__).parent.parent / "figures" / "goldens"


def golden(name: str) -> dict[str, Any]:
    data = json.loads((GOLDENS / f"{name}.json").read_text(encoding="utf-8"))
    data.pop("_why")
    return dict(data)


def run_shop(url: str, sop: Path = CASES / "shop.sop") -> Runtime:
    """A fixture (`sop` with its .yaml beside it) run live: each event fed at its time, then the
    clock moved to the fixture's end and every action executed."""
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load(str(sop))))
    fixture = read_fixture(sop.with_suffix(".yaml"))
    zone = plan.declarations.timezone
    clock = ManualClock(to_epoch(fixture.start, zone))

    def executed(action: Action, key: str) -> None:
        return None

    rt = Runtime(plan, url, executors=dict.fromkeys(ACTION_KINDS, executed), clock=clock)
    fixture_setup(rt, fixture, zone)
    for event in fixture_events(fixture, zone):
        clock.set(event["time"])
        rt.feed(event)
    assert fixture.end is not None
    clock.set(to_epoch(fixture.end, zone))
    rt.tick()
    rt.dispatch()
    return rt


@pytest.fixture(params=KINDS)
def shop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    """The shop community run live on each store."""
    rt = run_shop(store_url(request.param, tmp_path, request))
    yield rt
    rt.close()


def client_of(rt: Runtime) -> Client:
    return Client(
        create_app(
            Service(rt, zone=ZoneInfo("Asia/Shanghai"), host="127.0.0.1", tokens=None, log=io.StringIO())
        )
    )


def family(data: dict[str, Any], name: str) -> dict[str, Any]:
    return {g["id"]: {row["day"]: row[name] for row in g["days"]} for g in data["groups"] if any(g["days"])}


def test_live_figures_of_the_shop_equal_its_dry_runs(shop: Runtime) -> None:
    client = client_of(shop)
    answer = client.get("/report?from=2026-03-02&to=2026-03-04&format=json")
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["days"] == ["2026-03-02", "2026-03-03", "2026-03-04"]
    for name in ("activity", "growth", "conversion"):
        got = family(data, name)
        assert {g: got[g] for g in golden(name)} == golden(name), name
    # Deliveries as the dry run's; live, a post to the group reaches only the members it names.
    deliveries = {
        g: {d: c["deliveries"] for d, c in days.items()} for g, days in family(data, "reach").items()
    }
    assert {g: deliveries[g] for g in ("g1", "g2")} == {
        g: {d: c["deliveries"] for d, c in days.items()} for g, days in golden("reach").items()
    }
    page = client.get("/report?from=2026-03-02&to=2026-03-04")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'data-group="g1" data-day="2026-03-02" data-figure="activity.messages">3<' in page.text
    # One day is a range too: 3 March only.
    one = client.get("/report?from=2026-03-03&to=2026-03-03&format=json").json()
    assert family(one, "conversion")["g2"] == {"2026-03-03": {"orders": 2, "buyers": 1, "amount": 35.5}}


def test_a_send_is_reached_once_per_idempotency_key(shop: Runtime) -> None:
    rt = shop
    before = rt.store.figures(rt.shard, 0, 2**40)
    done = [r for r in rt.store.outbox(rt.shard) if r.status == DONE and r.kind == "send"]
    assert done
    # An outcome recorded again (a worker whose lease ran out finishing late) counts nothing more.
    for row in done:
        row.status = DONE
    rt.store.finish(done, rt.worker)
    assert rt.store.figures(rt.shard, 0, 2**40) == before


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("?to=2026-03-04", "from=YYYY-MM-DD"),
        ("?from=2026-3-2&to=2026-03-04", "YYYY-MM-DD"),
        ("?from=2026-03-04&to=2026-03-02", "must not be after"),
        ("?from=2026-03-02&to=2026-03-04&format=pdf", "html or json"),
    ],
)
def test_a_wrong_report_query_is_400_and_says_why(query: str, says: str) -> None:
    rt = run_shop("memory://")
    answer = client_of(rt).get(f"/report{query}")
    rt.close()
    assert answer.status_code == 400
    assert says in answer.json()["error"]


@pytest.mark.parametrize("kind", KINDS)
def test_live_playbook_goal_and_arm_figures_equal_the_dry_run_report(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """G5 (a split with a control arm and a goal) run live: GET /report's per-playbook figures,
    goal conversions and experiment arms (with their statistics) are `sopdsl report`'s."""
    dry = dry_report(G5)
    rt = run_shop(store_url(kind, tmp_path, request), G5)
    try:
        first, last = dry["days"][0], dry["days"][-1]
        answer = client_of(rt).get(f"/report?from={first}&to={last}&format=json")
        assert answer.status_code == 200, answer.text
        live = answer.json()
    finally:
        rt.close()
    assert live["days"] == dry["days"]
    assert per_playbook(live) == per_playbook(dry)
    # Not vacuous: the split assigned and reached members, the goal converted some.
    (experiment,) = dry["experiments"]
    assert {arm["arm"]: arm["members"] > 0 for arm in experiment["arms"]} == {
        "red": True,
        "yellow": True,
        "control": True,
    }
    assert sum(arm["converted"] for arm in experiment["arms"]) > 0
    poster = next(p for p in dry["playbooks"] if p["name"] == "poster_ab")
    assert poster["goals"]["下单"]["conversions"] > 0 and poster["flows"]["started"] > 0


def test_a_live_report_of_part_of_the_days_counts_what_began_in_them(tmp_path: Path) -> None:
    """Flows and arms count in the days they began, conversions in the days of their events."""
    rt = run_shop("memory://", G5)
    try:
        client = client_of(rt)
        before = client.get("/report?from=2027-01-08&to=2027-01-09&format=json").json()
        after = client.get("/report?from=2027-01-10&to=2027-01-19&format=json").json()
    finally:
        rt.close()
    poster = {p["name"]: p for p in before["playbooks"]}["poster_ab"]
    assert poster["flows"] == {"started": 0, "completed": 0, "exited": 0, "running": 0}
    assert all(arm["members"] == 0 for arm in before["experiments"][0]["arms"])
    whole = dry_report(G5)
    assert per_playbook(after)[:2] == per_playbook(whole)[:2]


@pytest.mark.parametrize("kind", KINDS)
def test_a_purge_prunes_member_rows_but_changes_no_report_of_the_days_kept(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """G5's split touched members on 10 January with a 7-day goal: a purge from the 12th keeps
    those touches (they still convert on the 12th to the 17th) and drops goal events and members
    seen before it; one from the 19th drops the touches too. Reports of the days kept are unchanged."""
    rt = run_shop(store_url(kind, tmp_path, request), G5)  # the clock ends at 2027-01-20 00:00
    try:
        client = client_of(rt)
        everything = rt.store.figures(rt.shard, 0, 2**40)
        kept = client.get("/report?from=2027-01-12&to=2027-01-19&format=json").json()
        assert (
            kept["playbooks"][0]["goals"]["下单"]["conversions"] > 0
        )  # not vacuous: touches of the 10th convert
        twelfth, nineteenth = rt.clock.now() - 8 * 86400, rt.clock.now() - 86400
        assert min(t[2] for t in everything.touches) < twelfth
        assert min(g[1] for g in everything.goals) < twelfth
        assert min(s[1] for s in everything.seen) < twelfth // SLOT

        rt.purge(days=8)
        assert client.get("/report?from=2027-01-12&to=2027-01-19&format=json").json() == kept
        left = rt.store.figures(rt.shard, 0, 2**40)
        assert left.touches == everything.touches and left.arms == everything.arms
        assert left.goals == [g for g in everything.goals if g[1] >= twelfth] != []
        assert left.seen == [s for s in everything.seen if s[1] >= twelfth // SLOT] != []
        assert left.sums == everything.sums and left.playbooks == everything.playbooks

        last = client.get("/report?from=2027-01-19&to=2027-01-19&format=json").json()
        rt.purge(days=1)  # 7 days and 7 hours after the touches of the 10th: none can convert now
        assert client.get("/report?from=2027-01-19&to=2027-01-19&format=json").json() == last
        reach = nineteenth - 7 * (86400 + 3600)
        assert rt.store.figures(rt.shard, 0, 2**40).touches == [
            t for t in everything.touches if t[2] >= reach
        ]
        assert min(t[2] for t in everything.touches) < reach
        assert rt.store.figures(rt.shard, 0, 2**40).arms == everything.arms  # arms are for good
    finally:
        rt.close()
