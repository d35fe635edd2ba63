"""Members and groups as the admin API receives them: JSON objects, CSV rows and JSONL lines, checked
into the engine's records.

Input: a decoded JSON object (one member or group), or a body streamed line by line (CSV with a
header row, or JSONL: one member object a line). Output: `MemberRecord`s and `GroupRecord`s, or
for each bad line a located problem (`line 3: joined_at: ...`), so an import of 100,000 members
reports every bad row and stores the good ones. Nothing here touches the store.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import zoneinfo
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    FiniteFloat,
    StrictBool,
    StrictStr,
    ValidationError,
    field_validator,
)

from sopdsl.engine.records import GroupRecord, MemberRecord
from sopdsl.live.bodies import BodyError, decode_json
from sopdsl.live.intake import surrogate
from sopdsl.live.record_limits import RecordError as RecordError  # where the admin and tests find it
from sopdsl.live.record_limits import check_group, check_member, label
from sopdsl.plan import timeutil

CSV_LISTS = ("tags", "groups")  # CSV cells holding several values, separated by `;`
MAX_LINE = 64 * 1024  # bytes of one CSV or JSONL line
LAST_EPOCH = 10**11  # epoch seconds pass this in the year 5138 (events take no later time either)


class MemberIn(BaseModel):
    """A member as the admin API takes it (the `MemberRecord` fields; times as epoch or ISO 8601)."""

    model_config = ConfigDict(extra="forbid")

    name: StrictStr = ""
    nickname: StrictStr = ""
    tags: list[StrictStr] = []
    attributes: dict[StrictStr, Any] = {}
    # Finite: "nan" and "inf" (in a CSV cell, or as JSON text) were taken, and the member was then
    # answered as `NaN`, which is no JSON, and counted from nowhere.
    counters: dict[StrictStr, FiniteFloat] = {}
    groups: list[StrictStr] = []
    joined_at: int | StrictStr | None = None
    referrer: StrictStr | None = None
    channel: StrictStr | None = None
    contact: StrictBool = False
    owner: StrictStr | None = None
    # History before the plan took effect (docs/testing.md, history at the start): per group.
    group_joined_at: dict[StrictStr, int | StrictStr] = {}
    group_last_message_at: dict[StrictStr, int | StrictStr] = {}
    last_order_at: int | StrictStr | None = None

    @field_validator("joined_at", "last_order_at", "group_joined_at", "group_last_message_at", mode="before")
    @classmethod
    def _no_bool(cls, value: Any) -> Any:
        # A lax `int` takes true as 1: a member joined in 1970 rather than a mistake named.
        if isinstance(value, bool) or (
            isinstance(value, dict) and any(type(v) is bool for v in value.values())
        ):
            raise ValueError("a time is epoch seconds or an ISO 8601 time, not true or false")
        return value

    @field_validator("counters", mode="before")
    @classmethod
    def _no_bool_counter(cls, value: Any) -> Any:
        # A lax float takes false as 0.0.
        if isinstance(value, dict) and any(type(v) is bool for v in value.values()):
            raise ValueError("a counter is a number, not true or false")
        return value


class GroupIn(BaseModel):
    """A group as the admin API takes it (the `GroupRecord` fields)."""

    model_config = ConfigDict(extra="forbid")

    name: StrictStr | None = None
    tags: list[StrictStr] = []
    timezone: StrictStr | None = None
    operator: StrictStr | None = None
    owner: StrictStr | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                zoneinfo.ZoneInfo(value)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    f"unknown time zone '{value}' (use an IANA name like Asia/Shanghai)"
                ) from None
        return value


def member_from(member_id: str, body: Any, zone: str) -> MemberRecord:
    """The record of a member from a JSON object; raise `RecordError` naming the field at fault."""
    given = _model(MemberIn, body)
    fields = given.model_dump()
    fields["joined_at"] = _epoch(given.joined_at, zone)
    fields["last_order_at"] = _epoch(given.last_order_at, zone, "last_order_at")
    for name in ("group_joined_at", "group_last_message_at"):
        fields[name] = {g: _epoch(v, zone, f"{name}.{g}") for g, v in getattr(given, name).items()}
    fields["tags"], fields["groups"] = tuple(given.tags), tuple(given.groups)
    record = MemberRecord(id=member_id, **fields)
    check_member(record)  # as `Runtime.add_member` checks it
    return record


def check_attributes(record: MemberRecord, types: Mapping[str, str]) -> None:
    """Raise `RecordError` for an attribute the playbooks declare whose value is not of its type:
    a birthday of 1988-13-40 arms no greeting, and nobody would be told (others pass as given)."""
    for name, value in record.attributes.items():
        wanted = types.get(name)
        if wanted is None or value is None or _of_type(value, wanted):
            continue
        shown = json.dumps(value, ensure_ascii=False)
        example = _EXAMPLES.get(wanted, "")
        raise RecordError(
            f"attributes.{name}: {shown} is not a {wanted}, which the playbooks declare it to be{example}",
            f"attributes.{name}",
        )


_EXAMPLES = {"date": " (like 1990-03-10)", "datetime": " (like 2026-03-01T09:00:00+08:00)"}


def _of_type(value: Any, wanted: str) -> bool:
    """Whether an attribute's value reads as the declared type, as the engine reads it."""
    if wanted == "number":
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if wanted == "bool":
        return isinstance(value, bool)
    if wanted == "text":
        return isinstance(value, str)
    if wanted == "datetime" and isinstance(value, int) and not isinstance(value, bool):
        return True  # epoch seconds (a date as a number, 19900310, is a mistake: refused)
    if not isinstance(value, str):
        return False
    try:
        if wanted == "date":
            dt.date.fromisoformat(value[:10])  # as `on member.birthday` reads it
        else:
            dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def group_from(group_id: str, body: Any) -> GroupRecord:
    """The record of a group from a JSON object; raise `RecordError` naming the field at fault."""
    given = _model(GroupIn, body)
    record = GroupRecord(id=group_id, **(given.model_dump() | {"tags": tuple(given.tags)}))
    check_group(record)  # as `Runtime.add_group` checks it
    return record


