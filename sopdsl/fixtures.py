"""Fixture timelines: YAML files beside a playbook with groups, members, events and expectations.

Input: YAML text. Output: a validated `Fixture`, or a `FixtureError` whose diagnostics name the
file, line and field. Times without an offset are local to the fixture's time zone. An entry of
`events` may load another version of the playbooks instead (`reload: FILE.sop`): a plan change.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import ValidationError, field_validator

from sopdsl.diagnostics import Diagnostic, Severity, did_you_mean
from sopdsl.errors import FixtureError
from sopdsl.model import Model
from sopdsl.runtime.events import missing
from sopdsl.source import Source, Span

ActionKind = Literal["send", "tag", "untag", "kick", "grant", "invite", "task", "call", "dissolve"]
EventKindName = Literal[
    "join", "leave", "message", "order", "invite", "report", "tag", "untag", "rename", "custom", "task_done"
]


class FixtureGroup(Model):
    """A group present at the start."""

    id: str
    name: str | None = None
    tags: list[str] = []
    timezone: str | None = None
    operator: str | None = None
    owner: str | None = None


class FixtureMember(Model):
    """A member present at the start."""

    id: str
    name: str | None = None
    nickname: str = ""
    tags: list[str] = []
    attributes: dict[str, Any] = {}
    counters: dict[str, float] = {}
    groups: list[str] = []
    joined: str | None = None
    referrer: str | None = None
    channel: str | None = None
    contact: bool = False  # also a contact in private chats (a WeCom friend)


class FixtureEvent(Model):
    """One event of the timeline, or a new version of the playbooks loaded at `at` (`reload`)."""

    at: str
    kind: EventKindName | None = None
    reload: str | list[str] | None = None  # playbook file(s), relative to the fixture
    member: str | None = None
    group: str | None = None
    name: str | None = None
    data: dict[str, Any] = {}
    id: str | None = None  # the event id a bot would send: its actions' keys derive from it

    @property
    def is_reload(self) -> bool:
        """Whether the entry is a `reload` (even an empty one, which is then an error to report)."""
        return "reload" in self.model_fields_set

    @property
    def reload_files(self) -> tuple[str, ...]:
        """The playbook files a `reload` entry loads, as written (none for an ordinary event)."""
        if isinstance(self.reload, str):
            return (self.reload,)
        return tuple(self.reload or ())


PlanChangeName = Literal["moves", "finishes", "ends"]


class Expectation(Model):
    """An expected action or plan change (at a time, within a window, a number of times, or never),
    or member state."""

    action: ActionKind | None = None
    plan_change: PlanChangeName | None = None
    member: str | None = None
    group: str | None = None
    template: str | None = None
    tag: str | None = None
    coupon: str | None = None
    to_group: str | None = None
    arm: str | None = None
    target: Literal["member", "group", "operator", "referrer"] | None = None
    operator: str | None = None
    call: str | None = None
    args: dict[str, Any] | None = None
    status: Literal["done", "dropped", "blocked", "failed"] = "done"
    at: str | None = None
    within: tuple[str, str] | None = None
    count: int | None = None
    never: bool = False
    tagged: list[str] | None = None
    not_tagged: list[str] | None = None
    attributes: dict[str, Any] | None = None
    counters: dict[str, float] | None = None
    in_group: str | None = None
    not_in_group: str | None = None
    note: str | None = None


class Fixture(Model):
    """A whole fixture timeline."""

    playbook: str | None = None
    description: str | None = None
    timezone: str | None = None
    start: str
    end: str | None = None
    seed: int = 0
    staff_completes_tasks_after: str | None = None
    groups: list[FixtureGroup] = []
    members: list[FixtureMember] = []
    events: list[FixtureEvent] = []
    expect: list[Expectation] = []

    @field_validator("start", "end")
    @classmethod
    def _time(cls, value: str | None) -> str | None:
        if value is not None:
            parse_time(value)
        return value


def parse_time(text: str) -> dt.datetime:
    """A fixture time: `2026-03-01 09:00`, `2026-03-01T09:00:00+08:00` or a bare date (midnight)."""
    value = str(text).strip()
    try:
        if len(value) == 10:
            return dt.datetime.combine(dt.date.fromisoformat(value), dt.time())
        return dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"'{value}' is not a time like 2026-03-01 09:00") from None


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps times as text, so they are read in the fixture's zone."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _to_python(
    node: yaml.Node, path: tuple[Any, ...], lines: dict[tuple[Any, ...], tuple[int, int]], loader: _Loader
) -> Any:
    lines[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node)
            lines[(*path, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            result[key] = _to_python(value_node, (*path, key), lines, loader)
            lines[(*path, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, (*path, i), lines, loader) for i, item in enumerate(node.value)]
    return loader.construct_object(node)


def load_fixture(path: Path, shown: str) -> tuple[Fixture, Source]:
    """Read and validate a fixture file; raise `FixtureError` with located diagnostics."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
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
            return None
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
    """Validate fixture text; raise `FixtureError` with a diagnostic per problem."""
    lines: dict[tuple[Any, ...], tuple[int, int]] = {}
    try:
        loader = _Loader(source.text)
        try:
            node = loader.get_single_node()
            data = _to_python(node, (), lines, loader) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = str(getattr(exc, "problem", None) or exc)
        raise FixtureError(
            [
                Diagnostic(
                    "SOP601",
                    Severity.ERROR,
                    f"invalid YAML: {message}",
                    Span(source.path, 0, 0, line, column, line, column),
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
    try:
        fixture = Fixture.model_validate(data)
    except ValidationError as exc:
        diagnostics = []
        errors = exc.errors()
        # A wrong `reload` fails both forms of the union: say it once, at the bad element of a
        # list if there is one, else at the value.
        mapped = [_reload_loc(tuple(error["loc"])) for error in errors]
        said = {loc[:3] for loc in mapped if len(loc) == 4 and loc[2] == "reload"}
        for error, loc in zip(errors, mapped, strict=True):
            if loc in said:
                continue
            said.add(loc)
            where = loc
            while where and where not in lines:
                where = where[:-1]
            line, column = lines.get(where, (1, 1))
            field = ".".join(str(p) for p in loc)
            message, hint = _explain(error)
            if loc != tuple(error["loc"]):
                message = (
                    "a playbook file name" if len(loc) == 4 else "a playbook file name, or a list of them"
                )
                hint = "like J3.v2.sop or [a.v2.sop, b.v2.sop]"
            diagnostics.append(
                Diagnostic(
                    "SOP602",
                    Severity.ERROR,
                    f"{field}: {message}",
                    Span(source.path, 0, 0, line, column, line, column),
                    hint,
                )
            )
        diagnostics.sort(key=lambda d: (d.span.line, d.span.column))
        raise FixtureError(diagnostics) from None
    problems = [
        Diagnostic("SOP602", Severity.ERROR, message, Span.point(source.path, *where))
        for message, where in sorted(_problems(fixture, lines), key=lambda p: p[1])
    ]
    if problems:
        raise FixtureError(problems)
    object.__setattr__(fixture, "_lines", lines)
    return fixture


def _reload_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Where a validation error of a `reload` value is, without pydantic's union branch names:
    (events, 1, reload) for the value, (events, 1, reload, 2) for a bad element of a list."""
    if len(loc) >= 4 and loc[0] == "events" and loc[2] == "reload" and loc[3] in ("str", "list[str]"):
        return loc[:3] + tuple(p for p in loc[4:] if isinstance(p, int))
    return loc


_SECTIONS: dict[str, type[Model]] = {
    "groups": FixtureGroup,
    "members": FixtureMember,
    "events": FixtureEvent,
    "expect": Expectation,
}


def _explain(error: Any) -> tuple[str, str | None]:
    """A pydantic error as a message and a `did you mean` hint for a misspelt word or field."""
    loc = tuple(error["loc"])
    value = error.get("input")
    if error["type"] == "extra_forbidden" and loc:
        section = _SECTIONS.get(str(loc[0])) if len(loc) > 1 else Fixture
        fields = section.model_fields if section is not None else {}
        return f"unknown field '{loc[-1]}'", did_you_mean(str(loc[-1]), fields)
    if error["type"] == "missing" and loc:
        return f"missing field '{loc[-1]}'", None
    if error["type"] == "literal_error" and isinstance(value, str):
        expected = re.findall(r"'([^']*)'", str(error.get("ctx", {}).get("expected", "")))
        return f"'{value}' is not one of {', '.join(expected)}", did_you_mean(value, expected)
    return str(error["msg"]).removeprefix("Value error, "), None


_UNITS = {"minute": 60, "hour": 3600, "day": 86400}


def parse_duration(text: str) -> int:
    """A fixture duration such as `2 hours` or `30 minutes`, in seconds."""
    amount, _, unit = str(text).strip().partition(" ")
    per = _UNITS.get(unit.strip().removesuffix("s"))
    if not amount.isdigit() or per is None:
        raise ValueError(f"'{text}' is not a duration like 2 hours (minutes, hours or days)")
    return int(amount) * per


def _problems(
    fixture: Fixture, lines: dict[tuple[Any, ...], tuple[int, int]]
) -> list[tuple[str, tuple[int, int]]]:
    """What pydantic cannot see: times, zones, durations, each event's fields, the events' order."""
    found: list[tuple[str, tuple[int, int]]] = []

    def where(*path: Any) -> tuple[int, int]:
        while path and path not in lines:
            path = path[:-1]
        return lines.get(path, (1, 1))

    def time(value: str, *path: Any) -> dt.datetime | None:
        try:
            return parse_time(value)
        except ValueError as exc:
            found.append((f"{'.'.join(map(str, path))}: {exc}", where(*path)))
            return None

    def zone(value: str | None, *path: Any) -> bool:
        if value is None:
            return False
        try:
            ZoneInfo(value)
            return True
        except (ZoneInfoNotFoundError, ValueError):
            found.append(
                (
                    f"{'.'.join(map(str, path))}: unknown time zone '{value}' (use an IANA name like Asia/Shanghai)",
                    where(*path),
                )
            )
            return False

    tz = fixture.timezone if zone(fixture.timezone, "timezone") else None
    for index, group in enumerate(fixture.groups):
        zone(group.timezone, "groups", index, "timezone")
    if fixture.staff_completes_tasks_after is not None:
        try:
            parse_duration(fixture.staff_completes_tasks_after)
        except ValueError as exc:
            found.append((f"staff_completes_tasks_after: {exc}", where("staff_completes_tasks_after")))
    start = _order_key(parse_time(fixture.start), tz)
    if fixture.end is not None and _before(_order_key(parse_time(fixture.end), tz), start):
        found.append((f"end: {fixture.end} is before the start ({fixture.start})", where("end")))
    for index, member in enumerate(fixture.members):
        if member.joined is not None:
            time(member.joined, "members", index, "joined")
    end = _order_key(parse_time(fixture.end), tz) if fixture.end is not None else None
    latest: dict[bool, tuple[tuple[bool, float], str]] = {}  # the latest event so far, per kind of time
    for index, event in enumerate(fixture.events):
        if event.is_reload:
            found.extend(
                (message, where("events", index, *field)) for message, field in _reload_problems(event, index)
            )
        elif event.kind is None:
            found.append((f"events.{index}.kind: missing field 'kind'", where("events", index)))
        else:
            problem = missing(event.kind, event.member, event.group, event.name, event.data)
            if problem is not None:
                found.append((f"events.{index}.{problem[0]}: {problem[1]}", where("events", index)))
        moment = time(event.at, "events", index, "at")
        if moment is None:
            continue
        key = _order_key(moment, tz)
        previous = latest.get(key[0])
        if _before(key, start):
            found.append(
                (
                    f"events.{index}.at: {event.at} is before the start ({fixture.start})",
                    where("events", index, "at"),
                )
            )
        elif event.is_reload and end is not None and _before(end, key):
            found.append(
                (
                    f"events.{index}.at: {event.at} is after the end ({fixture.end}); a reload must happen during the run",
                    where("events", index, "at"),
                )
            )
        elif previous is not None and _before(key, previous[0]):
            found.append(
                (
                    f"events.{index}.at: {event.at} is before the event above it ({previous[1]}); list events in time order",
                    where("events", index, "at"),
                )
            )
        if previous is None or not _before(key, previous[0]):
            latest[key[0]] = (key, event.at)
    reloads = any(event.is_reload for event in fixture.events)
    for index, expectation in enumerate(fixture.expect):
        if expectation.plan_change is not None:
            found.extend(
                (
                    f"expect.{index}.{name}: a plan_change expectation is matched only on "
                    "member, group, at, within, count and never",
                    where("expect", index, name),
                )
                for name in sorted(expectation.model_fields_set - _PLAN_CHANGE_FIELDS)
            )
            if not reloads:
                found.append(
                    (
                        f"expect.{index}.plan_change: no entry of `events` has `reload`, so no plan changes",
                        where("expect", index, "plan_change"),
                    )
                )
        if expectation.at is not None:
            time(expectation.at, "expect", index, "at")
        for side, value in enumerate(expectation.within or ()):
            time(value, "expect", index, "within", side)
    return found


_PLAN_CHANGE_FIELDS = {"plan_change", "member", "group", "at", "within", "count", "never", "note"}
_EVENT_FIELDS = ("kind", "member", "group", "name", "data")


def _reload_problems(event: FixtureEvent, index: int) -> list[tuple[str, tuple[Any, ...]]]:
    """What is wrong with a `reload` entry, each with the field it is about."""
    found = [
        (
            f"events.{index}.{name}: an entry with `reload` loads playbook files and has no {name}; "
            "list the event as an entry of its own",
            (name,),
        )
        for name in _EVENT_FIELDS
        if name in event.model_fields_set
    ]
    files = event.reload_files
    if not files or not all(name.strip() for name in files):
        found.append(
            (f"events.{index}.reload: name the playbook file(s) to load, like welcome.v2.sop", ("reload",))
        )
    return found


def _order_key(moment: dt.datetime, zone_name: str | None) -> tuple[bool, float]:
    """For ordering inside a fixture: (is an instant, seconds). Without the fixture's own zone
    (it defers to the playbook's, unknown here), a naive wall time is comparable only with
    other naive wall times; with it, every time is an instant."""
    if moment.tzinfo is None:
        if zone_name is None:
            return False, moment.replace(tzinfo=dt.UTC).timestamp()
        moment = moment.replace(tzinfo=ZoneInfo(zone_name))
    return True, moment.timestamp()


def _before(key: tuple[bool, float], other: tuple[bool, float]) -> bool:
    """Whether `key` is certainly earlier than `other` (never, for incomparable times)."""
    return key[0] == other[0] and key[1] < other[1]


def line_of(fixture: Fixture, *path: Any) -> int:
    """The line of a field of a parsed fixture (1 if unknown)."""
    return position_of(fixture, *path)[0]


def position_of(fixture: Fixture, *path: Any) -> tuple[int, int]:
    """The line and column of a field of a parsed fixture ((1, 1) if unknown)."""
    lines: dict[tuple[Any, ...], tuple[int, int]] = getattr(fixture, "_lines", {})
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path, (1, 1))
