"""The language's closed vocabularies and built-in fields, shared by the checker and the engine.

Pure data: weekday and unit words, the fields every member and group has, and the payload
fields of each built-in event kind.
"""

from __future__ import annotations

from sopdsl.checker.model import EventKind, Unit, ValueType
from sopdsl.kinds import BUILTIN_COUNTERS, EVENTS, GROUP_FIELDS, MEMBER_FIELDS

__all__ = [
    "ABSENCE_KINDS",
    "BUILTIN_COUNTERS",
    "COUPON_FIELDS",
    "EVENT_FIELDS",
    "GROUP_FIELDS",
    "MEMBER_FIELDS",
    "TYPES",
    "UNITS",
    "WEEKDAYS",
    "WINDOW_KINDS",
]

WEEKDAYS: dict[str, tuple[int, ...]] = {
    "monday": (0,),
    "tuesday": (1,),
    "wednesday": (2,),
    "thursday": (3,),
    "friday": (4,),
    "saturday": (5,),
    "sunday": (6,),
    "day": (0, 1, 2, 3, 4, 5, 6),
    "weekday": (0, 1, 2, 3, 4),
    "weekend": (5, 6),
    "周一": (0,),
    "周二": (1,),
    "周三": (2,),
    "周四": (3,),
    "周五": (4,),
    "周六": (5,),
    "周日": (6,),
    "每天": (0, 1, 2, 3, 4, 5, 6),
    "工作日": (0, 1, 2, 3, 4),
    "周末": (5, 6),
}

UNITS: dict[str, Unit] = {}
for _unit in Unit:
    UNITS[_unit.value] = _unit
    UNITS[_unit.value + "s"] = _unit
UNITS.update(
    {
        "分钟": Unit.MINUTE,
        "小时": Unit.HOUR,
        "天": Unit.DAY,
        "周": Unit.WEEK,
        "月": Unit.MONTH,
        "年": Unit.YEAR,
    }
)

TYPES: dict[str, ValueType] = {t.value: t for t in ValueType}

# The built-in fields and event payloads, from the registry of kinds (sopdsl/kinds.py).
EVENT_FIELDS: dict[EventKind, dict[str, ValueType]] = {kind: spec.fields for kind, spec in EVENTS.items()}

# `no order for 365 days`: the absence words and the event kind each one watches.
ABSENCE_KINDS: dict[str, EventKind] = {
    "message": EventKind.MESSAGE,
    "messages": EventKind.MESSAGE,
    "order": EventKind.ORDER,
    "orders": EventKind.ORDER,
    "invite": EventKind.INVITE,
    "invites": EventKind.INVITE,
}

WINDOW_KINDS: dict[str, EventKind] = {
    "messages": EventKind.MESSAGE,
    "orders": EventKind.ORDER,
    "invites": EventKind.INVITE,
    "violations": EventKind.REPORT,
    "joins": EventKind.JOIN,
    "leaves": EventKind.LEAVE,
}

COUPON_FIELDS: dict[str, ValueType] = {
    "name": ValueType.TEXT,
    "title": ValueType.TEXT,
    "worth": ValueType.NUMBER,
    "expires_at": ValueType.DATETIME,
    "code": ValueType.TEXT,
}
