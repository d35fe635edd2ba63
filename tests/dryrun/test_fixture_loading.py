"""Fixture and timeline loaders answer bad input with located diagnostics, never a traceback.

First one test per case of the robustness audit (issue 9: deep YAML, complex keys, aliases, bad
and far-away times, unbounded spans, one error hiding another), then the same no-traceback
property as the front end's (`tests/test_no_crash.py`): Hypothesis-generated YAML fixtures and
JSONL timelines, and random edits of the corpus fixtures, loaded and dry-run.
"""

from __future__ import annotations

import os
import time
import tracemalloc
from pathlib import Path

import pytest
from click.testing import CliRunner

from sopdsl.cli import main
from sopdsl.diagnostics import Diagnostic
from sopdsl.dryrun.fixtures import MAX_ALIAS_VALUES, MAX_DEPTH, load_fixture, parse_fixture
from sopdsl.dryrun.timeline import open_timeline
from sopdsl.errors import FixtureError
from sopdsl.source import Source

PLAYBOOKS = Path(__file__).parent.parent.parent / "playbooks"
PLAYBOOK = """
timezone "Asia/Shanghai"
template welcome = "欢迎 {{ member.name }}"
policy { quiet hours 22:00 - 08:00 }
playbook welcome {
    on member joins
    do { send welcome to member }
}
"""
HEADER = '{"sopdsl": "timeline", "timezone": "Asia/Shanghai", "start": "2026-03-01 09:00", "groups": [{"id": "g1"}]}'


def problems(text: str, name: str = "f.yaml") -> list[str]:
    """The diagnostics of a YAML fixture's text, as `line:column: [code] message` (none if it loads)."""
    try:
        parse_fixture(Source(name, text))
    except FixtureError as exc:
        return [shown(d) for d in exc.diagnostics]
    return []


def shown(d: Diagnostic) -> str:
    return f"{d.span.line}:{d.span.column}: [{d.code}] {d.message}"


def timeline_problems(folder: Path, *lines: str) -> list[str]:
    """The diagnostics of a JSONL timeline: the header's, or (if it reads) the records'."""
    path = folder / "t.jsonl"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    try:
        timeline = open_timeline(path, "t.jsonl", "Asia/Shanghai")
        try:
            list(timeline.records())
        finally:
            timeline.close()
    except FixtureError as exc:
        return [shown(d) for d in exc.diagnostics]
    return []


def sopdsl(folder: Path, *args: str) -> tuple[int, str]:
    """Run the CLI in `folder`; a traceback (any exception but an exit) fails the test."""
    old = Path.cwd()
    os.chdir(folder)
    try:
        result = CliRunner().invoke(main, list(args))
    finally:
        os.chdir(old)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


# ---- the audit's cases, one by one -----------------------------------------------------------------


def test_yaml_nested_a_thousand_deep_is_refused_where_it_gets_too_deep() -> None:
    text = "start: 2026-03-01 09:00\nmembers: " + "[" * 1000 + "]" * 1000 + "\n"
    [problem] = problems(text)
    assert problem.startswith(f"2:{len('members: ') + MAX_DEPTH}: [SOP601] fixture refused: ")
    assert f"nested more than {MAX_DEPTH} deep" in problem


def test_block_yaml_nested_deep_is_refused_too() -> None:
    text = "start: 2026-03-01 09:00\n" + "".join(" " * i + f"k{i}:\n" for i in range(1000))
    [problem] = problems(text)
    assert "[SOP601] fixture refused" in problem and f"more than {MAX_DEPTH} deep" in problem


def test_nesting_within_the_limit_is_read() -> None:
    text = "start: 2026-03-01 09:00\nmembers:\n  - {id: m1, attributes: {a: " + "[" * 90 + "]" * 90 + "}}\n"
    assert problems(text) == []


