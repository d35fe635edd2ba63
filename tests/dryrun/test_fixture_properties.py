"""Property tests for the fixture and timeline readers: generated YAML and JSONL, and edits of the
corpus fixtures, only ever give diagnostics, never a traceback, and finish quickly."""

from __future__ import annotations

import functools
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fixture_loading import HEADER, PLAYBOOKS, problems, sopdsl, timeline_problems

from sopdsl.build import compile_files
from sopdsl.dryrun.fixtures import Fixture, parse_fixture
from sopdsl.dryrun.simulate import simulate, simulate_timeline
from sopdsl.dryrun.testing import fixture_versions, playbook_for
from sopdsl.dryrun.timeline import open_timeline
from sopdsl.errors import FixtureError
from sopdsl.plan import Plan
from sopdsl.source import Source

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
