"""Events at the live runtime's door: validated, normalised to JSON, or refused with a clear error.

Input: a mapping (decoded JSON from a bot) or an `Event`. Output: the journal entry for it (plain
JSON, so the engine sees exactly what a replay will see), or `EventError` naming the field.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from typing import Any

import msgspec
from pydantic import ValidationError

from sopdsl import lang
from sopdsl.engine.events import Event, missing
from sopdsl.errors import EngineError
from sopdsl.kinds import WIRE_EVENTS
from sopdsl.limits import CONTROLS as _CONTROLS
from sopdsl.limits import DATA_NAMES, JOIN_IDS, event_id_problem, event_name_problem
from sopdsl.limits import MAX_ID as MAX_ID  # re-exported, as the live runtime's modules find them here
from sopdsl.limits import MAX_NAME as MAX_NAME
from sopdsl.limits import SURROGATES as _SURROGATES
from sopdsl.limits import control_in as control_in
from sopdsl.limits import name_problem as name_problem
from sopdsl.limits import surrogate as surrogate
from sopdsl.limits import too_long as too_long
from sopdsl.limits import with_control as with_control
from sopdsl.live.incoming import Incoming
from sopdsl.plan import Declarations, timeutil

_TYPES: dict[lang.ValueType, tuple[type, ...]] = {
    lang.ValueType.TEXT: (str,),
    lang.ValueType.NUMBER: (int, float),
    lang.ValueType.BOOL: (bool,),
    lang.ValueType.DATE: (str,),
    lang.ValueType.DATETIME: (str,),
}
# Payload fields of built-in events with the type a playbook reads them as (`event.has_image`),
# from the one registry; a join also names the member (the engine keeps `name` and `nickname`).
_BUILTIN_DATA: dict[str, dict[str, lang.ValueType]] = {
    spec.wire: dict(spec.fields) for spec in WIRE_EVENTS.values() if spec.fields
}
_BUILTIN_DATA["join"] |= {"name": lang.ValueType.TEXT, "nickname": lang.ValueType.TEXT}


class EventError(EngineError, ValueError):
    """An event the runtime refused; `field` names the part at fault (None for the whole event).

    In a batch, `index` is the event's place and the message starts with it; `reason` is the
    message without it.
    """

    def __init__(self, message: str, field: str | None = None, index: int | None = None) -> None:
        super().__init__(message if index is None else f"event {index}: {message}")
        self.reason = message
        self.field = field
        self.index = index


def intake(raw: Mapping[str, Any] | Event, program: Declarations, now: int) -> dict[str, Any]:
    """The journal entry for an event, or `EventError`; `now` is its time when it states none."""
    if type(raw) is dict:
        body = _plain(raw, program, now)
        if body is not None:
            return body
    return _careful(raw, program, now)


_FIELDS = frozenset(Incoming.model_fields)
_TEXT_FIELDS = ("kind", "member", "group", "name", "id")


def _plain(raw: dict[str, Any], program: Declarations, now: int) -> dict[str, Any] | None:
    """The journal entry of an everyday event, read without pydantic (a service takes thousands a
    second); None for anything else, which `_careful` checks and explains.

    Everyday: known fields only, text fields as text free of lone surrogates, no time or whole
    epoch seconds, and data an object of plain values. For these the entry is the one
    `_careful` gives (`tests/live/test_intake.py` compares the two).
    """
    if not raw.keys() <= _FIELDS:
        return None
    for key in _TEXT_FIELDS:
        value = raw.get(key)
        if value is not None and (
            type(value) is not str
            or (not value.isascii() and _SURROGATES.search(value))
            or len(value) > MAX_ID
            or _CONTROLS.search(value)
        ):
            return None
    event_id = raw.get("id")
    if event_id is not None and not event_id.strip():
        return None
    kind = raw.get("kind")
    when = raw.get("time", now)
    if kind is None or when is None or type(when) is not int or abs(when) >= _MILLISECONDS:
        return None
    data = raw.get("data", _NO_DATA)
    if type(data) is not dict or not all(_plain_key(k) and _plain_value(v) for k, v in data.items()):
        return None
    member, group, name = raw.get("member"), raw.get("group"), raw.get("name")
    if missing(kind, member, group, name, data) is not None:
        return None
    body: dict[str, Any] = {"op": "event", "kind": kind, "time": when}
    body.update(
        (key, value)
        for key, value in (("member", member), ("group", group), ("name", name), ("id", raw.get("id")))
        if value is not None
    )
    checked = _data(kind, name, data, program, plain=True)
    if checked:
        body["data"] = checked
    return body


_NO_DATA: dict[str, Any] = {}


def _plain_key(key: Any) -> bool:
    """Whether a data key is text without lone surrogates."""
    return type(key) is str and (key.isascii() or not _SURROGATES.search(key))


def _plain_value(value: Any) -> bool:
    """Whether a data value is a number, a boolean, null or text without lone surrogates."""
    kind = type(value)
    if kind is str:
        return value.isascii() or not _SURROGATES.search(value)
    return kind is int or kind is bool or value is None or (kind is float and math.isfinite(value))


def _careful(raw: Mapping[str, Any] | Event, program: Declarations, now: int) -> dict[str, Any]:
    """`intake` for any input: every check, and an `EventError` that says what is wrong."""
    if isinstance(raw, Event):
        raw = {k: v for k, v in msgspec.structs.asdict(raw).items() if v is not None and v != {}}
    if not isinstance(raw, Mapping):
        raise EventError(f"an event must be an object, got {type(raw).__name__}")
    broken = surrogate(dict(raw))
    if broken is not None:
        raise EventError(
            f"event field '{broken}' holds a lone surrogate (an escape such as \\ud800 that is half of "
            "a character); send the character itself",
            broken,
        )
    try:
        event = Incoming.model_validate(dict(raw))
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(part) for part in first["loc"]]
        # A union's errors name the member type tried (`time.int`): keep the field's own path.
        field = ".".join(loc[:2] if loc and loc[0] == "data" else loc[:1]) or None
        if first["type"] == "extra_forbidden":
            message = f"unknown event field '{field}'; an event has {', '.join(Incoming.model_fields)}"
        elif field == "time":
            shown = json.dumps(first.get("input"), ensure_ascii=False, default=str)
            message = f"event field 'time' should be epoch seconds or an ISO 8601 time, got {shown}"
        else:
            message = f"event field '{field}': {first['msg'].lower()}"
        raise EventError(message, field) from None
    for key in _TEXT_FIELDS:
        wrong = event_id_problem(key, getattr(event, key) or "")
        if wrong is not None:
            raise EventError(wrong, key)
    if event.id is not None and not event.id.strip():
        # Taken as an id, "" would make every later event sent with it a duplicate, dropped.
        raise EventError("event field 'id' is empty: send the event's own id, or leave the field out", "id")
    problem = missing(event.kind, event.member, event.group, event.name, event.data)
    if problem is not None:
        raise EventError(problem[1], problem[0])
    when = now if event.time is None else _epoch(event.time, program.timezone)
    data = _data(event.kind, event.name, event.data, program)
    body: dict[str, Any] = {"op": "event", "kind": event.kind, "time": when}
    for key in ("member", "group", "name", "id"):
        value = getattr(event, key)
        if value is not None:
            body[key] = value
    if data:
        body["data"] = data
    return body


_MILLISECONDS = 10**11  # epoch seconds pass this in the year 5138; epoch milliseconds did in 1973


def _epoch(value: float | str, zone: str) -> int:
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise EventError(f"event field 'time': {value} is not a time", "time")
        if abs(value) >= _MILLISECONDS:
            raise EventError(
                f"event field 'time': {value} looks like milliseconds; send epoch seconds", "time"
            )
        return int(value)
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise EventError(
            f"event field 'time': {value!r} is not epoch seconds or an ISO 8601 time like "
            "2026-03-01T09:00:00+08:00",
            "time",
        ) from None
    if moment.tzinfo is None:
        return timeutil.resolve(moment, timeutil.zone(zone))
    return timeutil.to_epoch(moment)


def _data(
    kind: str, name: str | None, data: dict[str, Any], program: Declarations, *, plain: bool = False
) -> dict[str, Any]:
    """The payload checked against what the engine or the custom event's declaration expects
    (`plain`: its values are known to be JSON's own, as `_plain_value` finds them)."""
    if plain or not data:
        # JSON gives such values back as they are: the round trip below would copy them only.
        plain_data = dict(data)
    else:
        try:
            plain_data = json.loads(json.dumps(data, ensure_ascii=False, default=_date))
        except (TypeError, ValueError) as exc:
            raise EventError(f"event field 'data' is not plain JSON data: {exc}", "data") from None
    checked = _checked(kind, name, plain_data, program)
    if checked:  # on both paths, so `_plain` and `_careful` refuse a name alike
        for key in DATA_NAMES:
            value = checked.get(key)
            problem = event_name_problem(f"data.{key}", value) if type(value) is str else None
            if problem is not None:
                raise EventError(problem, f"data.{key}")
    return checked


def _checked(kind: str, name: str | None, plain: dict[str, Any], program: Declarations) -> dict[str, Any]:
    if kind == "custom":
        declared = program.events.get(str(name))
        if declared is None:
            known = ", ".join(sorted(program.events)) or "none"
            raise EventError(f"unknown custom event {name!r}; the playbooks declare: {known}", "name")
        for field, vtype in declared.fields.items():
            if field not in plain:
                raise EventError(
                    f"custom event {name!r} needs data field '{field}' ({vtype.value})", f"data.{field}"
                )
            _typed(plain[field], _TYPES[vtype], f"data.{field}", vtype.value)
        extra = sorted(set(plain) - set(declared.fields))
        if extra:
            raise EventError(
                f"custom event {name!r} has no data field '{extra[0]}'; it declares: "
                f"{', '.join(declared.fields) or 'none'}",
                f"data.{extra[0]}",
            )
        return dict(plain)
    expected = _BUILTIN_DATA.get(kind, {})
    for field, vtype in expected.items():
        if field in plain and plain[field] is not None:
            _typed(plain[field], _TYPES[vtype], f"data.{field}", vtype.value)
    if kind == "join":
        for key in JOIN_IDS:  # held to an id's limits (`sopdsl.limits`)
            value = plain.get(key)
            problem = event_id_problem(f"data.{key}", value, in_data=True) if isinstance(value, str) else None
            if problem is not None:
                raise EventError(problem, f"data.{key}")
    if kind == "task_done" and not isinstance(plain.get("task"), str):
        raise EventError("a task_done event needs data.task: the key of the task action", "data.task")
    return dict(plain)


def _typed(value: Any, types: tuple[type, ...], field: str, wanted: str) -> None:
    ok = isinstance(value, types) and not (bool not in types and isinstance(value, bool))
    if ok and isinstance(value, float) and not math.isfinite(value):
        ok = False
    if not ok:
        raise EventError(
            f"event field '{field}' should be {wanted}, got {json.dumps(value, ensure_ascii=False)}", field
        )


def _date(value: Any) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON data")