def test_a_complex_key_is_a_located_diagnostic() -> None:
    assert problems("start: 2026-03-01 09:00\n? [a, b]\n: 1\n") == [
        "2:3: [SOP602] a key is a word, not a list (`? [a, b]`)"
    ]
    assert problems("start: 2026-03-01 09:00\nmembers:\n  - {id: m1, ? {x: 1} : 2}\n") == [
        "3:16: [SOP602] members.0: a key is a word, not a mapping (`? [a, b]`)"
    ]


BILLION_LAUGHS = """start: 2026-03-01 09:00
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_a_billion_laughs_fixture_is_refused_at_once_in_little_memory() -> None:
    started = time.perf_counter()
    tracemalloc.start()
    try:
        [problem] = problems(BILLION_LAUGHS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert problem.startswith("6:8: [SOP601] fixture refused: aliases repeat more than 10,000 values")
    assert peak < 20 * 1024 * 1024
    assert time.perf_counter() - started < 5


def test_aliases_within_the_limit_are_read() -> None:
    text = (
        "start: 2026-03-01 09:00\ngroups: [{id: g1}]\nevents:\n"
        "  - {at: 2026-03-01 10:00, kind: custom, name: x, member: m1, data: &d {a: 1, b: [1, 2, 3]}}\n"
        + "".join(
            f"  - {{at: 2026-03-01 10:{i:02d}, kind: custom, name: x, member: m1, data: *d}}\n"
            for i in range(1, 50)
        )
    )
    fixture = parse_fixture(Source("f.yaml", text))
    assert fixture.events[-1].data == {"a": 1, "b": [1, 2, 3]}
    assert MAX_ALIAS_VALUES >= 49 * 6


def test_an_alias_inside_its_own_anchor_is_refused() -> None:
    [problem] = problems("start: 2026-03-01 09:00\nmembers: &a [*a]\n")
    assert problem == "2:14: [SOP601] fixture refused: the alias *a is inside its own anchor &a"


def test_a_value_its_tag_cannot_read_is_located_and_the_rest_still_checked() -> None:
    found = problems(
        "start: 2026-03-01 09:00\nseed: !!int abc\nmembers:\n  - {id: m1, counters: {x: !!float y}}\n"
        "end: 2026-02-30\n"
    )
    assert [p.split(" [")[0] for p in found] == ["2:7:", "4:28:", "5:6:"]
    assert "seed: cannot read 'abc' as tag:yaml.org,2002:int" in found[0]
    assert "members.0.counters.x: cannot read 'y'" in found[1]
    assert found[2] == "5:6: [SOP602] end: '2026-02-30': February has no 30th"


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            [HEADER, '{"at": "2026-03-01 10:00", "kind": {}, "member": "m1", "group": "g1"}'],
            "2:1: [SOP602] kind: '{}' is not one of join, leave",
        ),
        (
            [HEADER, '{"at": "2026-03-01 10:00", "kind": ["join"], "member": "m1", "group": "g1"}'],
            "2:1: [SOP602] kind: '['join']' is not one of join, leave",
        ),
        (['{"sopdsl": "timeline", "start": null}'], "1:1: [SOP602] start: null is not a time"),
        (['{"sopdsl": "timeline"}'], "1:1: [SOP602] missing field 'start'"),
        (
            ['{"sopdsl": "timeline", "start": "0001-01-01 00:00"}'],
            "1:1: [SOP602] start: '0001-01-01 00:00': the year 1 is outside the years a dry run covers (1970 to 2200)",
        ),
        (
            ['{"sopdsl": "timeline", "start": -62135596800}'],
            "1:1: [SOP602] start: -62135596800 is outside the years a dry run covers (1970 to 2200)",
        ),
        (
            [HEADER, '{"at": "9999-12-31 23:59", "kind": "join", "member": "m1", "group": "g1"}'],
            "2:1: [SOP602] at: '9999-12-31 23:59': the year 9999 is outside the years a dry run covers",
        ),
        (
            [HEADER, '{"at": 253402300740, "kind": "join", "member": "m1", "group": "g1"}'],
            "2:1: [SOP602] at: 253402300740 is more than 20 years after the start (2026-03-01 09:00); "
            "a dry run covers at most 20 years",
        ),
        (
            [HEADER, '{"at": "2046-03-01 09:01", "kind": "join", "member": "m1", "group": "g1"}'],
            "2:1: [SOP602] at: 2046-03-01 09:01 is more than 20 years after the start (2026-03-01 09:00)",
        ),
        (
            [HEADER.replace('"groups"', '"end": "2046-03-01 09:01", "groups"')],
            "1:1: [SOP602] end: 2046-03-01 09:01 is more than 20 years after the start (2026-03-01 09:00)",
        ),
        (
            [HEADER, '{"id": "m1", "joined": 1772328000000}'],
            "2:1: [SOP602] joined: 1772328000000 (epoch seconds, not milliseconds) is outside the years",
        ),
        (
            [HEADER, '{"at": "2026-02-29 10:00", "kind": "join", "member": "m1", "group": "g1"}'],
            "2:1: [SOP602] at: '2026-02-29 10:00': February has no 29th (2026 is not a leap year)",
        ),
        (
            [
                '{"sopdsl": "timeline", "start": "2026-03-01", "staff_completes_tasks_after": "99999999999 days"}'
            ],
            "1:1: [SOP602] staff_completes_tasks_after: '99999999999 days' is longer than 20 years",
        ),
    ],
    ids=[
        "kind-object",
        "kind-list",
        "start-null",
        "start-missing",
        "start-year-1",
        "start-epoch-year-1",
        "at-year-9999",
        "at-epoch-year-9999",
        "at-past-20-years",
        "end-past-20-years",
        "joined-in-milliseconds",
        "february-29",
        "huge-task-delay",
    ],
)
def test_bad_jsonl_is_located(tmp_path: Path, lines: list[str], expected: str) -> None:
    found = timeline_problems(tmp_path, *lines)
    assert any(p.startswith(expected) for p in found), found


def test_a_jsonl_run_of_exactly_twenty_years_is_allowed(tmp_path: Path) -> None:
    assert (
        timeline_problems(
            tmp_path, HEADER, '{"at": "2046-03-01 09:00", "kind": "join", "member": "m1", "group": "g1"}'
        )
        == []
    )


FAR = """start: 2026-03-01 09:00
groups: [{id: g1}]
events:
  - {at: 9999-12-31 23:59, kind: join, member: m1, group: g1}
