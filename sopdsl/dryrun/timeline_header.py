"""A JSONL timeline's first line: the header (zone, start, end, seed, groups), read and checked.

Input: the header's raw line and the collected problems (`timeline_checks._Problems`). Output: a
`Header` and the latest instant the run may reach, or the problems raised as `FixtureError`.
`sopdsl.dryrun.timeline` reads the lines after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from sopdsl.dryrun.fixtures import MAX_DEPTH, known_zone, parse_duration, span_problem
from sopdsl.dryrun.timeline_checks import (
    _TOO_DEEP,
    _brackets,
    _depth,
    _epoch,
    _horizon,
    _Problems,
    _text_or_none,
    _texts,
    _unknown,
)
from sopdsl.engine.record_checks import group_problems
from sopdsl.engine.records import GROUP_FIELDS, GroupRecord
from sopdsl.plan import timeutil

FORMAT = "timeline"

_HEADER_FIELDS = {
    "sopdsl",
    "version",
    "description",
    "timezone",
    "start",
    "end",
    "seed",
    "staff_completes_tasks_after",
    "groups",
}
_GROUP_FIELDS = set(GROUP_FIELDS)  # a group of the header is a `GroupRecord`
_json = msgspec.json.Decoder().decode


@dataclass
class Header:
    """The first line: where and when the timeline happens."""

    timezone: str
    start: int
    end: int | None
    seed: int = 0
    task_delay: int | None = None
    description: str | None = None
    groups: list[GroupRecord] = field(default_factory=list)


def decode_any(problems: _Problems, raw: bytes, line: int) -> Any:
    """A line decoded as any JSON (None for a blank line, or one reported as not JSON or too deep)."""
    if not raw.strip():
        return None
    try:
        obj = _json(raw)
    except msgspec.DecodeError as exc:
        problems.add(line, f"line {line} is not JSON: {exc}", code="SOP601")
        return None
    except RecursionError:
        obj = _TOO_DEEP
    if obj is _TOO_DEEP or (_brackets(raw) > MAX_DEPTH and _depth(obj) > MAX_DEPTH):
        problems.add(line, f"line {line} nests lists and objects more than {MAX_DEPTH} deep", code="SOP601")
        return None
    return obj


def read_header(raw: bytes, problems: _Problems, default_zone: str) -> tuple[Header, int]:
    """The header of line 1 and the run's horizon (epoch seconds); raises `FixtureError` with
    every problem of the line."""
    obj = decode_any(problems, raw, 1)
    if obj is None:
        problems.raise_if_any()
        problems.add(1, "the file is empty; line 1 must be the timeline header", code="SOP601")
        problems.raise_if_any()
    if not isinstance(obj, dict) or obj.get("sopdsl") != FORMAT:
        problems.add(
            1,
            'line 1 must be the header: {"sopdsl": "timeline", "start": ..., "groups": [...]}',
            code="SOP601",
        )
        problems.raise_if_any()
    assert isinstance(obj, dict)
    bad = _unknown(obj, _HEADER_FIELDS, "header")
    if bad:
        problems.add(1, *bad)
    zone_name = obj.get("timezone") or default_zone
    if not known_zone(zone_name):
        problems.add(1, f"timezone: unknown time zone '{zone_name}' (use an IANA name like Asia/Shanghai)")
        zone_name = default_zone
    tz = timeutil.zone(str(zone_name))
    start = _header_time(problems, obj.get("start"), "start", tz)
    if obj.get("start") is None:
        problems.add(1, "missing field 'start'" if "start" not in obj else "start: null is not a time")
    end = _header_time(problems, obj.get("end"), "end", tz) if obj.get("end") is not None else None
    if start is not None and end is not None and end < start:
        problems.add(1, f"end: {obj.get('end')} is before the start ({obj.get('start')})")
    horizon = _horizon(start, tz) if start is not None else None
    if horizon is not None and end is not None and end > horizon:
        problems.add(1, f"end: {span_problem(obj.get('end'), obj.get('start'))}")
    seed = obj.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        problems.add(1, f"seed: {seed!r} is not a whole number")
        seed = 0
    delay = None
    if obj.get("staff_completes_tasks_after") is not None:
        try:
            delay = parse_duration(str(obj["staff_completes_tasks_after"]))
        except ValueError as exc:
            problems.add(1, f"staff_completes_tasks_after: {exc}")
    groups: list[GroupRecord] = []
    raw_groups = obj.get("groups", [])
    if not isinstance(raw_groups, list):
        problems.add(1, "groups: a list of {id, tags, ...} objects")
        raw_groups = []
    for index, item in enumerate(raw_groups):
        group = _group(problems, item, index)
        if group is not None:
            groups.append(group)
    problems.raise_if_any()
    assert start is not None and horizon is not None
    header = Header(
        timezone=str(zone_name),
        start=start,
        end=end,
        seed=seed,
        task_delay=delay,
        description=obj.get("description"),
        groups=groups,
    )
    return header, horizon


def _group(problems: _Problems, item: Any, index: int) -> GroupRecord | None:
    where = f"groups.{index}"
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        problems.add(1, f"{where}: a group is an object with a text 'id'")
        return None
    bad = _unknown(item, _GROUP_FIELDS, "group")
    if bad:
        problems.add(1, f"{where}: {bad[0]}", bad[1])
        return None
    zone_name = item.get("timezone")
    if zone_name is not None and not known_zone(zone_name):
        problems.add(1, f"{where}.timezone: unknown time zone '{zone_name}'")
        return None
    tags = item.get("tags", [])
    if not _texts(tags):
        problems.add(1, f"{where}.tags: a list of texts")
        return None
    group = GroupRecord(
        id=item["id"],
        name=_text_or_none(item.get("name")),
        tags=tuple(tags),
        timezone=zone_name,
        operator=_text_or_none(item.get("operator")),
        owner=_text_or_none(item.get("owner")),
    )
    # Held to the live service's limits (an id or a tag over 256 characters, an escape in a name).
    refused = list(group_problems(group))
    for at, problem in refused:
        problems.add(1, f"{where}.{at}: {problem}")
    return None if refused else group


def _header_time(problems: _Problems, value: Any, name: str, tz: ZoneInfo) -> int | None:
    if value is None:
        return None
    try:
        return _epoch(value, tz)
    except ValueError as exc:
        problems.add(1, f"{name}: {exc}")
        return None
