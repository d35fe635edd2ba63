"""The language's closed vocabularies and built-in fields, shared by the checker and the engine.

Pure data: weekday and unit words, the other words the grammar takes as a NAME and the checker
then holds to a closed set (cap nouns and periods, platform limits, playbook options...), the
fields every member and group has, and the payload fields of each built-in event kind. `WORDS`
lists every closed vocabulary once, so the editor's completions offer them all.
"""

from __future__ import annotations

from sopdsl.checker.model import (
    CapNoun,
    CapPeriod,
    CapSubject,
    EventKind,
    Missed,
    OnChange,
    Overflow,
    ValueType,
)
from sopdsl.enums import ATTACHMENT_TYPES
from sopdsl.kinds import BUILTIN_COUNTERS, EVENTS, GROUP_FIELDS, MEMBER_FIELDS
from sopdsl.lang.durations import UNITS  # the one table of unit words, which fixtures read too

__all__ = [
    "ABSENCE_KINDS",
    "APPLY_TO",
    "BUILTIN_COUNTERS",
    "CANNOT",
    "CAP_NOUNS",
    "CAP_PERIODS",
    "CAP_SUBJECTS",
    "COUPON_FIELDS",
    "EVENT_FIELDS",
    "GROUP_FIELDS",
    "MEMBER_FIELDS",
    "MISSED",
    "ON_CHANGE",
    "OVERFLOW",
    "PLATFORM_NOUNS",
    "TASKS",
    "TYPES",
    "UNITS",
    "WEEKDAYS",
    "WINDOW_KINDS",
    "WORDS",
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

# `at most 3 sends per member per day else drop`: what a cap counts, whose, per what, and over it.
CAP_NOUNS: dict[str, CapNoun] = {
    "send": CapNoun.SEND,
    "sends": CapNoun.SEND,
    "kick": CapNoun.KICK,
    "kicks": CapNoun.KICK,
    "coupon": CapNoun.COUPON,
    "coupons": CapNoun.COUPON,
    "invite": CapNoun.INVITE,
    "invites": CapNoun.INVITE,
}
CAP_SUBJECTS: dict[str, CapSubject] = {"member": CapSubject.MEMBER, "group": CapSubject.GROUP}
CAP_PERIODS: dict[str, CapPeriod] = {p.value: p for p in CapPeriod}  # also a draw's `stock 3 per week`
OVERFLOW: dict[str, Overflow] = {o.value: o for o in Overflow}

# `platform { at most 1 message per member per day counting mass, tasks; cannot kick, dissolve }`.
PLATFORM_NOUNS = ("messages", "attachments")
# What a platform may be unable to do for customer groups (WeCom: kick and dissolve).
CANNOT = ("kick", "dissolve", "invite")
TASKS = "tasks"  # in `counting`: the messages staff are asked to send in tasks (manual sends)

# A playbook's options: `apply to new|all members`, `missed skip|run latest`, `on change finish|migrate`.
APPLY_TO: dict[str, bool] = {"new": False, "all": True}
MISSED: dict[str, Missed] = {"skip": Missed.SKIP, "run latest": Missed.RUN_LATEST}
ON_CHANGE: dict[str, OnChange] = {"finish": OnChange.FINISH, "migrate": OnChange.MIGRATE}

# Every closed vocabulary the grammar takes as a NAME, by what it names: the words a playbook may
# write there beside the grammar's own keywords (the editor offers both).
WORDS: dict[str, tuple[str, ...]] = {
    "weekday": tuple(WEEKDAYS),
    "unit": tuple(UNITS),
    "absence": tuple(ABSENCE_KINDS),
    "window": tuple(WINDOW_KINDS),
    "type": tuple(TYPES),
    "cap noun": tuple(CAP_NOUNS),
    "cap subject": tuple(CAP_SUBJECTS),
    "period": tuple(CAP_PERIODS),
    "overflow": tuple(OVERFLOW),
    "platform noun": PLATFORM_NOUNS,
    "platform cannot": CANNOT,
    "counting": (TASKS,),
    "attachment": ATTACHMENT_TYPES,
    "mentioning": ("member",),
    "apply to": tuple(APPLY_TO),
    "missed": tuple(dict.fromkeys(w for option in MISSED for w in option.split())),
    "on change": tuple(ON_CHANGE),
}