"""


def test_a_yaml_event_in_the_year_9999_is_located_at_its_time() -> None:
    assert problems(FAR) == [
        "4:10: [SOP602] events.0.at: '9999-12-31 23:59': the year 9999 is outside the years a dry run "
        "covers (1970 to 2200)"
    ]


def test_a_yaml_start_in_the_year_1_is_located_at_its_value() -> None:
    assert problems("start: 0001-01-01 00:00\n") == [
        "1:8: [SOP602] start: '0001-01-01 00:00': the year 1 is outside the years a dry run covers (1970 to 2200)"
    ]


SPAN = """start: 2026-03-01 09:00
end: 2046-03-01 09:01
groups: [{id: g1}]
events:
  - {at: 2046-03-01 09:01, kind: join, member: m1, group: g1}
expect:
  - {member: m1, at: 2047-01-01 00:00, tagged: [x]}
  - {action: send, at: 2047-01-01 00:00}
"""


def test_a_yaml_run_over_twenty_years_is_refused_naming_the_limit() -> None:
    limit = "is more than 20 years after the start (2026-03-01 09:00); a dry run covers at most 20 years"
    # The state check runs the clock to its time; an action's `at` only filters the log.
    assert problems(SPAN) == [
        f"2:6: [SOP602] end: 2046-03-01 09:01 {limit}",
        f"5:10: [SOP602] events.0.at: 2046-03-01 09:01 {limit}",
        f"7:22: [SOP602] expect.0.at: 2047-01-01 00:00 {limit}",
    ]


def test_a_yaml_run_of_twenty_years_runs_in_a_few_seconds(tmp_path: Path) -> None:
    (tmp_path / "f.sop").write_text(PLAYBOOK, encoding="utf-8")
    text = SPAN.replace("09:01", "09:00").replace("2047-01-01 00:00", "2046-03-01 09:00")
    (tmp_path / "f.yaml").write_text(text, encoding="utf-8")
    started = time.perf_counter()
    code, output = sopdsl(tmp_path, "simulate", "f.sop", "--timeline", "f.yaml")
    assert code == 0, output
    assert "2046-03-01T09:00+08:00 send welcome -> m1" in output
    assert time.perf_counter() - started < 20


def test_the_cli_answers_the_far_event_with_diagnostics(tmp_path: Path) -> None:
    (tmp_path / "f.sop").write_text(PLAYBOOK, encoding="utf-8")
    (tmp_path / "f.yaml").write_text(FAR, encoding="utf-8")
    (tmp_path / "f.jsonl").write_text(
        HEADER + '\n{"at": "9999-12-31 23:59", "kind": "join", "member": "m1", "group": "g1"}\n',
        encoding="utf-8",
    )
    for timeline in ("f.yaml", "f.jsonl"):
        code, output = sopdsl(tmp_path, "simulate", "f.sop", "--timeline", timeline)
        assert code == 1 and "the year 9999 is outside the years a dry run covers" in output, output
    code, output = sopdsl(tmp_path, "test", ".")
    assert code == 2 and "f.yaml:4:10: error[SOP602]" in output, output


MISSPELT = """description: x
start: 2026-03-02 09:00
end: 2026-03-09 00:00
groups:
  - {id: riders1, tags: [normal]}
