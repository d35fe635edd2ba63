"""Fixture timelines: YAML files beside a playbook with groups, members, events and expectations.

Input: YAML text. Output: a validated `Fixture`, or a `FixtureError` whose diagnostics name the
file, line and field. Times without an offset are local to the fixture's time zone. An entry of
`events` may load another version of the playbooks instead (`reload: FILE.sop`): a plan change.
Every problem of a file is reported at once, at the value it is about. The reader is bounded
(see the limits below): nesting depth, values repeated by aliases, the years and the span of a run.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import re
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import ValidationError, field_validator

from sopdsl.checker.model import Model
from sopdsl.diagnostics import Diagnostic, Severity, did_you_mean
from sopdsl.engine.events import missing
from sopdsl.engine.records import GroupRecord, MemberRecord
from sopdsl.errors import FixtureError
from sopdsl.source import Source, Span

ActionKind = Literal["send", "tag", "untag", "kick", "grant", "invite", "task", "call", "dissolve"]
EventKindName = Literal[
    "join", "leave", "message", "order", "invite", "report", "tag", "untag", "rename", "custom", "task_done"
]


class FixtureGroup(Model):
    """A group present at the start: a `GroupRecord` as a fixture spells it."""

    id: str
    name: str | None = None
    tags: list[str] = []
    timezone: str | None = None
    operator: str | None = None
    owner: str | None = None

    def record(self) -> GroupRecord:
        """The group as the engine and the runtime take it."""
        return GroupRecord(self.id, self.name, tuple(self.tags), self.timezone, self.operator, self.owner)


class FixtureMember(Model):
    """A member present at the start: a `MemberRecord` as a fixture spells it (`joined` is a time
    in the fixture's zone, not epoch seconds; `tests/engine/test_records.py` holds the fields equal)."""

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
    owner: str | None = None  # the contact's owner (跟进人)

    def record(self, joined_at: int | None) -> MemberRecord:
        """The member as the engine and the runtime take it (`joined` read by the caller, in its zone)."""
        return MemberRecord(
            id=self.id,
            name=self.name or self.id,
            nickname=self.nickname,
            tags=tuple(self.tags),
            attributes=dict(self.attributes),
            counters=dict(self.counters),
            groups=tuple(self.groups),
            joined_at=joined_at,
            referrer=self.referrer,
            channel=self.channel,
            contact=self.contact,
            owner=self.owner,
        )


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


# Limits on what a dry run reads (see docs/testing.md): beyond them a fixture or timeline gets a
# located diagnostic naming the limit, never an overflow, a runaway run or a traceback.
FIRST_YEAR, LAST_YEAR = 1970, 2200  # the years a time in a fixture or timeline may be in
MAX_SPAN_YEARS = 20  # from the start to the end (or the last event) of one dry run
MAX_DEPTH = 100  # lists and mappings inside each other in a YAML fixture
MAX_ALIAS_VALUES = 10_000  # values YAML aliases (`*name`) may repeat, in all, in one fixture

_MONTHS = "January February March April May June July August September October November December".split()
_DATE_TIME = re.compile(r"(\d{1,4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{1,2}))?")


def _ordinal(day: int) -> str:
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _why_not(value: str) -> str:
    """What is wrong with text that is not a fixture time, as precisely as it can be said."""
    match = _DATE_TIME.match(value)
    if match is None:
        return f"'{value}' is not a time like 2026-03-01 09:00"
    year, month, day = (int(part) for part in match.group(1, 2, 3))
    if not FIRST_YEAR <= year <= LAST_YEAR:
        return _year_problem(value, year)
    if not 1 <= month <= 12:
        return f"'{value}': there is no month {month} (months are 01 to 12)"
    days = calendar.monthrange(year, month)[1]
    if not 1 <= day <= days:
        if day == 0:
            return f"'{value}': there is no day 0 (days start at 01)"
        leap = f" ({year} is not a leap year)" if month == 2 and day == 29 else ""
        return f"'{value}': {_MONTHS[month - 1]} has no {_ordinal(day)}{leap}"
    if match.group(4) is not None:
        hour, minute = int(match.group(4)), int(match.group(5))
        if hour > 23 or minute > 59:
            return f"'{value}': {match.group(4)}:{match.group(5)} is not a time of day (00:00 to 23:59)"
    return f"'{value}' is not a time like 2026-03-01 09:00"


def _year_problem(value: object, year: int) -> str:
    return f"'{value}': the year {year} is outside the years a dry run covers ({FIRST_YEAR} to {LAST_YEAR})"


def known_zone(name: object) -> bool:
    """Whether `name` is an IANA time zone name this machine knows."""
    if not isinstance(name, str):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a path
        return False
    return True


def parse_time(text: str) -> dt.datetime:
    """A fixture time: `2026-03-01 09:00`, `2026-03-01T09:00:00+08:00` or a bare date (midnight),
    in the years FIRST_YEAR to LAST_YEAR. Raises ValueError saying what is wrong."""
    value = str(text).strip()
    try:
        if len(value) == 10:
            moment = dt.datetime.combine(dt.date.fromisoformat(value), dt.time())
        else:
            moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(_why_not(value)) from None
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise ValueError(_year_problem(value, moment.year))
    return moment


def span_end(start: dt.datetime) -> dt.datetime:
    """The latest time a dry run starting at `start` may reach: MAX_SPAN_YEARS later (a 29
    February start ends on 1 March)."""
    try:
        return start.replace(year=start.year + MAX_SPAN_YEARS)
    except ValueError:
        return start.replace(year=start.year + MAX_SPAN_YEARS, month=3, day=1)


def span_problem(value: object, start: object) -> str:
    """The message for a time past the end of the span a dry run may cover."""
    return (
        f"{value} is more than {MAX_SPAN_YEARS} years after the start ({start}); "
        f"a dry run covers at most {MAX_SPAN_YEARS} years"
    )


class _Refused(yaml.MarkedYAMLError):
    """A YAML fixture past one of the reader's limits (depth, aliases)."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps times as text, so they are read in the fixture's zone, and refuses
    documents nested deeper than MAX_DEPTH or whose aliases repeat more than MAX_ALIAS_VALUES
    values (a "billion laughs" file), before anything is built from them."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._sizes: dict[int, int] = {}  # a collection node's values, its aliases' counted in
        self._open: set[str] = set()  # anchors whose node is still being read
        self._repeated = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        mark: Any = event.start_mark
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open:
                raise _Refused(
                    problem=f"the alias *{event.anchor} is inside its own anchor &{event.anchor}",
                    problem_mark=mark,
                )
            node = super().compose_node(parent, index)
            self._repeated += self._sizes.get(id(node), 1)
            if self._repeated > MAX_ALIAS_VALUES:
                raise _Refused(
                    problem=f"aliases repeat more than {MAX_ALIAS_VALUES:,} values in all; "
                    "write the values out instead",
                    problem_mark=mark,
                )
            return node
        if self._depth >= MAX_DEPTH:
            raise _Refused(
                problem=f"lists and mappings are nested more than {MAX_DEPTH} deep here",
                problem_mark=mark,
            )
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self._open.add(anchor)
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
            self._open.discard(anchor or "")
        sizes = self._sizes
        if isinstance(node, yaml.MappingNode):
            sizes[id(node)] = 1 + sum(sizes.get(id(k), 1) + sizes.get(id(v), 1) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            sizes[id(node)] = 1 + sum(sizes.get(id(item), 1) for item in node.value)
        return node


_Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

Path_ = tuple[Any, ...]
Where = dict[Path_, tuple[int, int]]


class _Reader:
    """YAML nodes to plain values, with where each key and value is; a key or value that cannot
    be read is noted (with its place) and left out, so the rest of the file is still checked."""

    def __init__(self, loader: _Loader, source: Source) -> None:
        self.loader = loader
        self.source = source
        self.keys: Where = {}  # each mapping entry's key; a list item's start
        self.values: Where = {}  # each value's start
        self.problems: list[tuple[str, tuple[int, int]]] = []
        self.broken: set[Path_] = set()  # where a noted value was left out

    def at(self, mark: Any) -> tuple[int, int]:
        """A YAML mark's line and column as the source counts them (YAML also breaks lines at
        U+0085, U+2028 and U+2029; the source, and so the caret, only at newlines)."""
        return self.source.position(mark.index)

    def read(self, node: yaml.Node, path: Path_) -> Any:
        self.keys[path] = self.values[path] = self.at(node.start_mark)
        if isinstance(node, yaml.MappingNode):
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                at = self.at(key_node.start_mark)
                shown = ".".join(str(p) for p in path)
                if not isinstance(key_node, yaml.ScalarNode):
                    what = "a list" if isinstance(key_node, yaml.SequenceNode) else "a mapping"
                    self.problems.append(
                        (f"{shown + ': ' if shown else ''}a key is a word, not {what} (`? [a, b]`)", at)
                    )
                    continue  # the entry is left out; the rest of the mapping is still checked
                key = self._scalar(key_node, path, key=True)
                if key is _UNREADABLE:
                    continue
                if not isinstance(key, str | int | float | bool | None):  # `!!set k`, `!!timestamp ...`
                    self.problems.append((f"{shown + ': ' if shown else ''}a key is a word, not {key!r}", at))
                    continue
                result[key] = self.read(value_node, (*path, key))
                self.keys[(*path, key)] = at
                if result[key] is _UNREADABLE:
                    del result[key]
            return result
        if isinstance(node, yaml.SequenceNode):
            items = [self.read(item, (*path, i)) for i, item in enumerate(node.value)]
            return [None if item is _UNREADABLE else item for item in items]
        return self._scalar(node, path)

    def _scalar(self, node: yaml.Node, path: Path_, key: bool = False) -> Any:
        try:
            value = self.loader.construct_object(node)
        except Exception as exc:
            # An explicit tag the text does not fit (`!!float abc`, `!!int ''`, `!!timestamp x`),
            # or a tag with no constructor (`<<` outside a mapping, `!!python/...`).
            shown = ".".join(str(p) for p in path)
            problem = getattr(exc, "problem", None) or str(exc) or type(exc).__name__
            self.problems.append(
                (
                    f"{shown + ': ' if shown else ''}cannot read '{node.value}' as {node.tag}: {problem}",
                    self.at(node.start_mark),
                )
            )
            if not key:
                self.broken.add(path)
            return _UNREADABLE
        if isinstance(value, str) and _SURROGATE.search(value):
            # `"\ud800"` escapes half of a UTF-16 pair: no text can hold it, nor can any bot send it.
            shown = ".".join(str(p) for p in path)
            self.problems.append(
                (
                    f"{shown + ': ' if shown else ''}the text holds a lone surrogate (an escape such as "
                    "'\\ud800' that is half of a character); write the character itself",
                    self.at(node.start_mark),
                )
            )
            # Kept, with the halves replaced, so no follow-on error hides this one.
            return _SURROGATE.sub("\ufffd", value)
        return value


_SURROGATE = re.compile("[\ud800-\udfff]")
_UNREADABLE = object()  # a value the reader could not build (its problem is noted)


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
    found = list(reader.problems)
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


def _lookup(where: Where, path: Path_) -> tuple[int, int]:
    while path and path not in where:
        path = path[:-1]
    return where.get(path, (1, 1))


_PLACEHOLDER_START = f"{FIRST_YEAR}-01-01 00:00"


def _validate(
    data: dict[Any, Any], reader: _Reader, found: list[Any]
) -> tuple[Fixture | None, dict[str, list[int]], bool]:
    """The fixture, with what pydantic refuses noted in `found` and left out so the rest can still
    be checked: the top-level field, or the list entry, each error is in. Also returns, per list,
    the index in the file of each entry kept, and whether `start` is known."""
    try:
        return Fixture.model_validate(data), {}, True
    except ValidationError as exc:
        errors = exc.errors()
    # A wrong `reload` fails both forms of the union: say it once, at the bad element of a
    # list if there is one, else at the value.
    mapped = [_reload_loc(tuple(error["loc"])) for error in errors]
    said = {loc[:3] for loc in mapped if len(loc) == 4 and loc[2] == "reload"}
    dropped: dict[str, set[int]] = {}
    top: set[Any] = set()
    for error, loc in zip(errors, mapped, strict=True):
        if len(loc) >= 2 and loc[0] in _SECTIONS and isinstance(loc[1], int):
            dropped.setdefault(str(loc[0]), set()).add(loc[1])
        elif loc:
            top.add(loc[0])
        if loc in said or any(loc[:i] in reader.broken for i in range(len(loc) + 1)):
            continue  # said already
        said.add(loc)
        message, hint = _explain(error)
        if loc != tuple(error["loc"]):
            message = "a playbook file name" if len(loc) == 4 else "a playbook file name, or a list of them"
            hint = "like J3.v2.sop or [a.v2.sop, b.v2.sop]"
            where = _lookup(reader.keys, loc)
        elif error["type"] in ("extra_forbidden", "missing") or (len(loc) > 2 and loc[2] == "reload"):
            where = _lookup(reader.keys, loc)  # the misspelt key, or the entry that lacks one
        else:
            where = _lookup(reader.values, loc)
        field = ".".join(str(p) for p in loc)
        found.append((f"{field}: {message}", where, hint))
    pruned = {key: value for key, value in data.items() if key not in top}
    kept: dict[str, list[int]] = {}
    for section, bad in dropped.items():
        items = pruned.get(section)
        if isinstance(items, list):
            kept[section] = [i for i in range(len(items)) if i not in bad]
            pruned[section] = [items[i] for i in kept[section]]
    start_known = "start" not in top
    if not start_known:
        pruned["start"] = _PLACEHOLDER_START
    try:
        return Fixture.model_validate(pruned), kept, start_known
    except ValidationError:
        return None, kept, start_known


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
    if not (amount.isascii() and amount.isdigit()) or per is None:
        raise ValueError(f"'{text}' is not a duration like 2 hours (minutes, hours or days)")
    if len(amount) > 9 or int(amount) * per > MAX_SPAN_YEARS * 366 * 86400:
        raise ValueError(f"'{text}' is longer than {MAX_SPAN_YEARS} years, the most a dry run covers")
    return int(amount) * per


def _problems(
    fixture: Fixture,
    lines: Where,
    values: Where | None = None,
    kept: dict[str, list[int]] | None = None,
    start_known: bool = True,
) -> list[tuple[str, tuple[int, int]]]:
    """What pydantic cannot see: times, zones, durations, each event's fields, the events' order,
    the span of the run. `kept` holds, for a list some entries of which were left out, the index
    in the file of each entry given; without `start_known`, nothing is measured from the start."""
    found: list[tuple[str, tuple[int, int]]] = []
    kept = kept or {}

    def where(*path: Any) -> tuple[int, int]:
        return _lookup(lines, path)

    def value_at(*path: Any) -> tuple[int, int]:
        return _lookup(values if values is not None else lines, path)

    def numbered(section: str, items: list[Any]) -> list[tuple[int, Any]]:
        return list(zip(kept.get(section, range(len(items))), items, strict=True))

    def time(value: str, *path: Any) -> dt.datetime | None:
        try:
            return parse_time(value)
        except ValueError as exc:
            found.append((f"{'.'.join(map(str, path))}: {exc}", value_at(*path)))
            return None

    def too_late(moment: dt.datetime, value: str, *path: Any) -> bool:
        if horizon is None or _order_key(moment, tz)[1] <= horizon:
            return False
        found.append((f"{'.'.join(map(str, path))}: {span_problem(value, fixture.start)}", value_at(*path)))
        return True

    def zone(value: str | None, *path: Any) -> bool:
        if value is None:
            return False
        if known_zone(value):
            return True
        found.append(
            (
                f"{'.'.join(map(str, path))}: unknown time zone '{value}' (use an IANA name like Asia/Shanghai)",
                value_at(*path),
            )
        )
        return False

    tz = fixture.timezone if zone(fixture.timezone, "timezone") else None
    for index, group in numbered("groups", fixture.groups):
        zone(group.timezone, "groups", index, "timezone")
    if fixture.staff_completes_tasks_after is not None:
        try:
            parse_duration(fixture.staff_completes_tasks_after)
        except ValueError as exc:
            found.append((f"staff_completes_tasks_after: {exc}", value_at("staff_completes_tasks_after")))
    first = parse_time(fixture.start)
    # Without a known start, nothing is before it or too far after it.
    start = _order_key(first, tz) if start_known else (False, -math.inf)
    horizon = _order_key(span_end(first), tz)[1] if start_known else None
    end = None
    if fixture.end is not None:
        last = parse_time(fixture.end)
        if _before(_order_key(last, tz), start):
            found.append((f"end: {fixture.end} is before the start ({fixture.start})", value_at("end")))
        elif not too_late(last, fixture.end, "end"):
            end = _order_key(last, tz)
    for index, member in numbered("members", fixture.members):
        if member.joined is not None:
            time(member.joined, "members", index, "joined")
    latest: dict[bool, tuple[tuple[bool, float], str]] = {}  # the latest event so far, per kind of time
    for index, event in numbered("events", fixture.events):
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
        if moment is None or too_late(moment, event.at, "events", index, "at"):
            continue
        key = _order_key(moment, tz)
        previous = latest.get(key[0])
        if _before(key, start):
            found.append(
                (
                    f"events.{index}.at: {event.at} is before the start ({fixture.start})",
                    value_at("events", index, "at"),
                )
            )
        elif event.is_reload and end is not None and _before(end, key):
            found.append(
                (
                    f"events.{index}.at: {event.at} is after the end ({fixture.end}); a reload must happen during the run",
                    value_at("events", index, "at"),
                )
            )
        elif previous is not None and _before(key, previous[0]):
            found.append(
                (
                    f"events.{index}.at: {event.at} is before the event above it ({previous[1]}); list events in time order",
                    value_at("events", index, "at"),
                )
            )
        if previous is None or not _before(key, previous[0]):
            latest[key[0]] = (key, event.at)
    # An entry left out (what is wrong with it is said) may have been a reload.
    reloads = "events" in kept or any(event.is_reload for event in fixture.events)
    for index, expectation in numbered("expect", fixture.expect):
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
            moment = time(expectation.at, "expect", index, "at")
            if moment is not None and expectation.action is None and expectation.plan_change is None:
                too_late(moment, expectation.at, "expect", index, "at")  # a state check runs the clock
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
