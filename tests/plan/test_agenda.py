"""`sopdsl plan`: the group calendar printed from a plan, and its iCalendar file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner
from icalendar import Calendar

import sopdsl
from sopdsl.cli import main
from sopdsl.plan.agenda import plain

CLASS = """
timezone "Asia/Shanghai"
group edu_bj "北京晚课群" { tagged "edu" }
group edu_ny "纽约晚课群" { tagged "edu" timezone "America/New_York" }
group chat "闲聊群" { tagged "normal" }
calendar tuesday_class = every tuesday at 20:00
template preview = "明晚八点上课，海报见下"
template replay = "昨晚课程回放已上传"
playbook class_cadence {
    in groups tagged "edu"
    at tuesday_class - 1 day: send preview to group
    at tuesday_class + 1 day at 10:00: send replay to group
}
"""


def test_plan_prints_each_groups_calendar_in_its_zone(tmp_path: Path) -> None:
    source = tmp_path / "class.sop"
    source.write_text(CLASS, encoding="utf-8")
    ics = tmp_path / "class.ics"
    result = CliRunner().invoke(
        main, ["plan", str(source), "--from", "2026-12-07", "--to", "2026-12-09", "--ics", str(ics)]
    )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("2026")]
    assert "2026-12-07 Mon 20:00+08:00  edu_bj" in "\n".join(lines)
    assert "2026-12-07 Mon 20:00-05:00  edu_ny" in "\n".join(lines)  # 20:00 New York time, not Beijing
    assert "2026-12-09 Wed 10:00+08:00  edu_bj" in "\n".join(lines)
    assert not any("chat" in line for line in lines)
    assert len(lines) == 4
    text = ics.read_text(encoding="utf-8")
    assert text.count("BEGIN:VEVENT") == 4
    # Monday 20:00 in New York, in New York's zone (Tuesday 01:00 UTC), with its VTIMEZONE.
    assert "DTSTART;TZID=America/New_York:20261207T200000" in text
    assert "TZID:America/New_York" in text


def test_plan_rejects_a_backwards_range(tmp_path: Path) -> None:
    source = tmp_path / "class.sop"
    source.write_text(CLASS, encoding="utf-8")
    result = CliRunner().invoke(main, ["plan", str(source), "--from", "2026-12-10", "--to", "2026-12-07"])
    assert result.exit_code == 2
    assert "--from 2026-12-10 is after --to 2026-12-07: swap them" in result.output


def test_plan_shows_the_to_day_itself_as_the_report_does(tmp_path: Path) -> None:
    # `--to` is the last day shown, as `sopdsl report --to` and `GET /report?to=`: before, it was
    # the day after the last, so `--from D --to D` was refused and `--to` Wednesday left Wednesday out.
    source = tmp_path / "class.sop"
    source.write_text(CLASS, encoding="utf-8")
    result = CliRunner().invoke(main, ["plan", str(source), "--from", "2026-12-09", "--to", "2026-12-09"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("2026")]
    assert [line[:34] for line in lines] == [
        "2026-12-09 Wed 10:00+08:00  edu_bj",
        "2026-12-09 Wed 10:00-05:00  edu_ny",
    ]
    week = CliRunner().invoke(main, ["plan", str(source), "--from", "2026-12-07", "--to", "2026-12-09"])
    assert [line[:10] for line in week.output.splitlines() if line.startswith("2026")] == [
        "2026-12-07",
        "2026-12-07",
        "2026-12-09",
        "2026-12-09",
    ]


@pytest.mark.parametrize(
    ("day", "said"),
    [
        ("2026-02-30", "'2026-02-30' is not a day: no such day"),
        ("2026/03/01", "'2026/03/01' is not a day: write it YYYY-MM-DD"),
        # Python's `date.fromisoformat` reads these too; an operator typing them meant something
        # else, or slipped (before, `--from 20260302` was taken as 2 March without a word).
        ("20260302", "'20260302' is not a day: write it YYYY-MM-DD"),
        ("2026-W10-1", "'2026-W10-1' is not a day: write it YYYY-MM-DD"),
    ],
)
def test_plan_says_in_words_what_is_wrong_with_a_day(tmp_path: Path, day: str, said: str) -> None:
    source = tmp_path / "class.sop"
    source.write_text(CLASS, encoding="utf-8")
    for args in (["--from", day, "--to", "2026-03-10"], ["--from", "2026-03-01", "--to", day]):
        result = CliRunner().invoke(main, ["plan", str(source), *args])
        assert result.exit_code == 2 and said in result.output and "%Y" not in result.output
        assert "Traceback" not in result.output


def test_plan_refuses_a_range_over_a_year_at_once_and_takes_a_year(tmp_path: Path) -> None:
    # `--to 2062-...` for 2026: before, minutes of silence, then a line for every class until then.
    source = tmp_path / "class.sop"
    source.write_text(CLASS, encoding="utf-8")
    result = CliRunner().invoke(main, ["plan", str(source), "--from", "2026-12-07", "--to", "2062-12-07"])
    assert result.exit_code == 2
    assert "13150 days: the calendar covers at most 366 at a time" in result.output
    year = CliRunner().invoke(main, ["plan", str(source), "--from", "2026-01-01", "--to", "2027-01-01"])
    assert year.exit_code == 0, year.output
    assert len([line for line in year.output.splitlines() if " edu_bj " in line]) == 2 * 52


MASS = """
timezone "Asia/Shanghai"
policy {
    at most 2 sends per group per day
    at most 4 sends per member per month via mass
    at most 1 sends per group per week via mass
}
calendar tuesday = every tuesday at 10:00
template promo = "本周特惠"
template tips = "骑行小贴士"
playbook weekly {
    in groups tagged "sales"
    at tuesday: send promo to group via mass
    at tuesday for each member: send tips to member
}
"""

FIXTURE = """
start: 2027-03-01 00:00
end: 2027-03-02 00:00
groups:
  - {id: shop_hz, tags: [sales]}
  - {id: shop_ny, tags: [sales], timezone: America/New_York}
  - {id: chat, tags: [normal]}