memebrs:
  - {id: laozhang, groups: [riders1]}
events:
  - {at: 2026-03-02 10:20, kind: join, member: afeng, group: riders1}
  - {at: 2026-02-30 10:00, kind: join, member: b, group: riders1}
"""


def test_a_misspelt_field_does_not_hide_a_bad_date(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(MISSPELT, encoding="utf-8")
    with pytest.raises(FixtureError) as caught:
        load_fixture(path, "f.yaml")
    first, second = caught.value.diagnostics
    assert shown(first) == "6:1: [SOP602] memebrs: unknown field 'memebrs'"
    assert first.hint == "did you mean 'members'?"
    assert shown(second) == "10:10: [SOP602] events.1.at: '2026-02-30 10:00': February has no 30th"


def test_every_kind_of_problem_is_reported_together() -> None:
    text = """start: 2026-03-01 09:00
end: 2026-13-01
timezone: Asia/Shanghia
groups: [{id: g1, tagz: [a]}]
events:
  - {at: 2026-03-01 10:00, kind: jion, member: m1, group: g1}
  - {at: 2026-03-01 24:00, kind: join, member: m1, group: g1}
  - {at: 2026-03-01 08:00, kind: custom, name: x, member: m1}
expect:
  - {action: sned, member: m1}
  - {member: m1, at: 2026-04-31 00:00, tagged: [x]}
