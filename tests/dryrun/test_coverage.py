"""`sopdsl test --coverage`: which playbooks, triggers, steps and branches the fixtures exercise,
per file, as text, JSON and Cobertura XML, with `--min-coverage` failing below its bar."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from sopdsl.cli import main
from sopdsl.dryrun.coverage import Coverage
from sopdsl.dryrun.testing import cover_unrun, run_tests

ROOT = Path(__file__).resolve().parent.parent.parent

SHOP = """\
timezone "Asia/Shanghai"
group g1 "群" { tagged "normal" }
coupon gift "礼物券" worth 30
template hello "你好" = "你好"
template bye "再见" = "再见"
template note "通知" = "通知"

playbook welcome "欢迎" {
    on member joins
    on member is tagged "vip"
    repeat always
    do {
        if member tagged "vip" {
            send hello to member
        } else {
            send bye to member
        }
        wait 1 day for member posts then {
            grant gift to member
        } else {
            send note to member
        }
        split {
            a 50% {
                tag member "a"
            }
            b 50% {
                tag member "b"
            }
        }
    }
}

playbook weekly "周报" {
    at 2026-03-09 10:00: send note to group
}
"""

FIXTURE = """\
start: 2026-03-02 09:00
end: 2026-03-05 00:00
groups:
  - {id: g1, tags: [normal]}
events:
  - {at: 2026-03-02 10:00, kind: join, member: m1, group: g1}
expect:
  - {action: send, template: bye, member: m1}
"""

LONELY = """\
timezone "Asia/Shanghai"
template hello "你好" = "你好"
playbook lonely "没人测" {
    on member joins
    do: send hello to member
}
"""


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "shop.sop").write_text(SHOP, encoding="utf-8")
    (tmp_path / "shop.yaml").write_text(FIXTURE, encoding="utf-8")
    (tmp_path / "other.sop").write_text(LONELY, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def missed(text: str, path: str) -> list[str]:
    """The `not exercised` lines of one file in the text report."""
    after = text.split(f"\n  {path}  ", 1)[1].splitlines()[1:]
    found: list[str] = []
    for line in after:
        if not line.startswith("    "):
            break
        found.append(line.strip())
    return found


def test_the_report_names_each_item_no_fixture_exercised(shop: Path) -> None:
    result = CliRunner().invoke(main, ["test", ".", "--coverage"])
    assert result.exit_code == 0, result.output
    assert "  shop.sop  52.4% (11/21)" in result.output
    assert missed(result.output, "shop.sop") == [
        'line 10: trigger not exercised: trigger: on member is tagged "vip"',
        'line 13: branch not exercised: `if` holds of: if member tagged "vip" {',
        "line 14: step not exercised: send hello to member",
        "line 18: branch not exercised: `then` (it happened in time) of: wait 1 day for member posts then {",
        "line 19: step not exercised: grant gift to member",
        "line 23: branch not exercised: arm a of: split {",
        'line 25: step not exercised: tag member "a"',
        "line 34: playbook not exercised: playbook weekly",
        "line 35: trigger not exercised: calendar entry: at 2026-03-09 10:00: send note to group",
        "line 35: step not exercised: at 2026-03-09 10:00: send note to group",
    ]


def test_a_playbook_file_with_no_fixture_is_reported(shop: Path) -> None:
    result = CliRunner().invoke(main, ["test", ".", "--coverage"])
    assert "  other.sop  0.0% (0/3)\n    no fixture runs this file\n" in result.output
    assert "line 3: playbook not exercised: playbook lonely" in result.output


def test_more_events_cover_more(shop: Path) -> None:
    fixture = FIXTURE.replace(
        "expect:",
        "  - {at: 2026-03-02 11:00, kind: message, member: m1, group: g1}\n"
        "  - {at: 2026-03-03 10:00, kind: tag, member: m1, name: vip}\n"
        "expect:",
    )
    (shop / "shop.yaml").write_text(fixture, encoding="utf-8")
    result = CliRunner().invoke(main, ["test", "shop.yaml", "--coverage"])
    # The second run (tagged vip) takes the `if`, and times out where the first one's post came.
    assert missed(result.output, "shop.sop") == [
        "line 23: branch not exercised: arm a of: split {",
        'line 25: step not exercised: tag member "a"',
        "line 34: playbook not exercised: playbook weekly",
        "line 35: trigger not exercised: calendar entry: at 2026-03-09 10:00: send note to group",
        "line 35: step not exercised: at 2026-03-09 10:00: send note to group",
    ]
    assert "other.sop" not in result.output  # only folders are searched for files without fixtures


def test_min_coverage_fails_below_the_bar_and_passes_at_it(shop: Path) -> None:
    below = CliRunner().invoke(main, ["test", ".", "--min-coverage", "50"])
    assert below.exit_code == 1
    assert "coverage 45.8% is below --min-coverage 50%" in below.output
    assert CliRunner().invoke(main, ["test", ".", "--min-coverage", "45"]).exit_code == 0


def test_the_json_file_lists_every_item_with_its_hits(shop: Path) -> None:
    result = CliRunner().invoke(main, ["test", ".", "--coverage-file", "cov.json"])
    assert result.exit_code == 0
    data = json.loads((shop / "cov.json").read_text(encoding="utf-8"))
    assert (data["covered"], data["total"]) == (11, 24)
    by_path = {f["path"]: f for f in data["files"]}
    assert by_path["other.sop"]["fixtures"] == []
    assert by_path["shop.sop"]["fixtures"] == ["shop.yaml"]
    welcome = {(i["line"], i["kind"]): i for i in by_path["shop.sop"]["items"]}
    assert welcome[(9, "trigger")]["hits"] == 1
    assert welcome[(16, "step")]["hits"] == 1  # send bye
    assert welcome[(14, "step")]["hits"] == 0


def test_the_cobertura_file_is_valid_and_counts_branches(shop: Path) -> None:
    CliRunner().invoke(main, ["test", ".", "--coverage-file", "cov.xml"])
    root = ET.parse(shop / "cov.xml").getroot()
    assert root.tag == "coverage"
    assert (root.get("branches-covered"), root.get("branches-valid")) == ("3", "6")
    [shop_class] = [c for c in root.iter("class") if c.get("filename") == "shop.sop"]
    lines = {int(line.get("number", 0)): line for line in shop_class.iter("line")}
    assert lines[18].get("condition-coverage") == "50% (1/2)"
    assert lines[14].get("hits") == "0"


def test_every_corpus_playbook_is_covered() -> None:
    coverage = Coverage()
    playbooks = ROOT / "playbooks"
    report = run_tests(sorted(playbooks.glob("*.yaml")), coverage=coverage)
    assert report.exit_code == 0
    assert cover_unrun(coverage, sorted(playbooks.glob("*.sop"))) == []
    uncovered = [
        f"{f.path}:{item.line} {item.what}"
        for f in coverage.report().files
        for item in f.missed
        if item.kind == "playbook"
    ]
    assert not uncovered
    assert [f.path for f in coverage.report().files if not f.fixtures] == []
