"""Goals, attribution, experiments and pilots in `sopdsl report --format json`, against values
computed by hand from the fixtures (G5's arms, G6's pilot groups, small cases here)."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sopdsl.cli import main
from sopdsl.figures.experiments import experiments, p_value
from sopdsl.figures.model import Figures
from sopdsl.figures.stats import compare, fisher_exact, wilson, z_test

HERE = Path(__file__).parent
PLAYBOOKS = HERE.parent.parent / "playbooks"
GOLDENS = HERE / "goldens"


def report(sop: Path, timeline: Path) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["report", str(sop), "--timeline", str(timeline), "--format", "json"])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def g5() -> dict[str, Any]:
    return report(PLAYBOOKS / "G5_ab_poster.sop", PLAYBOOKS / "G5_ab_poster.yaml")


def test_g5_arms_are_the_documented_stable_assignment() -> None:
    # The split's rule, written out: sha256 of seed, playbook, the split's name and the member id,
    # as a point in [0, 100), and the arms' shares laid end to end (red 40, yellow 40, control 20).
    arms: dict[str, list[str]] = {"red": [], "yellow": [], "control": []}
    for n in range(1, 21):
        member = f"f{n:02d}"
        digest = hashlib.sha256(f"0:poster_ab:split0:red/yellow/control:{member}".encode()).digest()
        point = int.from_bytes(digest[:8], "big") / 2**64 * 100
        arms["red" if point < 40 else "yellow" if point < 80 else "control"].append(member)
    assert arms == {
        "red": ["f04", "f05", "f06", "f08", "f10", "f12", "f14", "f18", "f19"],
        "yellow": ["f01", "f02", "f03", "f07", "f09", "f11", "f13", "f15"],
        "control": ["f16", "f17", "f20"],
    }
    (experiment,) = g5()["experiments"]
    assert [(a["arm"], a["members"], a["reached"]) for a in experiment["arms"]] == [
        ("red", 9, 9),
        ("yellow", 8, 8),
        ("control", 3, 0),  # the holdout gets nothing
    ]


def test_g5_reports_each_arms_conversion_as_computed_by_hand() -> None:
    # Orders within 7 days after the split (2027-01-10 20:00): red f14 (01-14, and again 01-16),
    # f06 (01-16 19:00); yellow f01 (01-12), f02 (01-15); control f17 (01-13). Not f04 (01-09,
    # before), nor f03 (01-18, the eighth day), nor n01 (not a fan).
    (experiment,) = g5()["experiments"]
    assert (experiment["playbook"], experiment["goal"], experiment["within"]) == (
        "poster_ab",
        "下单",
        "7 days",
    )
    red, yellow, control = experiment["arms"]
    assert (red["converted"], yellow["converted"], control["converted"]) == (2, 2, 1)
    assert (red["rate"], yellow["rate"], control["rate"]) == (0.2222, 0.25, 0.3333)
    # Wilson, z = 1.96: 2 of 9 → (0.0632, 0.5474); 2 of 8 → (0.0715, 0.5907); 1 of 3 → (0.0615, 0.7923).
    assert (red["ci"], yellow["ci"], control["ci"]) == ([0.0632, 0.5474], [0.0715, 0.5907], [0.0615, 0.7923])
    # Against control: 2/9 - 1/3 = -0.1111, 2/8 - 1/3 = -0.0833; counts this small take Fisher's test:
    # red [[2, 7], [1, 2]]: the tables with 0..3 successes in red have probabilities 1/220, 27/220,
    # 108/220, 84/220, none above the one seen (108/220): p = 1.
    assert (red["difference"], red["test"], red["p"]) == (-0.1111, "fisher", 1.0)
    assert (yellow["difference"], yellow["test"], yellow["p"]) == (-0.0833, "fisher", 1.0)
    assert control["baseline"] and "p" not in control


def test_g5_goal_conversions_count_for_the_playbook_that_reached_the_member() -> None:
    poster = next(pb for pb in g5()["playbooks"] if pb["name"] == "poster_ab")
    # f01 598, f02 899, f06 459, f14 356 + 128: five orders by four members. f17 is in the control
    # arm: the poster never reached them, so their order is no conversion of the playbook.
    assert poster["goals"] == {
        "下单": {"conversions": 5, "converted": 4, "amount": 2440, "arms": {"red": 2, "yellow": 2}}
    }
    assert poster["funnel"][-1] == {"stage": "goal:下单", "label": "下单", "count": 4}


def test_the_experiment_golden() -> None:
    golden = json.loads((GOLDENS / "experiment.json").read_text(encoding="utf-8"))
    golden.pop("_why")
    assert g5()["experiments"] == golden["experiments"]


TWO = """timezone "Asia/Shanghai"
template a "甲" = "甲"
template b "乙" = "乙"
playbook first "先发" {
    in all groups
    goal "下单" = member orders within 3 days
    goal "大单" = member orders when event.amount >= 300 within 3 days
    at 2026-03-02 10:00 for each member: send a to member
}
playbook second "后发" {
    in all groups
    goal "下单" = member orders within 1 day
    at 2026-03-03 10:00 for each member: send b to member
}
"""

TIMELINE = """start: 2026-03-02 09:00
end: 2026-03-07 00:00
groups:
  - {id: g1, name: 一群}