"""
    assert [p.split(": [")[0] for p in problems(text)] == [
        "2:6",  # month 13
        "3:11",  # the zone
        "4:19",  # tagz
        "6:34",  # jion
        "7:10",  # 24:00
        "8:10",  # before the start, and a custom event cannot be history
        "10:14",  # sned
        "11:22",  # April 31
    ]
    assert "there is no month 13" in problems(text)[0]
    assert "April has no 31st" in problems(text)[-1]


def test_the_caret_of_a_bad_end_is_at_the_value() -> None:
    assert problems("start: 2026-03-01 09:00\nend:   2026-02-30 00:00\n") == [
        "2:8: [SOP602] end: '2026-02-30 00:00': February has no 30th"
    ]


def test_a_missing_or_bad_start_still_lets_the_rest_be_checked() -> None:
    found = problems(
        "groups: [{id: g1}]\nevents:\n  - {at: 2026-02-30 10:00, kind: join, member: m1, group: g1}\n"
    )
    assert found == [
        "1:1: [SOP602] start: missing field 'start'",
        "3:10: [SOP602] events.0.at: '2026-02-30 10:00': February has no 30th",
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2026-02-30 10:00", "February has no 30th"),
        ("2028-02-29 10:00", None),
        ("2026-02-29", "February has no 29th (2026 is not a leap year)"),
        ("2026-04-31 10:00", "April has no 31st"),
        ("2026-01-32 10:00", "January has no 32nd"),
        ("2026-01-00 10:00", "there is no day 0"),
        ("2026-00-10 10:00", "there is no month 0"),
        ("2026-03-01 10:60", "10:60 is not a time of day"),
        ("1969-12-31 23:59", "the year 1969 is outside the years a dry run covers (1970 to 2200)"),
        ("2201-01-01", "the year 2201 is outside"),
        ("0000-00-00", "the year 0 is outside"),
        ("next tuesday", "is not a time like 2026-03-01 09:00"),
    ],
)
def test_time_messages_say_what_is_wrong(value: str, message: str | None) -> None:
    found = problems(f"start: '{value}'\n")
    if message is None:
        assert found == []
    else:
        [problem] = found
        assert problem.startswith("1:8: [SOP602] start: ") and message in problem, problem


# ---- lone surrogates: half a character, which no text, hash or store can hold ----------------------


def test_a_lone_surrogate_in_a_yaml_fixture_is_a_located_diagnostic() -> None:
    text = (
        'start: "2026-03-01 09:00"\nend: "2026-03-02 09:00"\ngroups: [{id: g1}]\n'
        'events:\n  - {at: "2026-03-01 10:00", kind: join, member: "\\ud800x", group: g1}\n'
    )
    [found] = problems(text)
    assert found.startswith("5:50: [SOP602] events.0.member: the text holds a lone surrogate")


def test_a_lone_surrogate_in_a_fixture_never_reaches_the_engine(tmp_path: Path) -> None:
    (tmp_path / "p.sop").write_text(PLAYBOOK, encoding="utf-8")
    (tmp_path / "p.yaml").write_text(
        'start: "2026-03-01 09:00"\nend: "2026-03-02 09:00"\ngroups: [{id: g1}]\n'
        'events:\n  - {at: "2026-03-01 10:00", kind: join, member: m1, group: g1, data: {name: "\\udc00"}}\n',
        encoding="utf-8",
    )
    for args in (("test", "p.yaml"), ("simulate", "p.sop", "--timeline", "p.yaml")):
        code, output = sopdsl(tmp_path, *args)
        assert code != 0 and "lone surrogate" in output and "Traceback" not in output


def test_a_lone_surrogate_in_a_live_event_is_refused_naming_the_field() -> None:
    import sopdsl as api
    from sopdsl.errors import EngineError
    from sopdsl.live.intake import EventError
    from sopdsl.live.runtime import ManualClock, Runtime

    plan = api.compile_program(api.check(api.load_text(PLAYBOOK, "p.sop")))
    rt = Runtime(plan, "memory://", clock=ManualClock(1772330400))
    with pytest.raises(EventError, match="lone surrogate") as refused:
        rt.feed({"kind": "join", "member": "m1", "group": "g1", "data": {"tags": ["ok", "\ud800"]}})
    assert refused.value.field == "data.tags.1"
    with pytest.raises(EngineError, match="lone surrogate"):
        rt.add_member("\udfff")
    # Nothing was stored, and the next event goes through.
    assert [a.member for a in rt.feed({"kind": "join", "member": "m2", "group": "g1"})] == ["m2"]
    rt.close()
