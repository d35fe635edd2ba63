"""The group calendar (群日历): every scheduled entry of a plan per declared group in a date range.

Input: a `Plan` and a local date range. Output: sorted `Slot`s, printable as a table or written
as an iCalendar file. Reads the same calendar arithmetic the engine fires by.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sopdsl import lang
from sopdsl.plan import Plan, timeutil


@dataclass(frozen=True, order=True)
class Slot:
    """One scheduled entry firing: when, in which group, from which playbook, doing what."""

    time: int
    group: str
    playbook: str
    what: str
    loc: str


def _in_scope(
    kind: str, tags: tuple[str, ...], groups: tuple[str, ...], name: str, group_tags: tuple[str, ...]
) -> bool:
    if kind == "all":
        return True
    if kind == "named":
        return name in groups
    if kind == "tagged":
        return not set(tags).isdisjoint(group_tags)
    return False


def agenda(
    plan: Plan, start: dt.date, end: dt.date, groups: Iterable[lang.Group] | None = None
) -> list[Slot]:
    """Every firing of every calendar entry for each declared group (or the `groups` given),
    from `start` up to `end` (exclusive)."""
    program = plan.declarations
    chosen = list(program.groups.values() if groups is None else groups)
    slots: list[Slot] = []
    for compiled in plan.playbooks:
        pb = compiled
        for entry in pb.schedule:
            what = ", ".join(_describe(i.action) for i in entry.code if i.action is not None) or "steps"
            for group in chosen:
                if not _in_scope(pb.scope.kind, pb.scope.tags, pb.scope.groups, group.name, group.tags):
                    continue
                tz = timeutil.zone(group.timezone or program.timezone)
                rule = (
                    program.calendars[entry.when.calendar].rule if entry.when.calendar else entry.when.inline
                )
                assert rule is not None
                after = timeutil.resolve(dt.datetime.combine(start, dt.time()), tz) - 1
                limit = timeutil.resolve(dt.datetime.combine(end, dt.time()), tz)
                while True:
                    due = timeutil.next_fire(rule, entry.when.offsets, entry.when.at, tz, after)
                    if due is None or due >= limit:
                        break
                    slots.append(Slot(due, group.name, pb.name, what, entry.loc))
                    after = due
    return sorted(slots)


def _describe(action: object) -> str:
    kind = getattr(action, "kind", "")
    detail = (
        getattr(action, "template", None) or getattr(action, "coupon", None) or getattr(action, "group", None)
    )
    target = getattr(action, "target", "")
    return f"{kind} {detail or ''} to {target}".replace("  ", " ").strip()


def to_ics(slots: list[Slot], plan: Plan) -> str:
    """The slots as an iCalendar (RFC 5545) file, one event per slot, in UTC."""
    stamp = "19700101T000000Z"  # fixed so the file is reproducible
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//sopdsl//group calendar//ZH", "CALSCALE:GREGORIAN"]
    for slot in slots:
        begin = dt.datetime.fromtimestamp(slot.time, dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        uid = f"{plan.content_hash[:12]}-{slot.playbook}-{slot.group}-{slot.time}@sopdsl"
        summary = f"{slot.playbook}: {slot.what}".replace(",", "\\,").replace(";", "\\;")
        lines += [
            "BEGIN:VEVENT",
            f"UID:{uid}",
            f"DTSTAMP:{stamp}",
            f"DTSTART:{begin}",
            f"SUMMARY:{summary}",
            f"LOCATION:{slot.group}",
            f"DESCRIPTION:{slot.loc}",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"