members:
  - {id: m1, name: 甲, groups: [g1]}
  - {id: m2, name: 乙, groups: [g1]}
events:
  - {at: 2026-03-03 12:00, kind: order, member: m1, group: g1, data: {amount: 500}}
  - {at: 2026-03-04 12:00, kind: order, member: m2, group: g1, data: {amount: 100}}
  - {at: 2026-03-06 12:00, kind: order, member: m2, group: g1, data: {amount: 50}}
"""


def goals_of(tmp_path: Path, rule: str | None) -> dict[str, Any]:
    (tmp_path / "two.sop").write_text(TWO, encoding="utf-8")
    (tmp_path / "two.yaml").write_text(TIMELINE, encoding="utf-8")
    if rule is not None:
        (tmp_path / "sopdsl.toml").write_text(
            f'[deploy]\nfiles = ["*.sop"]\n\n[figures]\nattribution = "{rule}"\n', encoding="utf-8"
        )
    data = report(tmp_path / "two.sop", tmp_path / "two.yaml")
    return {pb["name"]: pb["goals"] for pb in data["playbooks"]}


@pytest.mark.parametrize(
    ("rule", "first", "second"),
    [
        # m1's order (03-03 12:00) comes after both sends, within both goals' time: the last touch
        # is `second`'s (03-03 10:00), the first is `first`'s. m2's order on 03-04 12:00 is past
        # `second`'s day, so only `first` can have it; m2's order on 03-06 is past both.
        (None, {"下单": 1, "大单": 0}, {"下单": 1}),
        ("last touch", {"下单": 1, "大单": 0}, {"下单": 1}),
        ("first touch", {"下单": 2, "大单": 1}, {"下单": 0}),
    ],
)
def test_attribution_rule_is_the_project_files_setting(
    tmp_path: Path, rule: str | None, first: dict[str, int], second: dict[str, int]
) -> None:
    goals = goals_of(tmp_path, rule)
    assert {goal: counts["conversions"] for goal, counts in goals["first"].items()} == first
    assert {goal: counts["conversions"] for goal, counts in goals["second"].items()} == second


def test_an_unknown_attribution_rule_is_a_located_diagnostic(tmp_path: Path) -> None:
    (tmp_path / "two.sop").write_text(TWO, encoding="utf-8")
    (tmp_path / "two.yaml").write_text(TIMELINE, encoding="utf-8")
    (tmp_path / "sopdsl.toml").write_text(
        '[deploy]\nfiles = ["*.sop"]\n\n[figures]\nattribution = "linear"\n', encoding="utf-8"
    )
    args = ["report", str(tmp_path / "two.sop"), "--timeline", str(tmp_path / "two.yaml"), "--format", "json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert "sopdsl.toml:5:1: error[SOP008]: unknown attribution rule 'linear'" in result.output


def test_g6_compares_its_pilot_groups_with_the_rest_over_the_same_days() -> None:
    data = report(PLAYBOOKS / "G6_pilot_groups.sop", PLAYBOOKS / "G6_pilot_groups.yaml")
    (pilot,) = data["pilots"]
    assert (pilot["pilot"], pilot["rest"], pilot["days"]) == (
        ["pilot_east_1", "pilot_south_2"],
        ["east_3"],
        ["2026-12-01", "2026-12-31"],  # the pilot's active days
    )
    rows = {f"{row['family']}.{row['figure']}": (row["pilot"], row["rest"]) for row in pilot["figures"]}
    # Per group per day: the pilot groups have 62 group-days (2 × 31), the rest 31.
    assert rows["reach.deliveries"] == (0.7419, 0)  # 23 weekday topics in each pilot group: 46 / 62
    assert rows["activity.messages"] == (0.0484, 0.0323)  # 3 / 62 and 1 / 31
    assert rows["growth.joins"] == (0.0161, 0)  # 1 / 62
    assert rows["conversion.amount"] == (5, 0)  # ¥310 / 62


def test_statistics_equal_textbook_values() -> None:
    # Fisher's tea-tasting table [[3, 1], [1, 3]]: p = 0.4857; [[1, 9], [11, 3]]: p = 0.002759.
    assert round(fisher_exact(3, 4, 1, 4), 4) == 0.4857
    assert round(fisher_exact(1, 10, 11, 14), 6) == 0.002759
    # 30 of 100 against 20 of 100: z = 1.633, p = 0.1025.
    assert round(z_test(30, 100, 20, 100), 4) == 0.1025
    assert tuple(round(x, 4) for x in wilson(8, 10)) == (0.4902, 0.9433)
    assert wilson(0, 0) == (0.0, 0.0)
    assert compare(30, 100, 20, 100).test == "z"
    assert compare(2, 9, 1, 3).test == "fisher"


def _tiny_p_figures() -> Figures:
    """An experiment whose arm converted 300 of 1,000 against the control's 100 of 1,000."""
    arms = [
        {"arm": "a", "members": 1000, "converted": 300, "control": False},
        {"arm": "control", "members": 1000, "converted": 100, "control": True},
    ]
    experiment = {"playbook": "poster", "goal": "下单", "arms": arms}
    return Figures(zone="Asia/Shanghai", days=[], names={}, groups={}, playbooks={}, experiments=[experiment])


