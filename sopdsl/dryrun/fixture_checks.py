"""Fixture validation: what pydantic refuses, as located messages with `did you mean` hints,
and what it cannot see (times, zones, durations, each event's fields, the events' order, the span
of the run). Every problem of a file is found at once (see `sopdsl.dryrun.fixtures`)."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from typing import Any

from pydantic import ValidationError

from sopdsl.diagnostics import did_you_mean
from sopdsl.dryrun.fixture_models import (
    EVENT_KINDS,
    Expectation,
    Fixture,
    FixtureEvent,
    FixtureGroup,
    FixtureMember,
)
from sopdsl.dryrun.fixture_reach import past_the_run, state_check_problems
from sopdsl.dryrun.fixture_times import (
    FIRST_YEAR,
    earlier,
    known_zone,
    order_key,
    parse_duration,
    parse_time,
    span_end,
    span_problem,
)
from sopdsl.dryrun.fixture_yaml import Where, _lookup, _Reader
from sopdsl.dryrun.history import HISTORY_KINDS
from sopdsl.engine.events import missing
from sopdsl.lang import Model

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


# What an entry of each list looks like, for an entry that is not a mapping (`- send welcome to m1`).
_ENTRY_SHAPES = {
    "groups": "a group is a mapping, like {id: g1, tags: [normal]}",
    "members": "a member is a mapping, like {id: m1, groups: [g1]}",
    "events": "an event is a mapping, like {at: 2026-03-02 10:00, kind: join, member: m1, group: g1}",
    "expect": "an expectation is a mapping, like {action: send, template: welcome, member: m1}",
}


# What a field takes when its value has the wrong shape (a word where a list goes, say): said
# with an example, since pydantic's "Input should be a valid dictionary" means little to ops.
_SHAPES: dict[str, tuple[str, str]] = {  # field: (what it takes, an example)
    "tags": ("a list", "tags: [normal, vip]"),
    "tagged": ("a list", "tagged: [vip]"),
    "not_tagged": ("a list", "not_tagged: [vip]"),
    "groups": ("a list", "groups: [g1, g2]"),
    "mentions": ("a list", "mentions: [m1]"),
    "attachments": ("a list", "attachments: [image]"),
    "attributes": ("a mapping", "attributes: {city: 北京, level: 3}"),
    "counters": ("a mapping of numbers", "counters: {orders: 2}"),
    "data": ("a mapping", "data: {name: 阿峰}"),
    "args": ("a mapping", "args: {level: high}"),
    "within": ("two times, from and to", "within: [2026-03-02 22:00, 2026-03-03 07:59]"),
    "count": ("a whole number", "count: 1"),
    "never": ("true or false", "never: true"),
    "contact": ("true or false", "contact: true"),
    "seed": ("a whole number", "seed: 7"),
}
_SHAPE_ERRORS = frozenset(
    {
        "list_type", "dict_type", "tuple_type", "int_type", "int_parsing", "int_from_float",
        "bool_type", "bool_parsing", "float_type", "float_parsing", "too_short", "too_long",
    }
)  # fmt: skip


def _explain(error: Any) -> tuple[str, str | None]:
    """A pydantic error as a message and a `did you mean` hint for a misspelt word or field."""
    loc = tuple(error["loc"])
    value = error.get("input")
    field_name = next((str(p) for p in reversed(loc) if isinstance(p, str) and p in _SHAPES), None)
    if field_name is not None and (
        error["type"] in _SHAPE_ERRORS or (field_name == "within" and error["type"] == "missing")
    ):
        what, example = _SHAPES[field_name]
        return f"'{field_name}' takes {what}", f"write it like {example}"
    if error["type"] == "string_type" and loc and isinstance(loc[-1], str):
        if isinstance(value, list | dict):
            return f"'{loc[-1]}' takes one word or text, not a list or a mapping", None
        # YAML reads 10:00 as the number 600, 30 as a number, yes as true: quoting keeps the text.
        return (
            f"'{loc[-1]}' takes text, and YAML read this value as {json.dumps(value)}",
            f"write a date and a time, like {loc[-1]}: 2026-03-02 10:00"
            if loc[-1] in ("at", "start", "end")
            else f'write it in quotes, like {loc[-1]}: "…"',
        )
    if error["type"] == "extra_forbidden" and loc:
        section = _SECTIONS.get(str(loc[0])) if len(loc) > 1 else Fixture
        fields = section.model_fields if section is not None else {}
        word = str(loc[-1])
        if section is FixtureEvent and (kind := _kind_named(word)) is not None:
            # `joins: g1`: the event's kind written as a field.
            return f"unknown field '{word}'", f"an event's kind is a field of its own: kind: {kind}"
        return f"unknown field '{word}'", did_you_mean(word, fields)
    if error["type"] == "model_type" and len(loc) == 2 and loc[0] in _ENTRY_SHAPES:
        return "not a mapping", _ENTRY_SHAPES[str(loc[0])]
    if error["type"] == "missing" and loc:
        return f"missing field '{loc[-1]}'", None
    if error["type"] == "literal_error" and isinstance(value, str):
        expected = re.findall(r"'([^']*)'", str(error.get("ctx", {}).get("expected", "")))
        return f"'{value}' is not one of {', '.join(expected)}", did_you_mean(value, expected)
    return str(error["msg"]).removeprefix("Value error, "), None


_UNINFLECTED = frozenset({"tag", "untag", "custom", "task_done"})  # kinds whose plural is no event's name


def _kind_named(word: str) -> str | None:
    """The event kind a field's name stands for (`joins`, `Join`), if it is one."""
    word = word.lower()
    for kind in EVENT_KINDS:
        if word == kind or (kind not in _UNINFLECTED and word in (f"{kind}s", f"{kind}ed", f"{kind}d")):
            return kind
    return None