def _model(kind: type[MemberIn] | type[GroupIn], body: Any) -> Any:
    if not isinstance(body, dict):
        raise RecordError("expected a JSON object")
    broken = surrogate(body)
    if broken is not None:  # no store can encode it: refused here, by field, not by the journal
        raise RecordError(
            f"{broken}: holds a lone surrogate (half of a character); send the text itself", broken
        )
    try:
        return kind.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = f"unknown field; fields: {', '.join(kind.model_fields)}"
        raise RecordError(f"{field}: {message}", field) from None


def _epoch(value: int | str | None, zone: str, field: str = "joined_at") -> int | None:
    if value is None:
        return None
    epoch = value if isinstance(value, int) else _parsed(value, zone, field)
    # Stored beyond these, a time could not be shown (datetime's years end at 9999) and every
    # later look at the member failed.
    if epoch is None or not 0 <= epoch < LAST_EPOCH:
        raise RecordError(
            f"{field}: {value!r} is out of range: a time from 1970 to the year 5138 (epoch seconds)", field
        )
    return epoch


def _parsed(value: str, zone: str, field: str) -> int | None:
    """Epoch seconds of an ISO 8601 time (the plan's zone when it has no offset); None if out of range."""
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise RecordError(
            f"{field}: {value!r} is not epoch seconds or an ISO 8601 time like 2026-03-01T09:00:00+08:00",
            field,
        ) from None
    try:
        if moment.tzinfo is None:
            return timeutil.resolve(moment, timeutil.zone(zone))
        return timeutil.to_epoch(moment)
    except (OverflowError, ValueError):  # a wall time at the calendar's ends, shifted past them
        return None


async def lines_of(stream: AsyncIterator[bytes]) -> AsyncIterator[tuple[int, str | RecordError]]:
    """The body's lines as text, numbered from 1, as they arrive (never the whole body at once);
    a line that is not UTF-8 as the error to report for it (the lines after it are still read)."""
    # The line being read, in the pieces it came in, joined once its end comes. Added to one
    # bytes object and split again at every chunk, a line sent a byte a packet cost the event
    # loop its whole length at each byte (0.6 s of CPU for one line of 60 KB).
    parts: list[bytes] = []
    size = 0
    number = 0
    async for chunk in stream:
        if b"\n" not in chunk:
            parts.append(chunk)
            size += len(chunk)
        else:
            first, *whole, rest = chunk.split(b"\n")
            for raw in (b"".join([*parts, first]), *whole):
                number += 1
                yield number, _text(raw, number)
            parts, size = [rest], len(rest)
        if size > MAX_LINE:
            raise RecordError(f"line {number + 1}: longer than {MAX_LINE} bytes")
    pending = b"".join(parts)
    if pending.strip():
        yield number + 1, _text(pending, number + 1)


def _text(raw: bytes, number: int) -> str | RecordError:
    try:
        text = raw.decode("utf-8").rstrip("\r")
    except UnicodeDecodeError:
        return RecordError("not UTF-8: save the file as UTF-8")
    # Excel's "CSV UTF-8" starts the file with a byte order mark, which is no part of the header.
    return text.removeprefix("\ufeff") if number == 1 else text


