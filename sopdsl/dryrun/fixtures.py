"""Fixture timelines: YAML files beside a playbook with groups, members, events and expectations.

Input: YAML text. Output: a validated `Fixture`, or a `FixtureError` whose diagnostics name the
file, line and field. Times without an offset are local to the fixture's time zone. An entry of
`events` may load another version of the playbooks instead (`reload: FILE.sop`): a plan change.
Every problem of a file is reported at once, at the value it is about. The reader is bounded
(see the limits below): nesting depth, values repeated by aliases, the years and the span of a run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sopdsl.diagnostics import Diagnostic, Severity
from sopdsl.dryrun.fixture_checks import _problems, _validate
from sopdsl.dryrun.fixture_models import (
    ActionKind,
    EventKindName,
    Expectation,
    Fixture,
    FixtureEvent,
    FixtureGroup,
    FixtureMember,
    PlanChangeName,
)
from sopdsl.dryrun.fixture_times import (
    FIRST_YEAR,
    LAST_YEAR,
    MAX_ALIAS_VALUES,
    MAX_DEPTH,
    MAX_SPAN_YEARS,
    known_zone,
    parse_duration,
    parse_time,
    span_end,
    span_problem,
)
from sopdsl.dryrun.fixture_yaml import _Loader, _Reader, _Refused
from sopdsl.errors import FixtureError
from sopdsl.source import Source, Span
from sopdsl.textfiles import decode

__all__ = [
    "FIRST_YEAR",
    "LAST_YEAR",
    "MAX_ALIAS_VALUES",
    "MAX_DEPTH",
    "MAX_SPAN_YEARS",
    "ActionKind",
    "EventKindName",
    "Expectation",
    "Fixture",
    "FixtureEvent",
    "FixtureGroup",
    "FixtureMember",
    "PlanChangeName",
    "known_zone",
    "line_of",
    "load_fixture",
    "not_a_file",
    "parse_duration",
    "parse_fixture",
    "parse_time",
    "position_of",
    "reload_paths",
    "span_end",
    "span_problem",
]


def load_fixture(path: Path, shown: str) -> tuple[Fixture, Source]:
    """Read and validate a fixture file; raise `FixtureError` with located diagnostics."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        # Located, with how to save it as UTF-8, as a playbook's encoding is explained.
        found = decode(shown, path.read_bytes())
        assert isinstance(found, Diagnostic), "it did not decode as UTF-8 a moment ago"
        raise FixtureError(
            [
                Diagnostic(
                    "SOP601", Severity.ERROR, f"cannot read fixture: {found.message}", found.span, found.hint
                )
            ]
        ) from None
    except OSError as exc:
        raise FixtureError(
            [Diagnostic("SOP601", Severity.ERROR, f"cannot read fixture: {exc}", Span.point(shown))]
        ) from None
    source = Source(shown, text)
    fixture = parse_fixture(source)
    absent = [
        Diagnostic(
            "SOP603",
            Severity.ERROR,
            f"events.{index}.reload: playbook '{Path(shown).parent / name}' {problem}",
            Span.point(shown, *position_of(fixture, "events", index, "reload", *place)),
            "name it relative to the fixture's folder",
        )
        for index, event in enumerate(fixture.events)
        for place, name in _reload_places(event)
        if (problem := not_a_file(path.parent / name))
    ]
    if absent:
        raise FixtureError(absent)
    return fixture, source


def not_a_file(path: Path) -> str | None:
    """Why `path` cannot be read as a playbook file, or None if it can."""
    try:
        if path.is_file():
            # Only a .sop file: the dry run must not read (and quote, in a parse error) any other
            # file a fixture names, such as ../secret.env.
            return None if path.suffix == ".sop" else "is not a .sop file"
        return "is a folder, not a .sop file" if path.is_dir() else "does not exist"
    except OSError as exc:  # a name too long for the file system, say
        return f"cannot be opened: {exc.strerror or exc}"


def reload_paths(event: FixtureEvent, folder: Path) -> list[Path]:
    """The files a `reload` entry loads, found relative to the fixture's `folder`."""
    return [folder / name for name in event.reload_files]


def _reload_places(event: FixtureEvent) -> list[tuple[tuple[int, ...], str]]:
    """Each file a `reload` entry names, with its place in the entry (an index, in a list)."""
    if isinstance(event.reload, str):
        return [((), event.reload)]
    return [((i,), name) for i, name in enumerate(event.reload_files)]


def parse_fixture(source: Source) -> Fixture:
    """Validate fixture text; raise `FixtureError` with a diagnostic per problem, every one at
    once: a misspelt field does not hide a bad date further down."""
    try:
        loader = _Loader(source.text)
        try:
            node = loader.get_single_node()
            reader = _Reader(loader, source)
            data = reader.read(node, ()) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, column = source.position(mark.index) if mark else (1, 1)
        message = str(getattr(exc, "problem", None) or exc)
        refused = isinstance(exc, _Refused)
        raise FixtureError(
            [
                Diagnostic(
                    "SOP601",
                    Severity.ERROR,
                    f"{'fixture refused' if refused else 'invalid YAML'}: {message}",
                    Span(source.path, 0, 0, line, column, line, column),
                    "see the limits in docs/testing.md" if refused else None,
                )
            ]
        ) from None
    if not isinstance(data, dict):
        raise FixtureError(
            [
                Diagnostic(
                    "SOP602",
                    Severity.ERROR,
                    "a fixture is a mapping with start, groups, members, events and expect",
                    Span.point(source.path),
                )
            ]
        )
    found: list[Any] = list(reader.problems)  # (message, where) or (message, where, hint)
    fixture, kept, start_known = _validate(data, reader, found)
    if fixture is not None:
        found.extend(_problems(fixture, reader.keys, reader.values, kept, start_known))
    if found:
        located = sorted(found, key=lambda p: p[1])
        raise FixtureError(
            [
                Diagnostic("SOP602", Severity.ERROR, m, Span.point(source.path, *w), h)
                for m, w, h in _hinted(located)
            ]
        )
    assert fixture is not None
    object.__setattr__(fixture, "_lines", reader.keys)
    return fixture


def _hinted(found: list[Any]) -> list[tuple[str, tuple[int, int], str | None]]:
    return [(p[0], p[1], p[2] if len(p) > 2 else None) for p in found]


def line_of(fixture: Fixture, *path: Any) -> int:
    """The line of a field of a parsed fixture (1 if unknown)."""
    return position_of(fixture, *path)[0]


def position_of(fixture: Fixture, *path: Any) -> tuple[int, int]:
    """The line and column of a field of a parsed fixture ((1, 1) if unknown)."""
    lines: dict[tuple[Any, ...], tuple[int, int]] = getattr(fixture, "_lines", {})
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path, (1, 1))
