"""Names from outside on the report page (a group's name and id, as the admin API or events gave
them) are isolated: a right-to-left override in one turns no other text around.

Before, a group registered as `"\u202e群友交流"` (U+202E, RIGHT-TO-LEFT OVERRIDE, unterminated)
made the rest of its section's heading read right to left: its id beside it, and in a pilot's
heading every group named after it, so a reader saw other ids than the groups' own.
"""

from __future__ import annotations

from html.parser import HTMLParser

from asgiclient import Client
from test_admin import AUTH, START, admin_service

from sopdsl.figures.html import render_html
from sopdsl.live.app import create_app
from sopdsl.live.clock import ManualClock

# Bidi controls that change the direction of the text after them until closed.
CONTROLS = "\u202a\u202b\u202d\u202e\u2066\u2067\u2068"


class Controls(HTMLParser):
    """The elements each text holding a bidi control sits in, innermost last."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.found: list[tuple[str, list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.open:
            del self.open[len(self.open) - 1 - self.open[::-1].index(tag) :]

    def handle_data(self, data: str) -> None:
        if any(c in data for c in CONTROLS):
            self.found.append((data, list(self.open)))


def controls_in(page: str) -> list[tuple[str, list[str]]]:
    parser = Controls()
    parser.feed(page)
    return parser.found


def test_a_group_name_with_a_right_to_left_override_is_isolated_on_the_live_report() -> None:
    service = admin_service("memory://", ManualClock(START))
    try:
        client = Client(create_app(service))
        put = client.request(
            "PUT", "/admin/groups/g1", json={"name": "\u202e群友交流", "tags": ["normal"]}, headers=AUTH
        )
        assert put.status_code == 200
        fed = client.post(
            "/events",
            json={"kind": "join", "member": "m1", "group": "g1"},
            headers={**AUTH, "Content-Type": "application/json"},
        )
        assert fed.status_code == 202
        page = client.get("/report?from=2026-03-09&to=2026-03-09", headers=AUTH).text
    finally:
        service.runtime.close()
    found = controls_in(page)
    assert len(found) == 2, "the group's name is on the page, in the overview and its section"
    # A table cell holds its text's direction in; anywhere else a `<bdi>` must.
    assert all(within[-1] == "bdi" or within[-2:] == ["td", "a"] for _, within in found), found
    assert any(within[-1] == "bdi" and "h3" in within for _, within in found), found


def test_the_groups_of_a_pilot_are_each_isolated() -> None:
    pilot = {
        "playbook": "p",
        "pilot": ["\u202eg1", "g2"],
        "rest": ["g3"],
        "days": ["2026-03-09", "2026-03-09"],
        "figures": [],
    }
    report = {
        "days": ["2026-03-09"],
        "groups": [],
        "playbooks": [],
        "experiments": [],
        "pilots": [pilot],
        "calendar": [],
        "burst": None,
        "title": "t",
        "zone": "Asia/Shanghai",
        "plan": "h",
    }
    found = controls_in(render_html(report))
    assert [data for data, _ in found] == ["\u202eg1"]
    assert all(within[-1] == "bdi" for _, within in found), found
