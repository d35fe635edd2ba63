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
