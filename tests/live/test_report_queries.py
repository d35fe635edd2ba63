"""`GET /report` asked wrongly, as a user does: each mistake is a 400 that says which one it is
and what to do (tests/live/test_live_figures.py has the first cases)."""

from __future__ import annotations

from pathlib import Path

import pytest
from livestores import KINDS, store_url
from test_live_figures import CASES, client_of, run_shop

import sopdsl
from sopdsl.live.runtime import ManualClock, Runtime


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("?from=2026-03-04&to=2026-03-02", "from=2026-03-04 is after to=2026-03-02; swap them"),
        (
            "?from=2026-03-02&to=2027-03-10",
            "2026-03-02 to 2027-03-10 is 374 days; a report covers at most 366",
        ),
    ],
)
def test_a_reversed_or_too_long_range_is_told_apart(query: str, says: str) -> None:
    rt = run_shop("memory://")
    answer = client_of(rt).get(f"/report{query}")
    rt.close()
    assert answer.status_code == 400
    assert says in answer.json()["error"]


@pytest.mark.parametrize(
    ("query", "says"),
    [
        # `date.fromisoformat` takes these; docs/service.md says a day is YYYY-MM-DD.
        (
            "?from=20260302&to=2026-03-04",
            "from is a day written YYYY-MM-DD (like 2026-03-02), not '20260302'",
        ),
        (
            "?from=2026-03-02&to=2026-W10-3",
            "to is a day written YYYY-MM-DD (like 2026-03-02), not '2026-W10-3'",
        ),
        ("?from=2026-03-02&to=２０２６-03-04", "to is a day written YYYY-MM-DD"),
        ("?from=2026-02-30&to=2026-03-04", "from=2026-02-30 is no day"),
    ],
)
def test_a_day_in_another_form_than_the_documented_one_is_refused(query: str, says: str) -> None:
    rt = run_shop("memory://")
    answer = client_of(rt).get(f"/report{query}")
    rt.close()
    assert answer.status_code == 400, answer.text
    assert says in answer.json()["error"]


@pytest.mark.parametrize("name", ["from", "to", "format"])
def test_a_parameter_given_twice_is_refused_naming_it(name: str) -> None:
    # The last one was kept: `from=2026-03-02&from=2026-03-03` silently reported from the 3rd.
    query = {"from": "2026-03-02", "to": "2026-03-04", "format": "json"}
    pairs = [*query.items(), (name, query[name])]
    rt = run_shop("memory://")
    answer = client_of(rt).get("/report?" + "&".join(f"{k}={v}" for k, v in pairs))
    rt.close()
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == f"{name} is given more than once; give it once"


@pytest.mark.parametrize("kind", KINDS)
def test_a_range_outside_the_figures_says_so_and_which_days_hold_them(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # The shop's figures run from 2026-03-02 to 2026-03-04 (its timeline: 03-02 09:00 to 03-05 00:00).
    # A range before them was a 200 of zeros, read as a dead community.
    rt = run_shop(store_url(kind, tmp_path, request))
    client = client_of(rt)
    data = client.get("/report?from=2020-01-01&to=2020-01-31&format=json").json()
    page = client.get("/report?from=2026-03-06&to=2026-03-07")
    inside = client.get("/report?from=2026-03-04&to=2026-03-10&format=json").json()
    rt.close()
    assert data["notice"] == {
        "empty": True,
        "figures_from": "2026-03-02",
        "figures_to": "2026-03-04",
        "text": "2020-01-01 至 2020-01-31 没有任何数据：有数据的日子是 2026-03-02 至 2026-03-04。",
    }
    assert page.status_code == 200
    notice = '<p class="notice" id="notice">2026-03-06 至 2026-03-07 没有任何数据：有数据的日子是 2026-03-02 至 2026-03-04。</p>'
    assert notice in page.text
    assert page.text.index(notice) < page.text.index('<h2 id="groups">')  # seen first, above the zeros
    assert "notice" not in inside  # a range that overlaps the figures is no empty one


@pytest.mark.parametrize("kind", KINDS)
def test_a_shard_with_no_figures_at_all_says_so(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load(str(CASES / "shop.sop"))))
    rt = Runtime(plan, store_url(kind, tmp_path, request), clock=ManualClock(1_772_416_800))
    data = client_of(rt).get("/report?from=2026-03-02&to=2026-03-04&format=json").json()
    rt.close()
    assert data["notice"] == {
        "empty": True,
        "figures_from": None,
        "figures_to": None,
        "text": "2026-03-02 至 2026-03-04 没有任何数据：这里还没有任何数据。",
    }
