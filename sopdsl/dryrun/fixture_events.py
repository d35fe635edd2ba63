"""A fixture's events checked as the live service checks each event it is sent (`live.intake`):
a custom event the playbooks do not declare, a declared field missing, misspelt or of the wrong
type, an order's amount given as text. The dry run used to replay such events, so a fixture
could pass on events the service refuses (and a misspelt field made a template fail only at run
time, in Jinja's words). Its members' attributes are checked as the admin API checks a member's
(a birthday of `3月8日` armed no greeting, and the test said nothing); what no playbook can read
(an undeclared attribute or counter, an order's `amout`) is warned of, since a `never` about it
held whatever the playbooks did.

Input: a parsed fixture and the plans it runs (the first, and any it reloads: an event that one of
them takes is taken). Output: a located SOP602 diagnostic per event refused, which stops the
fixture as its other mistakes do.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sopdsl.diagnostics import Diagnostic, Severity, closest, did_you_mean
from sopdsl.dryrun.fixture_limits import limit_problems
from sopdsl.dryrun.fixture_models import Fixture
from sopdsl.dryrun.fixtures import position_of
from sopdsl.engine.records import MemberRecord
from sopdsl.kinds import BUILTIN_COUNTERS, MEMBER_RECORD_FIELDS, WIRE_EVENTS
from sopdsl.live.intake import EventError, intake
from sopdsl.live.member_records import RecordError, check_attributes
from sopdsl.plan import Plan
from sopdsl.source import Span


def event_problems(fixture: Fixture, plans: Sequence[Plan], path: str) -> list[Diagnostic]:
    """A diagnostic for each event of `fixture` that none of `plans` would take live, and each
    member or group field the live service refuses (`path`: the fixture as shown)."""
    found: list[Diagnostic] = []
    for index, event in enumerate(fixture.events):
        if event.kind is None:
            continue  # a reload
        raw: dict[str, Any] = {"kind": event.kind, "data": dict(event.data), "time": 0}
        for key in ("member", "group", "name"):
            value = getattr(event, key)
            if value is not None:
                raw[key] = value
        refusal: EventError | None = None
        for plan in plans:
            try:
                intake(raw, plan.declarations, 0)
            except EventError as exc:
                refusal = refusal or exc
            else:
                refusal = None
                break
        if refusal is None:
            continue
        field = refusal.field or "kind"
        where = position_of(fixture, "events", index, *field.split("."))
        hint = "the live service refuses such an event, so the dry run does too"
        needed = field.removeprefix("data.")
        written = closest(needed, [str(k) for k in event.data if k != needed]) if field != needed else None
        if written is not None and needed not in event.data:
            # `days` for a declared `day`: say which key was meant, where the key was written.
            where = position_of(fixture, "events", index, "data", written)
            hint = f"the event gives '{written}': did you mean '{needed}'? ({hint})"
        found.append(
            Diagnostic(
                "SOP602",
                Severity.ERROR,
                f"events.{index}.{field}: {refusal.reason}",
                Span.point(path, *where),
                hint,
            )
        )
    return found + _member_problems(fixture, plans, path) + limit_problems(fixture, path)


def _member_problems(fixture: Fixture, plans: Sequence[Plan], path: str) -> list[Diagnostic]:
    """A diagnostic for each attribute of a fixture member whose value is not of the type the
    playbooks declare: the admin API refuses such a member, so the dry run does too."""
    types = [{name: a.type.value for name, a in plan.declarations.attributes.items()} for plan in plans]
    found: list[Diagnostic] = []
    for index, member in enumerate(fixture.members):
        for name, value in member.attributes.items():
            refusals: list[RecordError] = []
            for declared in types:
                try:
                    check_attributes(MemberRecord(id=member.id, attributes={name: value}), declared)
                except RecordError as exc:
                    refusals.append(exc)
            if refusals and len(refusals) == len(types):
                found.append(
                    Diagnostic(
                        "SOP602",
                        Severity.ERROR,
                        f"members.{index}.{refusals[0]}",
                        Span.point(path, *position_of(fixture, "members", index, "attributes", name)),
                        "the live service refuses such a member, so the dry run does too",
                    )
                )
    return found


def unread_fields(fixture: Fixture, plans: Sequence[Plan], path: str) -> list[Diagnostic]:
    """A warning for each attribute or counter of a fixture member, and each data field of a
    built-in event, that no playbook can read: a misspelling (`brithday`, `amout`) left the run
    without the value, and an expectation about it held or failed for that reason alone."""
    attributes = {name for plan in plans for name in plan.declarations.attributes}
    counters = {name for plan in plans for name in plan.declarations.counters} | set(BUILTIN_COUNTERS)
    found: list[Diagnostic] = []

    def warn(field: str, where: tuple[Any, ...], message: str, hint: str | None) -> None:
        found.append(
            Diagnostic(
                "SOP602",
                Severity.WARNING,
                f"{field}: {message}",
                Span.point(path, *position_of(fixture, *where)),
                hint,
            )
        )

    for index, member in enumerate(fixture.members):
        for section, known, what in (
            ("attributes", attributes, "attribute"),
            ("counters", counters, "counter"),
        ):
            for name in getattr(member, section):
                if name in known:
                    continue
                hint = did_you_mean(name, known) or (
                    f"the member's own `{name}:` field"
                    if name in MEMBER_RECORD_FIELDS
                    else f"declare it: {what} {name}"
                )
                warn(
                    f"members.{index}.{section}.{name}",
                    ("members", index, section, name),
                    f"the playbooks declare no {what} '{name}', so nothing reads this value",
                    hint,
                )
    for index, event in enumerate(fixture.events):
        spec = WIRE_EVENTS.get(event.kind or "")
        if spec is None or event.kind == "custom":
            continue  # a reload, or a custom event: its fields are checked against its declaration
        readable = {*spec.fields, *_ALSO_READ.get(event.kind or "", ()), "name"}
        for name in event.data:
            if name not in readable:
                article = "an" if str(event.kind)[0] in "aeiou" else "a"
                warn(
                    f"events.{index}.data.{name}",
                    ("events", index, "data", name),
                    f"{article} {event.kind} event takes no data field '{name}', so nothing reads it "
                    f"(it takes: {', '.join(sorted(readable))})",
                    did_you_mean(str(name), readable),
                )
    return found


def fixture_warnings(fixture: Fixture, plans: Sequence[Plan], path: str) -> list[Diagnostic]:
    """Every warning about what a fixture gives the run: groups nobody declares, values no playbook
    reads, members an event names only by a near miss of another's id."""
    return [
        *unknown_groups(fixture, plans, path),
        *unread_fields(fixture, plans, path),
        *misspelt_members(fixture, path),
    ]


