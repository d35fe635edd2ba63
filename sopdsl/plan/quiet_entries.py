"""Calendar entries and date triggers the quiet hours always hold back (SOP705): an entry, or an
`on member.birthday at 23:00`, whose sends fire inside the policy's quiet hours every time it
fires, which the engine holds, without a word, until the quiet hours end.

Input: a `Plan` and the local days to sample its calendars from. Output: warnings at the entries'
and triggers' lines. A calendar's times are known before it runs, so this is decided by firing
each entry as the engine does (`agenda.firings`) and asking the engine's own quiet-hours rule
(`quiet.quiet_until`); a date trigger's time of day is fixed, so each day of the sample is taken
as the member's date, its instant made as the engine makes it (`engine/trigger_dates.py`). A send
made on an event has no time known ahead, and is never judged.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sopdsl import lang
from sopdsl.diagnostics import Diagnostic, Severity
from sopdsl.plan import CompiledEntry, CompiledPlaybook, Instr, Plan, timeutil
from sopdsl.plan.agenda import firings, in_scope
from sopdsl.plan.quiet import QUIET_KINDS, quiet_until
from sopdsl.source import Span

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

# A year from each start: every weekday, month and daylight-saving change of a zone shows.
_SAMPLE_DAYS = 366
_SAMPLE = dt.timedelta(days=_SAMPLE_DAYS)
# Steps after which the flow goes on later, not at the firing: their sends are not judged.
_LATER = frozenset({"wait", "wait_for", "assign"})


def held_entries(plan: Plan, starts: Sequence[dt.date]) -> list[Diagnostic]:
    """A warning at each calendar entry whose sends the quiet hours hold back every time it fires,
    in each zone it runs in (sampled a year from each of `starts`)."""
    program = plan.declarations
    policy = program.policy
    if policy.quiet_start is None or policy.quiet_end is None:
        return []
    found: list[Diagnostic] = []
    for pb in plan.playbooks:
        zones = _zones(plan, pb) if pb.schedule else {}
        for entry in pb.schedule:
            templates = _sent_at_once(entry.code)
            if not templates:
                continue
            rule = program.calendars[entry.when.calendar].rule if entry.when.calendar else entry.when.inline
            assert rule is not None
            held: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {}
            for zone in zones:
                tz = timeutil.zone(zone)
                times = _always_held(pb, entry, rule, policy, tz, starts)
                if times:
                    held[zone] = times
            if held:
                found.append(_warning("calendar entry", entry.loc, templates, held, zones, policy))
    return found


def held_date_triggers(plan: Plan, starts: Sequence[dt.date]) -> list[Diagnostic]:
    """A warning at each date trigger (`on member.birthday at 23:00`, `on 1 day before
    member.coupon_due at 22:30`) whose playbook's sends at once the quiet hours hold back on
    every day its date may be (sampled a year from each of `starts`), in each zone it runs in."""
    program = plan.declarations
    policy = program.policy
    if policy.quiet_start is None or policy.quiet_end is None:
        return []
    # The engine makes a date trigger's instant in the file's zone, and holds its sends in the
    # zone of the member's group (the file's where there is none): as `acting._policy` does.
    made_in = timeutil.zone(program.timezone)
    days = sorted({start + dt.timedelta(days=n) for start in starts for n in range(_SAMPLE_DAYS)})
    found: list[Diagnostic] = []
    for pb in plan.playbooks:
        dated = [t for t in pb.triggers if isinstance(t, lang.OnDateOffset | lang.OnAnniversary)]
        templates = _sent_at_once(pb.code) if dated else []
        if not templates:
            continue
        zones = _zones(plan, pb)
        for trigger in dated:
            dues = [timeutil.resolve(timeutil.date_wall(trigger, day), made_in) for day in days]
            held = {zone: times for zone in zones if (times := _held(dues, policy, timeutil.zone(zone)))}
            if held:
                found.append(_warning("date trigger", trigger.loc, templates, held, zones, policy))
    return found


def _held(dues: Iterable[int], policy: lang.Policy, tz: ZoneInfo) -> list[tuple[dt.datetime, dt.datetime]]:
    """Each instant (local time, in order, once) with the local time the quiet hours let it out,
    if every one falls in quiet hours; empty if one does not, or if there is none."""
    held: dict[int, int] = {}
    for due in dues:
        until = quiet_until(policy, due, tz)
        if until is None:
            return []  # one goes out as planned: the time written is not the mistake
        held[due] = until
    return [(timeutil.local(due, tz), timeutil.local(held[due], tz)) for due in sorted(held)]


def _zones(plan: Plan, pb: CompiledPlaybook) -> dict[str, list[str]]:
    """The zones a playbook's entries fire in, each with its declared groups: a group's own zone
    or the file's (the file's alone for private chats, or when no declared group is in scope)."""
    program = plan.declarations
    zones: dict[str, list[str]] = {}
    if pb.scope.kind != "private":
        for group in program.groups.values():
            if in_scope(pb.scope, group):
                zones.setdefault(group.timezone or program.timezone, []).append(group.name)
    return zones or {program.timezone: []}


def _sent_at_once(code: Sequence[Instr]) -> list[str]:
    """The templates an entry sends at the instant it fires (before any step it waits at), or none
    when it also does something there that quiet hours do not hold: then its time is chosen for
    that (a nightly count at 23:59, K6) and the send held to the morning is the policy at work."""
    sent: list[str] = []
    for instr in code:
        if instr.op in _LATER:
            break
        action = instr.action
        if action is None:
            continue
        if not isinstance(action, lang.SendStep) or action.kind not in QUIET_KINDS:
            return []
        if action.template not in sent:
            sent.append(action.template)
    return sent


def _always_held(
    pb: CompiledPlaybook,
    entry: CompiledEntry,
    rule: lang.CalendarRule,
    policy: lang.Policy,
    tz: ZoneInfo,
    starts: Sequence[dt.date],
) -> list[tuple[dt.datetime, dt.datetime]]:
    """Each firing (local time) with the local time the quiet hours let it out, if every firing
    sampled falls in quiet hours; empty if one does not, or if none fires."""
    # A generator: the first firing outside quiet hours ends the search (a calendar may fire often).
    dues = (due for start in starts for due in firings(pb, entry.when, rule, tz, start, start + _SAMPLE))
    return _held(dues, policy, tz)


def _warning(
    what_fires: str,
    loc: str,
    templates: list[str],
    held: dict[str, list[tuple[dt.datetime, dt.datetime]]],
    zones: dict[str, list[str]],
    policy: lang.Policy,
) -> Diagnostic:
    firing = [pair for pairs in held.values() for pair in pairs]
    times = sorted({f"{due:%H:%M}" for due, _ in firing})
    if len(firing) == 1:
        when = f"fires at {times[0]} on {firing[0][0]:%Y-%m-%d}"
    else:
        shown = ", ".join(times[:4]) + (", …" if len(times) > 4 else "")
        when = f"fires at {shown} every time"
    quiet = f"{policy.quiet_start:%H:%M} - {policy.quiet_end:%H:%M}"
    days = {(until.date() - due.date()).days for due, until in firing}
    until = f"{policy.quiet_end:%H:%M}" + (
        " the next day" if days == {1} else " the same day" if days == {0} else ""
    )
    what = (
        f"its send of '{templates[0]}'"
        if len(templates) == 1
        else "its sends of " + ", ".join(f"'{t}'" for t in templates)
    )
    where = ""
    if len(held) < len(zones):  # held in some zones only: say which groups
        groups = [name for zone in sorted(held) for name in zones[zone]]
        others = [name for zone in sorted(zones) if zone not in held for name in zones[zone]]
        where = f" in {', '.join(groups)} ({', '.join(sorted(held))}; not in {', '.join(others)})"
    return Diagnostic(
        "SOP705",
        Severity.WARNING,
        f"this {what_fires} {when}{where}, inside the quiet hours {quiet}: "
        f"the engine holds {what} until {until}",
        _span(loc),
        f"schedule it outside {quiet}, or at {policy.quiet_end:%H:%M} if that is when it should "
        "arrive, so the file says when it goes out; the policy lets no send through quiet hours",
    )


def _span(loc: str) -> Span:
    # A plan keeps `path:line` (as `analysis` reads it); `analyse` widens it to the line's text.
    path, _, line = loc.rpartition(":")
    return Span.point(path or loc, int(line) if line.isdigit() else 1)