def test_a_tiny_p_value_keeps_its_significant_digits_in_the_json() -> None:
    # 300 of 1,000 against 100 of 1,000: p ≈ 5e-29, which four decimals made 0.0 ("impossible").
    (shown,) = experiments(_tiny_p_figures())
    arm = shown["arms"][0]
    assert arm["test"] == "z"
    assert 0 < arm["p"] < 1e-20
    assert arm["p"] == float(f"{arm['p']:.4g}")  # four significant digits, not a long float


def test_a_p_value_past_what_a_float_holds_is_its_smallest_normal_never_zero() -> None:
    assert p_value(0.0) == sys.float_info.min
    assert p_value(1.0) == 1.0
    assert p_value(0.123456) == 0.1235


def test_g5_calendar_says_each_arm_in_words_with_its_share() -> None:
    words = {slot["at"][:10]: slot["words"] for slot in g5()["calendar"]}
    assert words["2027-01-10"] == (
        "分组实验（red 40%：给成员加上标签「ab-poster-red」，发送「年货节海报·红色版」给成员；"
        "yellow 40%：给成员加上标签「ab-poster-yellow」，发送「年货节海报·黄色版」给成员；"
        "对照组 control 20%：不做动作）"
    )
    assert words["2027-01-17"].startswith("给运营派任务「年货节海报 A/B 测试已满一周：")
