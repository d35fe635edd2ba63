"""Fixture and timeline loaders answer bad input with located diagnostics, never a traceback.

First one test per case of the robustness audit (issue 9: deep YAML, complex keys, aliases, bad
and far-away times, unbounded spans, one error hiding another), then the same no-traceback
property as the front end's (`tests/test_no_crash.py`): Hypothesis-generated YAML fixtures and
JSONL timelines, and random edits of the corpus fixtures, loaded and dry-run.
"""

from __future__ import annotations

import functools
import json
import os
import re
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sopdsl.build import compile_files
from sopdsl.cli import main
from sopdsl.diagnostics import Diagnostic
from sopdsl.dryrun.fixtures import MAX_ALIAS_VALUES, MAX_DEPTH, Fixture, load_fixture, parse_fixture
from sopdsl.dryrun.simulate import simulate, simulate_timeline
from sopdsl.dryrun.testing import fixture_versions, playbook_for
from sopdsl.dryrun.timeline import open_timeline
from sopdsl.errors import FixtureError
from sopdsl.plan import Plan
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
    assert "2046-03-01T09:00 send welcome -> m1" in output
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
  - {at: 2026-03-01 08:00, kind: join, member: m1, group: g1}
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
        "8:10",  # before the start
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


# ---- keep these classes found: property tests ----------------------------------------------------

FUZZ = settings(
    max_examples=int(os.environ.get("SOPDSL_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
CORPUS = sorted(PLAYBOOKS.glob("*.yaml"))
_TEXTS = {path: path.read_text(encoding="utf-8") for path in CORPUS}


@functools.cache
def _plan(*files: Path) -> Plan | None:
    build = compile_files(list(files))
    return build.plan


def _plan_of(files: list[Path], asked: Any) -> Plan | list[Any]:
    plan = _plan(*(file.resolve() for file in files))
    return plan if plan is not None else [asked]


def dry_run(text: str, path: Path) -> None:
    """Load fixture text as if it were at `path` and dry-run it on its playbook: it runs or it is
    refused with diagnostics; any other exception, or a slow answer, fails the calling test."""
    started = time.perf_counter()
    source = Source(str(path), text)
    try:
        fixture = parse_fixture(source)
    except FixtureError as exc:
        assert exc.diagnostics
        for d in exc.diagnostics:
            assert re.fullmatch(r"SOP\d{3}", d.code) and d.message, d
            assert d.span.line >= 1 and d.span.column >= 1, d
            assert d.span.line <= text.count("\n") + 2, d
        return
    finally:
        assert time.perf_counter() - started < 5
    plan = _plan(playbook_for(fixture, path).resolve()) if playbook_for(fixture, path).is_file() else None
    if plan is None:
        plan = _plan((PLAYBOOKS / "J1_welcome_ritual.sop").resolve())
    assert plan is not None
    if any(not f.is_file() for e in fixture.events for f in (path.parent / n for n in e.reload_files)):
        return  # load_fixture says so (SOP603)
    versions = fixture_versions(fixture, path, source, _plan_of)
    if isinstance(versions, list):
        return
    simulate(plan, fixture, versions=versions)
    assert time.perf_counter() - started < 15


_KEYS = [*Fixture.model_fields, "at", "kind", "member", "group", "id", "tags", "data", "reload", "action"]
_WORDS = ["g1", "m1", "join", "message", "send", "welcome", "normal", "Asia/Shanghai", "欢迎", "<<", "~", ""]
_TIMES = [
    "2026-03-01 09:00",
    "2026-03-02",
    "2026-02-30 10:00",
    "2026-03-01T09:00:00+08:00",
    "9999-12-31 23:59",
    "0001-01-01 00:00",
    "2046-03-01 09:01",
    "1970-01-01 00:00",
    "2200-12-31 23:59",
    "2026-03-01 25:00",
    "2 hours",
    "99999 days",
]
_SCALARS = (
    st.sampled_from(_TIMES + _WORDS)
    | st.integers(-(10**20), 10**20)
    | st.floats()
    | st.booleans()
    | st.none()
    | st.text(max_size=8)
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=4), inner, max_size=5)
    ),
    max_leaves=30,
)


def _event() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"at": st.sampled_from(_TIMES)},
        optional={
            "kind": st.sampled_from(["join", "leave", "message", "tag", "custom", "rename", "order", "jion"]),
            "member": st.sampled_from(["m1", "m2"]),
            "group": st.sampled_from(["g1", "riders1"]),
            "name": st.sampled_from(["vip", "x"]),
            "data": _VALUES,
            "reload": st.sampled_from(["J1_welcome_ritual.sop", "nope.sop", ""]),
        },
    )