"""


def plan_of(tmp_path: Path, *args: str) -> list[str]:
    result = CliRunner().invoke(main, ["plan", str(tmp_path / "weekly.sop"), *args])
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def test_plan_takes_groups_from_the_fixture_when_the_playbook_names_only_tags(tmp_path: Path) -> None:
    (tmp_path / "weekly.sop").write_text(MASS, encoding="utf-8")
    result = CliRunner().invoke(
        main, ["plan", str(tmp_path / "weekly.sop"), "--from", "2027-03-01", "--to", "2027-03-07"]
    )
    assert "no scheduled entries" in result.output  # no group declared, no fixture: nothing to show
    (tmp_path / "weekly.yaml").write_text(FIXTURE, encoding="utf-8")
    lines = plan_of(tmp_path, "--from", "2027-03-01", "--to", "2027-03-07")
    rows = [line for line in lines if line.startswith("2027")]
    assert [row.split()[3] for row in rows] == ["shop_hz", "shop_hz", "shop_ny", "shop_ny"]
    assert rows[0].startswith("2027-03-02 Tue 10:00+08:00") and rows[2].startswith(
        "2027-03-02 Tue 10:00-05:00"
    )
    assert lines[-1].startswith("groups not declared in the playbooks are taken from") and lines[-1].endswith(
        "weekly.yaml"
    )


def test_plan_shows_each_sends_channel_and_the_caps_that_count_it(tmp_path: Path) -> None:
    (tmp_path / "weekly.sop").write_text(MASS, encoding="utf-8")
    (tmp_path / "weekly.yaml").write_text(FIXTURE, encoding="utf-8")
    lines = plan_of(tmp_path, "--from", "2027-03-01", "--to", "2027-03-02")
    [mass, tips] = [line for line in lines if "shop_hz" in line]
    # The group's mass send counts against both group caps; the members' tips against the group
    # cap per day and the members' cap, which counts only mass sends, not at all.
    assert mass.endswith("send promo to group via mass  [cap 1, 3]")
    assert tips.endswith("send tips to member  [cap 1]")
    assert "  [cap 1] at most 2 sends per group per day  (weekly.sop:4; counts 4 of these)" in lines
    assert "  [cap 3] at most 1 sends per group per week via mass  (weekly.sop:6; counts 2 of these)" in lines
    assert not any("[cap 2]" in line for line in lines)


def ics_of(tmp_path: Path, playbook: str) -> Calendar:
    (tmp_path / "weekly.sop").write_text(playbook, encoding="utf-8")
    (tmp_path / "weekly.yaml").write_text(FIXTURE, encoding="utf-8")
    plan_of(tmp_path, "--from", "2027-03-01", "--to", "2027-03-14", "--ics", str(tmp_path / "w.ics"))
    raw = (tmp_path / "w.ics").read_bytes()
    # RFC 5545 3.1: lines end in CRLF and are folded at 75 octets.
    assert all(len(line) <= 75 for line in raw.split(b"\r\n"))
    assert any(line.startswith(b" ") for line in raw.split(b"\r\n"))  # the long descriptions folded
    return Calendar.from_ical(raw)


def test_ics_uids_survive_an_edit_of_another_line(tmp_path: Path) -> None:
    before = ics_of(tmp_path, MASS)
    edited = MASS.replace('"本周特惠"', '"本周特惠，限时三天"').replace(
        'timezone "Asia/Shanghai"', '# 周二群发\ntimezone "Asia/Shanghai"'
    )
    after = ics_of(tmp_path, edited)
    uids = [str(e["UID"]) for e in before.walk("VEVENT")]
    assert len(uids) == len(set(uids)) == 8  # two weeks, two groups, two entries
    assert [str(e["UID"]) for e in after.walk("VEVENT")] == uids
    moved = ics_of(tmp_path, MASS.replace("at 10:00", "at 11:00"))
    assert {str(e["UID"]) for e in moved.walk("VEVENT")}.isdisjoint(uids)  # another time, another event


def test_ics_has_a_real_dtstamp_and_the_source_date_epoch_when_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = dt.datetime.now(dt.UTC)
    stamps = {e.decoded("DTSTAMP") for e in ics_of(tmp_path, MASS).walk("VEVENT")}
    [stamp] = stamps
    assert stamp.tzinfo is not None and abs((stamp - now).total_seconds()) < 120
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    [fixed] = {e.decoded("DTSTAMP") for e in ics_of(tmp_path, MASS).walk("VEVENT")}
    assert fixed == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    [event, *_] = ics_of(tmp_path, MASS).walk("VEVENT")
    assert event.decoded("DTSTART").timestamp() == dt.datetime(2027, 3, 2, 2, tzinfo=dt.UTC).timestamp()


KINDS = """
timezone "Asia/Shanghai"
group g "群" { tagged "t" }
template hi "问候" = "你好"
template bye = "再见"
playbook every_kind {
    in groups tagged "t"
    at 2026-12-08 20:00 for each member: split {
        a 30%: send hi to member via mass
        b 50%: split {
            c 50%: send bye to member
            d 50%: tag member "vip"
        }
        control 20%
    }
    at 2026-12-09 20:00: send hi to group
}
"""


def test_the_plain_words_of_an_entry_follow_nested_splits_and_keep_titles_else_names() -> None:
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(KINDS)))
    templates = {t.name: t.title or t.name for t in plan.declarations.templates.values()}
    first, second = (plain(e.code, templates) for e in plan.playbooks[0].schedule)
    assert first == (
        "分组实验（a 30%：发送「问候」给成员（经 mass）；"
        "b 50%：分组实验（c 50%：发送「bye」给成员；d 50%：给成员加上标签「vip」）；对照组 control 20%：不做动作）"
    )
    assert second == "发送「问候」给群"


ONE_LINE = """
timezone "Asia/Shanghai"
group g "群" { tagged "t" }
template hi "问候" = "你好"
playbook nested {
    in groups tagged "t"
    at 2026-12-08 20:00 for each member: split { a 50% { split { c 50%: send hi to member d 50%: tag member "d" } send hi to group }
      control 50% }
    at 2026-12-09 20:00 for each member: split {
      all 100% { split { x 50%: tag member "x" y 50%: tag member "y" } send hi to member }
    }
}
"""


def test_the_plain_words_place_steps_after_a_nested_split_in_their_arm() -> None:
    # A plan's `loc` is the line only: a split nested on its parent's line has exits that look
    # alike, so each arm's end is found from the layout, not from the line.
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(ONE_LINE)))
    first, second = (plain(e.code, {}) for e in plan.playbooks[0].schedule)
    assert first == (
        "分组实验（a 50%：分组实验（c 50%：发送「hi」给成员；d 50%：给成员加上标签「d」），发送「hi」给群；"
        "对照组 control 50%：不做动作）"
    )
    assert second == (
        "分组实验（all 100%：分组实验（x 50%：给成员加上标签「x」；y 50%：给成员加上标签「y」），发送「hi」给成员）"
    )