def misspelt_members(fixture: Fixture, path: str) -> list[Diagnostic]:
    """A warning for each member an event names who is neither a fixture member nor came in by a
    join, when the id is a near miss of one who is: `afneg` ordering made a new customer, and
    afeng, whose order it was, was nudged all the same."""
    known = {member.id for member in fixture.members}
    found: list[Diagnostic] = []
    told: set[str] = set()
    for index, event in enumerate(fixture.events):
        member = event.member
        if member is None or member in known or member in told:
            continue
        if event.kind == "join":
            known.add(member)
            continue
        close = closest(member, known)
        if close is None or close.rstrip(_DIGITS) == member.rstrip(_DIGITS):
            continue  # a new contact (an order in private chats), or the next of m1, m2, m3
        told.add(member)
        found.append(
            Diagnostic(
                "SOP602",
                Severity.WARNING,
                f"events.{index}.member: '{member}' is no fixture member and has not joined, so this "
                "event is taken as a new member's",
                Span.point(path, *position_of(fixture, "events", index, "member")),
                f"did you mean '{close}'?",
            )
        )
    return found


_DIGITS = "0123456789"

# Data fields the engine reads of a built-in event besides those a playbook reads as `event.F`
# (and `name`, which names a member first seen in any event): a join's group nickname.
_ALSO_READ = {"join": ("nickname",)}


def unknown_groups(fixture: Fixture, plans: Sequence[Plan], path: str) -> list[Diagnostic]:
    """A warning for each group an event or a member names that neither the fixture's `groups`
    nor the playbooks declare: the run makes it on the spot, without tags, so a playbook scoped
    to tagged groups never runs in it (a typo, `g2` for `g1`, went unnoticed)."""
    declared = {group.id for group in fixture.groups}
    for plan in plans:
        declared.update(plan.declarations.groups)
    found: list[Diagnostic] = []
    told: set[str] = set()
    places = [
        (group, ("members", index, "groups"), f"members.{index}.groups")
        for index, member in enumerate(fixture.members)
        for group in member.group_ids
    ] + [
        (event.group, ("events", index, "group"), f"events.{index}.group")
        for index, event in enumerate(fixture.events)
        if event.kind is not None and event.group is not None
    ]
    for group, where, field in places:
        if group in declared or group in told:
            continue
        told.add(group)
        found.append(
            Diagnostic(
                "SOP602",
                Severity.WARNING,
                f"{field}: group '{group}' is not in the fixture's groups or the playbooks': the run "
                "makes it without tags, so playbooks for tagged groups never run in it",
                Span.point(path, *position_of(fixture, *where)),
                did_you_mean(group, declared) or "list it under `groups:` with its tags",
            )
        )
    return found


def unknown_timeline_groups(
    path: Path, shown: str, named: Iterable[str], declared: set[str]
) -> list[Diagnostic]:
    """A warning for each group a JSONL timeline's members or events `named` that neither its
    header nor the playbooks declare (as `unknown_groups` for a YAML fixture), located at the
    first line naming it: found after the run, so the stream is read again only when one is."""
    unknown = [group for group in named if group not in declared]
    if not unknown:
        return []
    spelt = {group: (json.dumps(group), json.dumps(group, ensure_ascii=False)) for group in unknown}
    first: dict[str, int] = {}
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            for group, forms in spelt.items():
                if group not in first and any(form in line for form in forms):
                    first[group] = number
            if len(first) == len(spelt):
                break
    return [
        Diagnostic(
            "SOP602",
            Severity.WARNING,
            f"group '{group}' is not in the header's groups or the playbooks': the run makes it "
            "without tags, so playbooks for tagged groups never run in it",
            Span.point(shown, first.get(group, 1), 1),
            did_you_mean(group, declared) or 'list it in the header\'s "groups" with its tags',
        )
        for group in unknown
    ]
