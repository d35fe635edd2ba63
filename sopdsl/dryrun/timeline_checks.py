"""The checks of a JSONL timeline's lines (see `sopdsl.dryrun.timeline`): the problems found, the
thorough checks of a line the typed decoder refused, nesting depth, and times as epoch seconds."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sopdsl.diagnostics import Diagnostic, Severity, did_you_mean
from sopdsl.dryrun.fixture_times import FIRST_YEAR, LAST_YEAR, parse_time, span_end
from sopdsl.engine.events import KINDS, missing
from sopdsl.engine.records import MEMBER_FILE_FIELDS
from sopdsl.errors import FixtureError
from sopdsl.plan import timeutil
from sopdsl.source import Span

_MAX_PROBLEMS = 20
_MEMBER_FIELDS = set(MEMBER_FILE_FIELDS)  # a member line is a `MemberRecord`, `joined` a time
_EVENT_FIELDS = {"at", "kind", "member", "group", "name", "data"}
_KINDS = frozenset(KINDS)


class _Problems:
    """Diagnostics collected while reading, with the file's shown name."""

    def __init__(self, shown: str) -> None:
        self.shown = shown
        self.found: list[Diagnostic] = []

    def add(self, line: int, message: str, hint: str | None = None, code: str = "SOP602") -> None:
        self.found.append(Diagnostic(code, Severity.ERROR, message, Span.point(self.shown, line), hint))

    def full(self) -> bool:
        return len(self.found) >= _MAX_PROBLEMS

    def raise_if_any(self) -> None:
        if self.found:
            raise FixtureError(self.found)


def _unknown(obj: dict[str, Any], allowed: set[str], what: str) -> tuple[str, str | None] | None:
    for key in obj:
        if key not in allowed:
            return f"unknown {what} field '{key}'", did_you_mean(str(key), sorted(allowed))
    return None


def _event_ok(problems: _Problems, obj: dict[str, Any], line: int) -> bool:
    """The slow, thorough check of an event line; True if it is fine after all."""
    add = problems.add
    bad = _unknown(obj, _EVENT_FIELDS, "event")
    if bad:
        add(line, *bad)
        return False
    kind = obj.get("kind")
    if not isinstance(kind, str) or kind not in _KINDS:
        hint = did_you_mean(str(kind), KINDS)
        add(line, f"kind: '{kind}' is not one of {', '.join(KINDS)}", hint)
        return False
    for name in ("member", "group", "name"):
        if obj.get(name) is not None and not isinstance(obj[name], str):
            add(line, f"{name}: {obj[name]!r} is not text")
            return False
    if not isinstance(obj.get("data", {}), dict):
        add(line, "data: an object of payload fields")
        return False
    problem = missing(kind, obj.get("member"), obj.get("group"), obj.get("name"), obj.get("data", {}))
    if problem is not None:
        add(line, f"{problem[0]}: {problem[1]}")
        return False
    return True


def _member_ok(problems: _Problems, obj: dict[str, Any], line: int) -> bool:
    """The thorough check of a member line; True if it is fine after all."""
    add = problems.add
    bad = _unknown(obj, _MEMBER_FIELDS, "member")
    if bad:
        add(line, *bad)
        return False
    member_id = obj.get("id")
    if not isinstance(member_id, str) or not member_id:
        add(line, "id: a member line needs a text 'id' (an event line needs 'kind')")
        return False
    if not isinstance(obj.get("contact", False), bool):
        add(line, f"contact: {obj['contact']!r} is not true or false")
        return False
    for name in ("name", "nickname", "referrer", "channel", "owner"):
        if obj.get(name) is not None and not isinstance(obj[name], str):
            add(line, f"{name}: {obj[name]!r} is not text")
            return False
    if not _texts(obj.get("tags", [])):
        add(line, "tags: a list of texts")
        return False
    groups = obj.get("groups", [])
    if not isinstance(groups, list) or not all(_membership(g) for g in groups):
        add(line, "groups: a list of group ids, or of {id, joined, last_message} objects")
        return False
    for name in ("attributes", "counters"):
        if not isinstance(obj.get(name, {}), dict):
            add(line, f"{name}: an object")
            return False
    for key, value in obj.get("counters", {}).items():
        if not isinstance(value, int | float) or isinstance(value, bool):
            add(line, f"counters.{key}: {value!r} is not a number")
            return False
    if obj.get("joined") is not None and not isinstance(obj["joined"], int | str):
        add(
            line,
            f"joined: {obj['joined']!r} is not a time (epoch seconds, or text like 2026-03-01 09:00)",
        )
        return False
    return True


def _membership(entry: Any) -> bool:
    """Whether a member line's group entry is a group id or `{id, joined, last_message}`."""
    if isinstance(entry, str):
        return True
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("id"), str)
        and set(entry) <= {"id", "joined", "last_message"}
        and all(entry.get(k) is None or isinstance(entry[k], int | str) for k in ("joined", "last_message"))
    )


_TOO_DEEP = object()


def _brackets(raw: bytes) -> int:
    """How many lists and objects a line could open, at most (cheap, in C)."""
    return raw.count(b"[") + raw.count(b"{")


def _depth(value: Any) -> int:
    """How deep lists and objects nest in a decoded value, without recursion."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            todo.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _texts(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# Epoch seconds of the first and the last instant of the years a timeline may be in.
_FIRST = timeutil.to_epoch(dt.datetime(FIRST_YEAR, 1, 1, tzinfo=dt.UTC)) - 14 * 3600
_LAST = timeutil.to_epoch(dt.datetime(LAST_YEAR + 1, 1, 1, tzinfo=dt.UTC)) + 12 * 3600


def _horizon(start: int, tz: ZoneInfo) -> int:
    """The latest instant a run from `start` may reach (see `sopdsl.dryrun.fixtures.MAX_SPAN_YEARS`)."""
    return timeutil.resolve(span_end(timeutil.local(start, tz)), tz)


def _epoch(value: Any, tz: ZoneInfo) -> int:
    """A timeline time: epoch seconds, or text like `2026-03-01 09:00` (local) or with an offset."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not _FIRST <= value <= _LAST:
            hint = " (epoch seconds, not milliseconds)" if _LAST < value <= _LAST * 1000 else ""
            raise ValueError(
                f"{value}{hint} is outside the years a dry run covers ({FIRST_YEAR} to {LAST_YEAR})"
            )
        return value
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a time (epoch seconds, or text like 2026-03-01 09:00)")
    moment = parse_time(value)
    if moment.tzinfo is None:
        return timeutil.resolve(moment, tz)
    return timeutil.to_epoch(moment)