_FIXTURES = st.fixed_dictionaries(
    {"start": st.sampled_from(_TIMES)},
    optional={
        "end": st.sampled_from(_TIMES),
        "timezone": st.sampled_from(["Asia/Shanghai", "UTC", "America/New_York", "Nowhere/City", ""]),
        "seed": st.integers(-(10**30), 10**30),
        "staff_completes_tasks_after": st.sampled_from(["2 hours", "99999999999 days", "²1 days", "1 weeks"]),
        "groups": st.lists(
            st.fixed_dictionaries({"id": st.sampled_from(["g1", "riders1"])}, optional={"tags": _VALUES}),
            max_size=3,
        ),
        "members": st.lists(
            st.fixed_dictionaries(
                {"id": st.sampled_from(["m1", "m2"])},
                optional={"joined": st.sampled_from(_TIMES), "counters": _VALUES, "groups": _VALUES},
            ),
            max_size=3,
        ),
        "events": st.lists(_event(), max_size=6),
        "expect": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "action": st.sampled_from(["send", "kick"]),
                    "member": st.sampled_from(["m1", "m2"]),
                    "at": st.sampled_from(_TIMES),
                    "within": st.lists(st.sampled_from(_TIMES), max_size=3),
                    "tagged": _VALUES,
                    "count": _VALUES,
                },
            ),
            max_size=3,
        ),
        "memebrs": _VALUES,
    },
)
# YAML syntax a person can type by accident, or on purpose.
_YAML_TOKENS = [
    *("start: ", "end: ", "events:\n", "  - ", "members:\n", "groups: ", "expect:\n", "at: ", "kind: "),
    *(
        "&a ",
        "*a",
        "&b ",
        "*b",
        "? ",
        ": ",
        "[",
        "]",
        "{",
        "}",
        ",",
        "\n",
        "  ",
        "\t",
        "- ",
        "<<: ",
        "!!float ",
    ),
    *("!!int ", "!!timestamp ", "!!binary ", "!!set ", "!!python/object ", "%YAML 1.1\n", "---\n", "...\n"),
    *(
        "'",
        '"',
        "|\n",
        ">\n",
        "#",
        "2026-03-01 09:00",
        "2026-02-30",
        "9999-12-31",
        "join",
        "m1",
        "g1",
        "欢迎",
    ),
]
_SOUP = st.lists(st.sampled_from(_YAML_TOKENS), max_size=60).map("".join)


# Playbooks with quiet hours, calendars and long waits: where far-away times used to overflow.
_RUN_ON = st.sampled_from(["J1_welcome_ritual", "C1_prune_silent", "L3_lifecycle_stages", "K1_tuesday_class"])


@FUZZ
@given(_FIXTURES, _RUN_ON)
def test_generated_fixtures_load_or_give_diagnostics(data: dict[str, Any], playbook: str) -> None:
    text = yaml.safe_dump(data, allow_unicode=True, default_flow_style=None)
    dry_run(text, PLAYBOOKS / f"{playbook}.fuzz.yaml")


@FUZZ
@given(_SOUP, _RUN_ON)
def test_yaml_token_soup_gives_diagnostics(text: str, playbook: str) -> None:
    dry_run(text, PLAYBOOKS / f"{playbook}.fuzz.yaml")


@st.composite
def _mutated(draw: st.DrawFn) -> tuple[Path, str]:
    """A corpus fixture with a few random edits: characters deleted, duplicated or replaced,
    or the values of two `key: value` places swapped."""
    path = draw(st.sampled_from(CORPUS))
    text = _TEXTS[path]
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):
            spots = [m.span(1) for m in re.finditer(r":\s*([^,{}\[\]\n]+)", text)]
            if len(spots) >= 2:
                (a0, a1), (b0, b1) = sorted(
                    draw(st.lists(st.sampled_from(spots), min_size=2, max_size=2, unique=True))
                )
                text = text[:a0] + text[b0:b1] + text[a1:b0] + text[a0:a1] + text[b1:]
                continue
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 12)))
        insert = draw(st.sampled_from(["", *_YAML_TOKENS, *_TIMES]) | st.just(text[start:end] * 2))
        text = text[:start] + insert + text[end:]
    return path, text


@FUZZ
@given(_mutated())
def test_edited_corpus_fixtures_load_or_give_diagnostics(case: tuple[Path, str]) -> None:
    path, text = case
    dry_run(text, path)


