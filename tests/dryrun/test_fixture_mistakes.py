"""A fixture's mistakes as people first make them (entries as sentences, a word where a list
goes, a number YAML read from a time, a file saved as GBK, another file named as the playbook,
entries that made a test silently meaningless): each said at its line, with what to write."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sopdsl.cli import main
from sopdsl.dryrun.fixtures import load_fixture, parse_fixture
from sopdsl.errors import FixtureError
from sopdsl.source import Source


def hinted(text: str) -> list[str]:
    """The diagnostics of a YAML fixture's text as `line:column: message | hint`."""
    with pytest.raises(FixtureError) as caught:
        parse_fixture(Source("f.yaml", text))
    return [f"{d.span.line}:{d.span.column}: {d.message} | {d.hint}" for d in caught.value.diagnostics]


def test_entries_written_as_sentences_say_what_an_entry_looks_like() -> None:
    # How a first fixture is often written: the list entries as words, not mappings.
    found = hinted(
        "start: 2026-01-05 09:00\n"
        "groups:\n  - g1\n"
        "members:\n  - m1\n"
        "events:\n  - m1 joins g1\n"
        "expect:\n  - send welcome to m1\n"
    )
    assert found == [
        "3:5: groups.0: not a mapping | a group is a mapping, like {id: g1, tags: [normal]}",
        "5:5: members.0: not a mapping | a member is a mapping, like {id: m1, groups: [g1]}",
        "7:5: events.0: not a mapping | an event is a mapping, like "
        "{at: 2026-03-02 10:00, kind: join, member: m1, group: g1}",
        "9:5: expect.0: not a mapping | an expectation is a mapping, like "
        "{action: send, template: welcome, member: m1}",
    ]


@pytest.mark.parametrize(("field", "kind"), [("joins", "join"), ("Leave", "leave"), ("ordered", "order")])
def test_an_event_kind_written_as_a_field_says_to_write_kind(field: str, kind: str) -> None:
    found = hinted(
        f"start: 2026-01-05 09:00\nevents:\n  - {{at: 2026-01-05 10:00, member: m1, {field}: g1}}\n"
    )
    assert found == [
        f"3:40: events.0.{field}: unknown field '{field}' | an event's kind is a field of its own: kind: {kind}"
    ]


def test_a_misspelt_event_field_that_names_no_kind_keeps_did_you_mean() -> None:
    found = hinted(
        "start: 2026-01-05 09:00\nevents:\n  - {at: 2026-01-05 10:00, kind: join, membr: m1, tags: x}\n"
    )
    assert [f.split(" | ")[1] for f in found] == ["did you mean 'member'?", "None"]


def test_a_value_of_the_wrong_shape_says_what_the_field_takes_with_an_example() -> None:
    # pydantic's own words ("Input should be a valid dictionary") mean little to ops.
    found = hinted(
        "start: 2026-01-05 09:00\n"
        "groups:\n  - {id: g1, tags: normal}\n"
        "members:\n  - {id: m1, groups: g1, attributes: [a, b]}\n"
        "events:\n  - {at: 2026-01-05 10:00, kind: join, member: m1, group: g1, data: 阿峰}\n"
        "expect:\n"
        "  - {action: send, member: m1, count: once}\n"
        "  - {action: send, member: m1, within: 1 day}\n"
        "  - {action: send, member: m1, within: [2026-01-05 10:00]}\n"
        "  - {action: send, coupon: [new50]}\n"
        "  - {action: send, member: 30, at: 10:00}\n"
    )
    assert found == [
        "3:20: groups.0.tags: 'tags' takes a list | write it like tags: [normal, vip]",
        "5:22: members.0.groups: 'groups' takes a list | write it like groups: [g1, g2]",
        "5:38: members.0.attributes: 'attributes' takes a mapping | write it like attributes: {city: 北京, level: 3}",
        "7:69: events.0.data: 'data' takes a mapping | write it like data: {name: 阿峰}",
        "9:39: expect.0.count: 'count' takes a whole number | write it like count: 1",
        "10:40: expect.1.within: 'within' takes two times, from and to | "
        "write it like within: [2026-03-02 22:00, 2026-03-03 07:59]",
        "11:32: expect.2.within.1: 'within' takes two times, from and to | "
        "write it like within: [2026-03-02 22:00, 2026-03-03 07:59]",
        "12:28: expect.3.coupon: 'coupon' takes one word or text, not a list or a mapping | None",
        # YAML reads 10:00 as 600 (base 60) and 30 as a number.
        "13:28: expect.4.member: 'member' takes text, and YAML read this value as 30 | "
        'write it in quotes, like member: "…"',
        "13:36: expect.4.at: 'at' takes text, and YAML read this value as 600 | "
        "write a date and a time, like at: 2026-03-02 10:00",
    ]


def test_a_fixture_saved_as_gbk_is_located_and_says_to_save_it_as_utf8(tmp_path: Path) -> None:
    # Before: "'utf-8' codec can't decode byte 0xc6 in position 73", at 1:1 with no hint.
    path = tmp_path / "gbk.yaml"
    path.write_bytes("start: 2026-03-02 09:00\ngroups:\n  - {id: g1, name: 骑友群}\n".encode("gbk"))
    with pytest.raises(FixtureError) as caught:
        load_fixture(path, "gbk.yaml")
    (found,) = caught.value.diagnostics
    assert (found.code, found.span.line, found.span.column) == ("SOP601", 3, 20)  # at 骑
    assert "not saved as UTF-8" in found.message and found.hint is not None and "GBK" in found.hint


