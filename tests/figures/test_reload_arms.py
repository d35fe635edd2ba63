"""A split that a reload brings in counts its arms and their conversions in the dry run's
figures, as the live figures count them, though the run's first plan had no split."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from sopdsl.build import compile_files
from sopdsl.dryrun.fixtures import load_fixture
from sopdsl.dryrun.simulate import simulate
from sopdsl.figures import Collector

PLAYBOOKS = Path(__file__).parents[2] / "playbooks"
G5 = PLAYBOOKS / "G5_ab_poster.sop"
# G5's playbook before its poster test: the goal and the operator's reminder, no split yet.
BEFORE = """    at 2027-01-17 21:00 {
        assign "年货节海报 A/B 测试已满一周" to operator within 2 days
    }
}
"""


def figures(sop: Path, fixture_path: Path) -> dict[str, Any]:
    plan = compile_files([sop]).plan
    assert plan is not None
    fixture, _ = load_fixture(fixture_path, fixture_path.name)
    versions = {("after.sop",): compile_files([fixture_path.parent / "after.sop"]).plan}
    collector = Collector(plan.declarations.timezone)
    simulate(plan, fixture, versions={k: v for k, v in versions.items() if v is not None}, figures=collector)
    return collector.figures().to_json()


def test_a_split_loaded_by_a_reload_counts_its_arms(tmp_path: Path) -> None:
    shutil.copy(PLAYBOOKS / "common.sop", tmp_path / "common.sop")
    text = G5.read_text(encoding="utf-8")
    shutil.copy(G5, tmp_path / "after.sop")
    split_at = text.index("    at 2027-01-10 20:00 for each member: split")
    (tmp_path / "before.sop").write_text(text[:split_at] + BEFORE, encoding="utf-8")
    data = yaml.safe_load(G5.with_suffix(".yaml").read_text(encoding="utf-8"))
    data.pop("expect")
    direct = tmp_path / "direct.yaml"
    direct.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    # The poster test loaded on the first morning, before anything happened.
    data["events"].insert(0, {"at": "2027-01-08 10:00", "reload": "after.sop"})
    reloaded = tmp_path / "reloaded.yaml"
    reloaded.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")

    expected = figures(tmp_path / "after.sop", direct)["experiments"]
    assert expected and {arm["arm"] for arm in expected[0]["arms"]} == {"red", "yellow", "control"}
    assert sum(arm["converted"] for arm in expected[0]["arms"]) > 0
    assert figures(tmp_path / "before.sop", reloaded)["experiments"] == expected
