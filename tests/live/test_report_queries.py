"""`GET /report` asked wrongly, as a user does: each mistake is a 400 that says which one it is
and what to do (tests/live/test_live_figures.py has the first cases)."""

from __future__ import annotations

import pytest
from test_live_figures import client_of, run_shop


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