def _problems(
    fixture: Fixture,
    lines: Where,
    values: Where | None = None,
    kept: dict[str, list[int]] | None = None,
    start_known: bool = True,
) -> list[tuple[str, tuple[int, int]] | tuple[str, tuple[int, int], str]]:
    """What pydantic cannot see: times, zones, durations, each event's fields, the events' order,
    the span of the run. `kept` holds, for a list some entries of which were left out, the index
    in the file of each entry given; without `start_known`, nothing is measured from the start."""
    found: list[tuple[str, tuple[int, int]] | tuple[str, tuple[int, int], str]] = []  # (message, where, hint)
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
        if horizon is None or order_key(moment, tz)[1] <= horizon:
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
    for index, staff in numbered("staff", fixture.staff):
        if staff.completes_tasks_after is not None:
            try:
                parse_duration(staff.completes_tasks_after)
            except ValueError as exc:
                path = ("staff", index, "completes_tasks_after")
                found.append((f"staff.{index}.completes_tasks_after: {exc}", value_at(*path)))
    first = parse_time(fixture.start)
    # Without a known start, nothing is before it or too far after it.
    start = order_key(first, tz) if start_known else (False, -math.inf)
    horizon = order_key(span_end(first), tz)[1] if start_known else None
    end = None
    if fixture.end is not None:
        last = parse_time(fixture.end)
        if earlier(order_key(last, tz), start):
            found.append((f"end: {fixture.end} is before the start ({fixture.start})", value_at("end")))
        elif not too_late(last, fixture.end, "end"):
            end = order_key(last, tz)
    for index, member in numbered("members", fixture.members):
        for value, path in member.times():
            moment = time(value, "members", index, *path)
            if moment is not None and path != ("joined",) and earlier(start, order_key(moment, tz)):
                found.append(
                    (
                        f"members.{index}.{'.'.join(map(str, path))}: {value} is after the start "
                        f"({fixture.start}); a member's history is what happened before it",
                        value_at("members", index, *path),
                    )
                )
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
        key = order_key(moment, tz)
        previous = latest.get(key[0])
        if earlier(key, start) and (event.is_reload or event.kind not in HISTORY_KINDS):
            # Other events before the start are history: they set state and start nothing.
            what = "a reload" if event.is_reload else f"a {event.kind} event"
            found.append(
                (
                    f"events.{index}.at: {event.at} is before the start ({fixture.start}), and {what} "
                    f"cannot be history (events before the start may be: {', '.join(HISTORY_KINDS)})",
                    value_at("events", index, "at"),
                )
            )
        elif end is not None and earlier(end, key):
            # An event after the end ran all the same, and its actions came after the end too.
            what = "a reload" if event.is_reload else "an event"
            found.append(
                (
                    f"events.{index}.at: {event.at} is after the end ({fixture.end}); {what} must happen during the run",
                    value_at("events", index, "at"),
                )
            )
        elif previous is not None and earlier(key, previous[0]):
            found.append(
                (
                    f"events.{index}.at: {event.at} is before the event above it ({previous[1]}); list events in time order",
                    value_at("events", index, "at"),
                )
            )
        if previous is None or not earlier(key, previous[0]):
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
        if expectation.action is None and expectation.plan_change is None:
            found.extend((m, where("expect", index), h) for m, h in state_check_problems(expectation, index))
        if expectation.at is not None:
            moment = time(expectation.at, "expect", index, "at")
            if moment is not None and expectation.action is None and expectation.plan_change is None:
                too_late(moment, expectation.at, "expect", index, "at")  # a state check runs the clock
            elif moment is not None and _DAY.fullmatch(expectation.at.strip()):
                # `at: 2026-03-09` is 00:00 exactly: a `never` there held whatever that day brought.
                found.append(
                    (
                        f"expect.{index}.at: {expectation.at} is a day, but `at` is one instant (here 00:00)",
                        value_at("expect", index, "at"),
                        f"give the time, like at: {expectation.at} 10:00, or the whole day, like "
                        f"within: [{expectation.at} 00:00, {_next_day(moment)} 00:00]",
                    )
                )
        window = [
            time(value, "expect", index, "within", side)
            for side, value in enumerate(expectation.within or ())
        ]
        if (
            len(window) == 2
            and window[0] is not None
            and expectation.within is not None
            and expectation.within[0].strip() == expectation.within[1].strip()
            and _DAY.fullmatch(expectation.within[0].strip())
        ):
            found.append(
                (
                    f"expect.{index}.within: [{expectation.within[0]}, {expectation.within[1]}] is the one "
                    "instant 00:00, not the day",
                    value_at("expect", index, "within"),
                    f"a window ends where it says: the whole day is within: [{expectation.within[0]}, "
                    f"{_next_day(window[0])}]",
                )
            )
        elif len(window) == 2 and window[0] is not None and window[1] is not None and window[1] < window[0]:
            found.append(
                (
                    f"expect.{index}.within: it ends ({expectation.within[1] if expectation.within else ''}) "
                    "before it begins: give [from, to]",
                    value_at("expect", index, "within"),
                )
            )
        if expectation.count is not None and expectation.count < 0:
            found.append(
                (f"expect.{index}.count: {expectation.count} is below 0", value_at("expect", index, "count"))
            )
        if expectation.count is not None and expectation.never:
            found.append(
                (
                    f"expect.{index}: `count` and `never` together; `never: true` is `count: 0`, give one",
                    where("expect", index, "never"),
                )
            )
    if start_known and (fixture.end is None or end is not None):
        found.extend(past_the_run(fixture, tz, end, start, latest, numbered, value_at))
    for section, items in (("groups", fixture.groups), ("members", fixture.members)):
        first_at: dict[str, int] = {}
        for index, item in numbered(section, items):
            if item.id in first_at:
                # The later entry silently replaced the earlier one.
                line = where(section, first_at[item.id])[0]
                found.append(
                    (
                        f"{section}.{index}.id: '{item.id}' is given already, at line {line}",
                        value_at(section, index, "id"),
                    )
                )
            else:
                first_at[item.id] = index
    return found


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")  # a day alone, which a time reads as its 00:00


def _next_day(moment: dt.datetime) -> str:
    return (moment.date() + dt.timedelta(days=1)).isoformat()


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
