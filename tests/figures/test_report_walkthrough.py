"""`sopdsl report` as a new ops lead meets it: their own playbooks with goals and a split, the
mistakes they make, and what the page then says (values checked by hand in each test)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from sopdsl.cli import main

AB = """\
timezone "Asia/Shanghai"
group 北京一群 { tagged "fans" }
template poster_a "海报A" = "年货节A版"
playbook poster_test "海报测试" {
    in groups tagged "fans"
    goal "下单" = member orders within 3 days
    at 2027-01-10 20:00 for each member: split {
        a SHARE_A%: send poster_a to member
        control SHARE_C%
    }
}
"""

TIMELINE = """\
start: 2027-01-09 09:00
end: 2027-01-14 00:00
seed: 0
groups:
  - {id: 北京一群, name: 北京粉丝一群, tags: [fans]}
members: MEMBERS
events:
  - {at: 2027-01-11 21:00, kind: order, member: m1, group: 北京一群, data: {amount: 100}}
expect: []
"""

THREE = "\n" + "".join(f"  - {{id: m{i}, name: 张{i}, groups: [北京一群]}}\n" for i in (1, 2, 3))


def run(tmp_path: Path, sop: str, timeline: str, fmt: str = "json") -> Any:
    """`sopdsl report` of the texts given; the JSON data, or the HTML page's text."""
    (tmp_path / "p.sop").write_text(sop, encoding="utf-8")
    (tmp_path / "t.yaml").write_text(timeline, encoding="utf-8")
    args = ["report", str(tmp_path / "p.sop"), "--timeline", str(tmp_path / "t.yaml"), "--format", fmt]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if fmt == "json" else result.stdout


def ab(a: int, control: int) -> str:
    return AB.replace("SHARE_A", str(a)).replace("SHARE_C", str(control))


def test_arms_nobody_was_put_in_have_no_rate_and_no_comparison(tmp_path: Path) -> None:
    # No members at all: both arms are empty. A rate of 0% with a 0–0% interval and p = 1 would
    # read as measured; there is nothing to measure.
    data = run(tmp_path, ab(50, 50), TIMELINE.replace("MEMBERS", "[]"))
    a, control = data["experiments"][0]["arms"]
    assert (a["members"], control["members"]) == (0, 0)
    assert (a["rate"], a["ci"], control["rate"], control["ci"]) == (None, None, None, None)
    assert (a["difference"], a["p"], a["test"], a["missing"]) == (None, None, None, "arm")
    page = run(tmp_path, ab(50, 50), TIMELINE.replace("MEMBERS", "[]"), "html")
    assert 'data-arm="a" data-measure="missing">本组没有人，无法比较<' in page
    assert 'data-arm="a" data-measure="rate">—<' in page
    assert 'data-measure="p"' not in page and "0.0% – 0.0%" not in page


def test_an_arm_against_an_empty_control_is_not_compared(tmp_path: Path) -> None:
    # 99% to a, 1% held out: none of the three members lands in the control, so a's 1 of 3 cannot
    # be set against it (the old report showed +33.3% against the empty control, p = 1).
    data = run(tmp_path, ab(99, 1), TIMELINE.replace("MEMBERS", THREE))
    a, control = data["experiments"][0]["arms"]
    assert (a["members"], a["converted"], a["rate"]) == (3, 1, 0.3333)
    assert (control["members"], control["rate"]) == (0, None)
    assert (a["difference"], a["p"], a["missing"]) == (None, None, "baseline")
    page = run(tmp_path, ab(99, 1), TIMELINE.replace("MEMBERS", THREE), "html")
    assert 'data-arm="a" data-measure="missing">对照组没有人，无法比较<' in page
    assert 'data-arm="a" data-measure="rate">33.3%<' in page