def test_a_fixture_names_only_sop_files_as_playbooks_so_it_cannot_have_another_file_quoted(
    tmp_path: Path,
) -> None:
    # `playbook: ../secret.env` had the dry run parse the file and quote its first line in CI.
    (tmp_path / "secret.env").write_text("SECRET_TOKEN=abc123\n", encoding="utf-8")
    (tmp_path / "fx").mkdir()
    for fixture in (
        "playbook: ../secret.env\n",
        "events:\n  - {at: 2026-03-02 10:00, reload: ../secret.env}\n",
    ):
        path = tmp_path / "fx" / "f.yaml"
        path.write_text(f"start: 2026-03-02 09:00\n{fixture}", encoding="utf-8")
        result = CliRunner().invoke(main, ["test", str(path)])
        assert result.exit_code == 2 and "is not a .sop file" in result.output
        assert "SECRET_TOKEN" not in result.output


def test_fixture_mistakes_that_made_a_test_silently_meaningless_are_errors() -> None:
    # Each used to run: the later of two entries with one id won, an event after the end ran
    # (and its actions came after the end), a window ending before it began matched nothing.
    found = hinted(
        "start: 2026-03-02 09:00\nend: 2026-03-06 00:00\n"
        "groups:\n  - {id: g1}\n  - {id: g1, tags: [vip]}\n"
        "members:\n  - {id: m1}\n  - {id: m1, groups: [g1]}\n"
        "events:\n  - {at: 2026-03-08 10:00, kind: join, member: m2, group: g1}\n"
        "expect:\n"
        "  - {action: send, within: [2026-03-03 00:00, 2026-03-02 00:00]}\n"
        "  - {action: send, count: -1}\n"
        "  - {action: send, count: 1, never: true}\n"
    )
    assert [f.split(" | ")[0] for f in found] == [
        "5:10: groups.1.id: 'g1' is given already, at line 4",
        "8:10: members.1.id: 'm1' is given already, at line 7",
        "10:10: events.0.at: 2026-03-08 10:00 is after the end (2026-03-06 00:00); an event must happen during the run",
        "12:28: expect.0.within: it ends (2026-03-02 00:00) before it begins: give [from, to]",
        "13:27: expect.1.count: -1 is below 0",
        "14:30: expect.2: `count` and `never` together; `never: true` is `count: 0`, give one",
    ]


def test_a_day_alone_as_an_actions_time_is_refused_with_the_days_window() -> None:
    # `at: 2026-03-09` is 00:00 exactly: the send at 10:00 that day failed it with "it did not
    # happen", and `within: [2026-03-09, 2026-03-09], never: true` held whatever the day brought.
    found = hinted(
        "start: 2026-03-02 09:00\nend: 2026-03-12 00:00\nexpect:\n"
        "  - {action: send, template: d7, at: 2026-03-09}\n"
        "  - {action: send, template: d7, within: [2026-03-09, 2026-03-09], never: true}\n"
    )
    assert found == [
        "4:38: expect.0.at: 2026-03-09 is a day, but `at` is one instant (here 00:00) | give the time, "
        "like at: 2026-03-09 10:00, or the whole day, like within: [2026-03-09 00:00, 2026-03-10 00:00]",
        "5:42: expect.1.within: [2026-03-09, 2026-03-09] is the one instant 00:00, not the day | a window "
        "ends where it says: the whole day is within: [2026-03-09, 2026-03-10]",
    ]


def test_a_day_alone_stays_fine_where_it_means_its_start() -> None:
    # A state check looks at one instant, and a window of two days runs from the first's 00:00.
    parse_fixture(
        Source(
            "f.yaml",
            "start: 2026-03-02 09:00\nend: 2026-03-12 00:00\nexpect:\n"
            "  - {member: m1, at: 2026-03-10, tagged: [x]}\n"
            "  - {action: send, template: d7, within: [2026-03-09, 2026-03-10]}\n",
        )
    )


def test_an_expectation_of_neither_an_action_nor_a_plan_change_must_be_a_whole_state_check() -> None:
    # Each was read as a check of member state: the first failed with "no time given" and no
    # line, the second held though it checked nothing, the third (`action:` left out) failed
    # as a state check instead of saying what was missing.
    found = hinted(
        "start: 2026-03-02 09:00\nend: 2026-03-12 00:00\nexpect:\n"
        "  - {member: afeng, tagged: [drip_done]}\n"
        "  - {member: afeng, at: 2026-03-11 00:00}\n"
        "  - {template: d0, member: afeng, never: true}\n"
    )
    assert found == [
        "4:5: expect.0: a check of a member's state needs `at`, the moment to look | "
        "like {member: afeng, at: 2026-03-10 00:00, ...}",
        "5:5: expect.1: nothing to check: no `action`, `plan_change` or member state | give `action` "
        "for what must happen, or what the member must be at `at`: tagged, not_tagged, attributes, "
        "counters, in_group, not_in_group",
        "6:5: expect.2: no `action`, but `template` is matched on actions | say which action it "
        "expects, like {action: send, template: ...}",
    ]