_JSON_VALUES = st.recursive(
    st.sampled_from(_TIMES + _WORDS)
    | st.integers(-(10**13), 10**13)
    | st.floats(allow_nan=False)
    | st.booleans()
    | st.none(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(_KEYS), inner, max_size=3),
    max_leaves=12,
)
_JUNK_HEADERS = st.fixed_dictionaries(
    {"sopdsl": st.sampled_from(["timeline", "timeline", "fixture"])},
    optional={
        "start": st.sampled_from(_TIMES) | _JSON_VALUES | st.integers(1_700_000_000, 1_800_000_000),
        "end": st.sampled_from(_TIMES) | _JSON_VALUES,
        "timezone": st.sampled_from(["Asia/Shanghai", "UTC", "Nowhere/City", "", "\x00"]) | _JSON_VALUES,
        "seed": _JSON_VALUES,
        "staff_completes_tasks_after": st.sampled_from(["2 hours", "99999999999 days"]) | _JSON_VALUES,
        "groups": st.lists(
            st.fixed_dictionaries(
                {"id": st.sampled_from(["g1", "riders1"])},
                optional={"tags": _JSON_VALUES, "timezone": _JSON_VALUES},
            ),
            max_size=2,
        )
        | _JSON_VALUES,
        "description": _JSON_VALUES,
    },
)
# Headers that mostly read, so that the lines after them are read too.
_GOOD_HEADERS = st.fixed_dictionaries(
    {
        "sopdsl": st.just("timeline"),
        "start": st.sampled_from([*_TIMES[:4], "1970-01-01 00:00", "2200-12-31 23:59"]),
        "groups": st.just([{"id": "riders1", "tags": ["normal"]}, {"id": "g1"}]),
    },
    optional={
        "end": st.sampled_from(_TIMES),
        "timezone": st.sampled_from(["Asia/Shanghai", "UTC", "America/New_York", "Pacific/Kiritimati"]),
        "staff_completes_tasks_after": st.sampled_from(["2 hours", "3 days"]),
    },
)
_HEADERS = _GOOD_HEADERS | _JUNK_HEADERS
_RECORDS = st.one_of(
    st.fixed_dictionaries(
        {
            "kind": st.sampled_from(["join", "leave", "message", "tag", "custom", "task_done", "jion"])
            | st.sampled_from([{}, [], None])
            | _JSON_VALUES
        },
        optional={
            "at": st.sampled_from(_TIMES) | st.integers(-(10**13), 10**13) | _JSON_VALUES,
            "member": st.sampled_from(["m1", "m2"]) | _JSON_VALUES,
            "group": st.sampled_from(["g1", "riders1"]) | _JSON_VALUES,
            "name": _JSON_VALUES,
            "data": _JSON_VALUES,
        },
    ),
    st.fixed_dictionaries(
        {"id": st.sampled_from(["m1", "m2"]) | _JSON_VALUES},
        optional=dict.fromkeys(
            ("joined", "groups", "tags", "counters", "attributes", "nickname"), _JSON_VALUES
        ),
    ),
    _JSON_VALUES,
)
_LINES = st.lists(
    _RECORDS.map(lambda r: json.dumps(r, ensure_ascii=False)) | st.sampled_from(["", "{", "null", "\x00"]),
    max_size=8,
)


def stream_run(folder: Path, text: str, playbook: str) -> None:
    """Read and dry-run a JSONL timeline's text on a corpus playbook: it runs, or diagnostics."""
    plan = _plan((PLAYBOOKS / f"{playbook}.sop").resolve())
    assert plan is not None
    path = folder / "fuzz.jsonl"
    path.write_bytes(text.encode("utf-8", errors="surrogatepass"))
    started = time.perf_counter()
    try:
        timeline = open_timeline(path, "fuzz.jsonl", "Asia/Shanghai")
        try:
            simulate_timeline(plan, timeline, lambda action: None)
        finally:
            timeline.close()
    except FixtureError as exc:
        assert exc.diagnostics
        assert all(re.fullmatch(r"SOP\d{3}", d.code) and d.span.line >= 1 for d in exc.diagnostics)
    assert time.perf_counter() - started < 15


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fixture_loading")


@FUZZ
@given(_HEADERS, _LINES, _RUN_ON)
def test_generated_jsonl_timelines_run_or_give_diagnostics(
    folder: Path, header: dict[str, Any], lines: list[str], playbook: str
) -> None:
    stream_run(folder, "\n".join([json.dumps(header, ensure_ascii=False), *lines]) + "\n", playbook)