def jsonl_member(line: str, zone: str) -> MemberRecord:
    """A member from one JSONL line: an object with `id` and the member's fields."""
    try:  # within a body's limits: nesting, long numbers, infinity
        body = decode_json(line.encode("utf-8"))
    except BodyError as exc:
        raise RecordError(f"the line {exc.message.removeprefix('the body ')}") from None
    if not isinstance(body, dict) or not isinstance(body.get("id"), str):
        raise RecordError("expected an object with an `id` (the member's id)", "id")
    member_id = body.pop("id")
    return member_from(member_id, body, zone)


# The member fields that are maps, which no CSV cell holds: what to write instead.
_CSV_MAPS = {
    "attributes": "give each attribute a column, `attr.NAME`",
    "counters": "give each counter a column, `counter.NAME`",
    "group_joined_at": "import members with it as JSON lines (application/x-ndjson)",
    "group_last_message_at": "import members with it as JSON lines (application/x-ndjson)",
}
CSV_FIELDS = tuple(name for name in MemberIn.model_fields if name not in _CSV_MAPS)  # a column each


def _known_column(column: str) -> None:
    """Raise `RecordError` for a header cell that names no column of a member: once, at the header,
    not at every row after it."""
    if column == "id" or column in CSV_FIELDS:
        return
    for prefix, what in (("attr.", "attribute"), ("counter.", "counter")):
        if column.startswith(prefix):
            if column == prefix:
                raise RecordError(f"column `{column}` names no {what}: write `{prefix}NAME`", column)
            # Once, here: not again at every row the column holds a value in.
            shown = json.dumps(column[:40] + ("…" if len(column) > 40 else ""), ensure_ascii=False)
            label(column.removeprefix(prefix), column, f"the {what} name of column `{shown[1:-1]}`")
            return
    if column in _CSV_MAPS:
        raise RecordError(
            f"column `{column}` would hold a map, which a cell cannot: {_CSV_MAPS[column]}", column
        )
    raise RecordError(
        f"column `{column}` is no member field: write `attr.{column}` for an attribute or "
        f"`counter.{column}` for a counter (fields: id, {', '.join(CSV_FIELDS)})",
        column,
    )


class CsvMembers:
    """Members from CSV lines: a header row, then one member a row.

    Columns: `id`, the member fields (`tags` and `groups` hold several values separated by `;`,
    `contact` is `true` or `false`), `attr.NAME` for an attribute and `counter.NAME` for a counter.
    """

    def __init__(self, zone: str, types: dict[str, str] | None = None) -> None:
        self.zone = zone
        self.types = types or {}  # attribute name -> declared type ("number", "bool", ...)
        self.header: list[str] | None = None

    def take(self, line: str) -> MemberRecord | None:
        """The member of a row, or None for the header row and blank lines."""
        if not line.strip():
            return None
        [cells] = list(csv.reader([line]))
        if self.header is None:
            header = [c.strip() for c in cells]
            if "id" not in header:
                raise RecordError("the header row has no `id` column", "id")
            for column in header:
                _known_column(column)
            self.header = header
            return None
        if len(cells) != len(self.header):
            raise RecordError(f"{len(cells)} cells, but the header has {len(self.header)}")
        row = dict(zip(self.header, cells, strict=True))
        body: dict[str, Any] = {"attributes": {}, "counters": {}}
        for column, cell in row.items():
            if column == "id" or cell == "":
                continue
            for key, value in self._cell(column, cell):
                if key in ("attributes", "counters"):
                    body[key].update(value)
                else:
                    body[key] = value
        member_id = row["id"]
        return member_from(member_id, body, self.zone)

    def _cell(self, column: str, cell: str) -> Iterator[tuple[str, Any]]:
        if column.startswith("attr."):
            yield "attributes", {column[5:]: self._typed(column, cell)}
        elif column.startswith("counter."):
            try:
                number = float(cell)
            except ValueError:
                raise RecordError(f"{column}: {cell!r} is not a number", column) from None
            if not math.isfinite(number):  # `nan`, `inf`, `1e999`: no count, and no JSON either
                raise RecordError(f"{column}: {cell!r} is not a finite number", column)
            yield "counters", {column[8:]: number}
        elif column in CSV_LISTS:
            yield column, [v.strip() for v in cell.split(";") if v.strip()]
        elif column == "contact":
            yield column, cell.strip().lower() in ("true", "1", "yes")
        elif column in ("joined_at", "last_order_at") and cell.strip().isdigit():
            yield column, int(cell)
        else:
            yield column, cell

    def _typed(self, column: str, cell: str) -> Any:
        """A CSV cell as the playbooks declared the attribute: a number, a yes/no, else text."""
        kind = self.types.get(column[5:])
        if kind == "number":
            try:
                return int(cell) if cell.strip().lstrip("-").isdigit() else float(cell)
            except ValueError:
                raise RecordError(f"{column}: {cell!r} is not a number, as declared", column) from None
        if kind == "bool":
            return cell.strip().lower() in ("true", "1", "yes")
        return cell