_REAL_JSONL = "\n".join(
    [
        HEADER.replace(
            '"groups": [{"id": "g1"}]',
            '"end": "2026-03-09 00:00", "groups": [{"id": "riders1", "tags": ["normal"]}]',
        ),
        '{"id": "m1", "name": "张三", "groups": ["riders1"], "joined": "2025-06-01 10:00", "counters": {"orders": 2}}',
        '{"at": "2026-03-01 10:12", "kind": "message", "member": "m1", "group": "riders1"}',
        '{"at": 1772330000, "kind": "join", "member": "m2", "group": "riders1", "data": {"name": "AAA推广"}}',
        '{"at": "2026-03-02 09:00", "kind": "tag", "member": "m2", "name": "vip"}',
    ]
)


@FUZZ
@given(st.data(), _RUN_ON)
def test_edited_jsonl_timelines_run_or_give_diagnostics(
    folder: Path, data: st.DataObject, playbook: str
) -> None:
    text = _REAL_JSONL
    for _ in range(data.draw(st.integers(1, 4))):
        start = data.draw(st.integers(0, len(text)))
        end = data.draw(st.integers(start, min(len(text), start + 12)))
        tokens = ['"', "{", "}", "[", "]", ",", ":", "\n", "null", "{}", "9999", "-1", "1e400", *_TIMES]
        insert = data.draw(st.sampled_from(["", *tokens]) | st.just(text[start:end] * 2))
        text = text[:start] + insert + text[end:]
    stream_run(folder, text, playbook)


def test_places_count_lines_as_the_source_does_not_as_yaml_does() -> None:
    """YAML also breaks lines at U+0085 and U+2028; the caret is drawn on the source's lines."""
    assert problems('description: "a\x85b\u2028c"\nstart: 2026-02-30\n') == [
        "2:8: [SOP602] start: '2026-02-30': February has no 30th"
    ]


@pytest.mark.parametrize("depth", [101, 1_000, 100_000])
def test_a_jsonl_line_nested_too_deep_is_located(tmp_path: Path, depth: int) -> None:
    deep = "[" * depth + "]" * depth
    event = '{"at": "2026-03-01 10:00", "kind": "custom", "name": "x", "member": "m1", "data": {"x": %s}}'
    assert timeline_problems(tmp_path, HEADER, event % deep) == [
        "2:1: [SOP601] line 2 nests lists and objects more than 100 deep"
    ]
    assert timeline_problems(tmp_path, HEADER.replace('[{"id": "g1"}]', deep)) == [
        "1:1: [SOP601] line 1 nests lists and objects more than 100 deep"
    ]


def test_a_jsonl_line_with_many_shallow_lists_is_read(tmp_path: Path) -> None:
    event = '{"at": "2026-03-01 10:00", "kind": "custom", "name": "x", "member": "m1", "data": {"x": [%s]}}'
    path = tmp_path / "t.jsonl"
    path.write_text(HEADER + "\n" + event % ",".join(["[]"] * 300) + "\n", encoding="utf-8")
    timeline = open_timeline(path, "t.jsonl", "Asia/Shanghai")
    [record] = list(timeline.records())
    timeline.close()
    assert len(record.data["x"]) == 300  # type: ignore[union-attr]


def test_a_bad_key_hides_nothing_else_in_its_mapping() -> None:
    text = "start: 2026-03-01 09:00\n? [a, b]\n: 1\n!!float x: 2\nend: 2026-02-30\nevnets: []\n"
    found = problems(text)
    assert [p.split(" [")[0] for p in found] == ["2:3:", "4:1:", "5:6:", "6:1:"], found


@pytest.fixture(scope="module")
def cli_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fixture_cli")
    for name in ("C1_prune_silent.sop", "common.sop"):
        (folder / name).write_text((PLAYBOOKS / name).read_text(encoding="utf-8"), encoding="utf-8")
    return folder


@settings(max_examples=15, deadline=None)
@given(_mutated())
def test_the_cli_answers_edited_fixtures_with_an_exit_code_not_a_traceback(
    cli_folder: Path, case: tuple[Path, str]
) -> None:
    _, text = case
    (cli_folder / "C1_prune_silent.yaml").write_text(text, encoding="utf-8")
    code, output = sopdsl(cli_folder, "test", ".")
    assert code in (0, 1, 2), output
    assert "the simulation stopped" not in output, output  # an exception the engine raised
    code, output = sopdsl(cli_folder, "simulate", "C1_prune_silent.sop", "--timeline", "C1_prune_silent.yaml")
    assert code in (0, 1), output


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
