"""Checks that need the compiled plan: playbooks that trigger each other in a loop, a content mix
below its declared minimum (scenario K4), calendars bound to exceed a cap, sends on an event
that a cap with `else drop` can drop, and calendar entries and date triggers the quiet hours
always hold (`quiet_entries.py`).

Input: a `Plan`. Output: diagnostics located at the playbook or policy lines involved.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import replace
from typing import TYPE_CHECKING

from sopdsl import lang
from sopdsl.diagnostics import Diagnostic, Severity
from sopdsl.plan import Instr, Plan, timeutil
from sopdsl.plan.agenda import Slot, agenda
from sopdsl.plan.quiet_entries import held_date_triggers, held_entries
from sopdsl.source import Source, Span

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

# Four whole weeks from a Monday: every weekly rhythm shows, and the check is fast.
_SAMPLE_START = dt.date(2026, 1, 5)
_SAMPLE_DAYS = 28


def analyse(plan: Plan, sources: Mapping[str, Source] | None = None) -> list[Diagnostic]:
    """Every plan-level diagnostic, in a stable order; with the sources, each spans its line's text."""
    found = [*_loops(plan), *_content_mix(plan), *_caps(plan), *_dropped_on_event(plan)]
    starts = _sample_starts(plan)
    found += [*held_entries(plan, starts), *held_date_triggers(plan, starts)]
    if sources:
        found = [replace(d, span=_line_span(d.span, sources.get(d.span.path))) for d in found]
    return sorted(found, key=lambda d: (d.span.path, d.span.line, d.code, d.message))


def _span(loc: str) -> Span:
    path, _, line = loc.rpartition(":")
    return Span.point(path or loc, int(line) if line.isdigit() else 1)


def _line_span(span: Span, source: Source | None) -> Span:
    """The plan keeps only `path:line`; underline that line's text, without its comment."""
    if source is None:
        return span
    text = source.line_text(span.line).split("  #")[0].rstrip()
    if not text.strip():
        return span
    begin = source.line_start(span.line)
    indent = len(text) - len(text.lstrip())
    return source.span(begin + indent, begin + len(text))


def _instrs(plan: Plan, index: int) -> Iterable[Instr]:
    compiled = plan.playbooks[index]
    yield from compiled.code
    for entry in compiled.schedule:
        yield from entry.code


def _loops(plan: Plan) -> list[Diagnostic]:
    """Playbooks whose tag changes fire each other's triggers in a cycle that can go round again.

    Only a change of a tag fires `is tagged`, and `reaches` fires once, so a cycle can repeat only
    if the playbooks on it also take back every tag change that drives it.
    """
    listens: dict[str, list[int]] = {}
    for index, compiled in enumerate(plan.playbooks):
        for trigger in compiled.triggers:
            if isinstance(trigger, lang.OnEvent) and trigger.pattern.kind in (
                lang.EventKind.TAGGED,
                lang.EventKind.UNTAGGED,
            ):
                listens.setdefault(f"{trigger.pattern.kind.value}:{trigger.pattern.tag}", []).append(index)
    changes: dict[int, set[str]] = {i: set() for i in range(len(plan.playbooks))}
    for index in changes:
        for instr in _instrs(plan, index):
            action = instr.action
            if isinstance(action, lang.TagStep) and action.target == "member":
                changes[index].update(f"{'untagged' if action.remove else 'tagged'}:{t}" for t in action.tags)
    edges = {i: {j for key in keys for j in listens.get(key, ())} for i, keys in changes.items()}
    diagnostics: list[Diagnostic] = []
    reported: set[frozenset[int]] = set()
    for start in edges:
        cycle = _cycle_from(start, edges)
        if cycle is None or frozenset(cycle) in reported:
            continue
        reported.add(frozenset(cycle))
        made = set().union(*(changes[i] for i in cycle))
        driving = {key for i in cycle for key in changes[i] if set(listens.get(key, ())) & set(cycle)}
        if not all(_inverse(key) in made for key in driving):
            continue  # the second time round the tags are already set: the chain stops by itself
        playbooks = [plan.playbooks[i] for i in cycle]
        names = " → ".join([*(p.name for p in playbooks), playbooks[0].name])
        endless = all(p.repeat is lang.Repeat.ALWAYS for p in playbooks)
        diagnostics.append(
            Diagnostic(
                "SOP701",
                Severity.ERROR if endless else Severity.WARNING,
                f"playbooks trigger each other in a loop: {names}",
                _span(playbooks[0].loc),
                "they repeat always, so the loop never ends (the engine cuts it after 32 rounds); break it"
                if endless
                else "the loop ends only because some playbook runs once per member; make sure that is intended",
            )
        )
    return diagnostics


def _inverse(key: str) -> str:
    kind, _, tag = key.partition(":")
    return f"{'tagged' if kind == 'untagged' else 'untagged'}:{tag}"


def _cycle_from(start: int, edges: dict[int, set[int]]) -> list[int] | None:
    path: list[int] = []
    on_path: set[int] = set()

    def visit(node: int) -> list[int] | None:
        path.append(node)
        on_path.add(node)
        for nxt in sorted(edges[node]):
            if nxt == start:
                return list(path)
            if nxt not in on_path and nxt > start:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        on_path.discard(node)
        return None

    return visit(start)


def _template_of(plan: Plan, playbook: str, loc: str) -> list[str]:
    for compiled in plan.playbooks:
        if compiled.name != playbook:
            continue
        for entry in compiled.schedule:
            if entry.loc == loc:
                # What the group reads: a note to its operator or a message to each member is
                # no part of the group's content mix.
                return [
                    i.action.template
                    for i in entry.code
                    if isinstance(i.action, lang.SendStep) and i.action.target == "group"
                ]
    return []


def _content_mix(plan: Plan) -> list[Diagnostic]:
    """K4: the share of scheduled sends whose template carries a tag, per group the rule covers."""
    program = plan.declarations
    diagnostics: list[Diagnostic] = []
    for rule in program.policy.content_mix:
        # Groups often exist only in the bot, not in the playbook: then judge a group the rule describes.
        groups = [g for g in program.groups.values() if _covers(rule.scope, g)] or _stand_ins(rule.scope)
        slots = agenda(plan, _SAMPLE_START, _SAMPLE_START + dt.timedelta(days=_SAMPLE_DAYS), groups)
        for group in groups:
            total = tagged = 0
            for slot in slots:
                if slot.group != group.name:
                    continue
                for template in _template_of(plan, slot.playbook, slot.loc):
                    total += 1
                    tagged += rule.tag in program.templates[template].tags
            if total and tagged * 100 < rule.percent * total:
                share = 100 * tagged / total
                diagnostics.append(
                    Diagnostic(
                        "SOP702",
                        Severity.ERROR,
                        f'in {_group_name(group)}, {tagged} of {total} scheduled sends over four weeks ({share:.0f}%) use templates tagged "{rule.tag}"; the policy asks for at least {rule.percent:g}%',
                        _span(rule.loc),
                        f'tag more of its templates "{rule.tag}", or schedule more of them',
                    )
                )
    return diagnostics


def _stand_ins(scope: lang.Scope) -> list[lang.Group]:
    """Undeclared groups a scope describes: one per tag or name, or one plain group for `all`."""
    if scope.kind == "private":
        return []
    if scope.kind == "tagged":
        return [lang.Group(name=f'a group tagged "{tag}"', tags=(tag,)) for tag in scope.tags]
    if scope.kind == "named":
        return [lang.Group(name=name) for name in scope.groups]
    return [lang.Group(name="any group")]


def _group_name(group: lang.Group) -> str:
    return group.name if group.name.startswith(("a group", "any group")) else f"group '{group.name}'"


def _covers(scope: lang.Scope, group: lang.Group) -> bool:
    if scope.kind == "all":
        return True
    if scope.kind == "named":
        return group.name in scope.groups
    return scope.kind == "tagged" and not set(scope.tags).isdisjoint(group.tags)


def _when(period: lang.CapPeriod, key: str) -> str:
    if period is lang.CapPeriod.DAY:
        return f"on a {dt.date.fromisoformat(key):%A}"
    if period is lang.CapPeriod.WEEK:
        return "in one week"
    return f"in a month such as {dt.date.fromisoformat(key + '-01'):%B %Y}"


def _caps(plan: Plan) -> list[Diagnostic]:
    """Send caps (a member's or a group's; per day, week or month; on a channel or all) that the
    calendars alone already exceed in some period: the worst period is named."""
    program = plan.declarations
    caps = [(i, c) for i, c in enumerate(program.policy.caps) if c.noun is lang.CapNoun.SEND]
    if not caps:
        return []
    groups = list(program.groups.values())
    if not groups:
        seen: set[lang.Scope] = set()
        for compiled in plan.playbooks:
            if compiled.schedule and compiled.scope not in seen:
                seen.add(compiled.scope)
                groups.extend(_stand_ins(compiled.scope))
    # A day or a week shows in four weeks; a month needs a year to find the one with five Tuesdays.
    # Calendars that begin on a date of their own (`from 2027-03-01`, a list of dates) are also
    # sampled from there, so a campaign of next March is measured in next March.
    days = 366 if any(c.period is lang.CapPeriod.MONTH for _, c in caps) else _SAMPLE_DAYS
    slots = sorted(
        {
            slot
            for start in _sample_starts(plan)
            for slot in agenda(plan, start, start + dt.timedelta(days=days), groups)
        }
    )
    playbooks = {pb.name: pb for pb in plan.playbooks}
    diagnostics: list[Diagnostic] = []
    for index, cap in caps:
        worst: tuple[int, str, str] | None = None
        for group in groups:
            tz = timeutil.zone(group.timezone or program.timezone)
            counts: Counter[str] = Counter()
            for slot in slots:
                if slot.group == group.name and index in slot.caps:
                    # Outside its campaign window the engine fires nothing: the window is a wall
                    # time in the group's zone, and so is the day the send counts on.
                    wall = timeutil.local(slot.time, tz)
                    if not playbooks[slot.playbook].active_at(wall):
                        continue
                    counts[_period_key(cap.period, wall.date())] += _counted(plan, slot, cap)
            for key, count in counts.items():
                if count > cap.limit and (worst is None or count > worst[0]):
                    worst = (count, group.name, key)
        if worst is not None:
            count, group_name, key = worst
            shown = next(_group_name(g) for g in groups if g.name == group_name)
            fate = "dropped" if cap.overflow is lang.Overflow.DROP else "deferred"
            via = f" via {cap.channel}" if cap.channel else ""
            whom = f"to each member of {shown}" if cap.subject is lang.CapSubject.MEMBER else f"in {shown}"
            allows, hint = (
                "the cap allows",
                "spread the calendar entries, or raise the cap if that many is intended",
            )
            if cap.platform:  # the platform's own limit: raising it is not the playbook's to do
                allows = "the platform allows"
                hint = (
                    "spread the calendar entries: the platform's limit is set in its admin console, not here"
                )
            diagnostics.append(
                Diagnostic(
                    "SOP703",
                    Severity.WARNING,
                    f"the calendars alone schedule {count} {_sends(cap)}{via} {whom} {_when(cap.period, key)}; {allows} {cap.limit} per {cap.period.value}, so the rest are {fate}",
                    _span(cap.loc),
                    hint,
                )
            )
    return diagnostics


def _sample_starts(plan: Plan) -> list[dt.date]:
    """Where the cap check samples the calendars: a fixed year, each calendar's own start, and
    each campaign's (`active from`) first day and month."""
    starts = {_SAMPLE_START}
    for pb in plan.playbooks:
        if pb.schedule and pb.active_from is not None:
            starts.update((pb.active_from.date(), pb.active_from.date().replace(day=1)))
    rules = [c.rule for c in plan.declarations.calendars.values()]
    rules += [e.when.inline for pb in plan.playbooks for e in pb.schedule if e.when.inline is not None]
    for rule in rules:
        if isinstance(rule, lang.Dates) and rule.dates:
            starts.add(min(rule.dates).replace(day=1))
        elif getattr(rule, "start", None) is not None:
            starts.add(rule.start.replace(day=1))  # type: ignore[union-attr]
    return sorted(starts)


def _period_key(period: lang.CapPeriod, day: dt.date) -> str:
    if period is lang.CapPeriod.DAY:
        return day.isoformat()
    if period is lang.CapPeriod.WEEK:
        return f"week {day.isocalendar()[1]}"
    return f"{day:%Y-%m}"


def _counted(plan: Plan, slot: Slot, cap: lang.Cap) -> int:
    """How many of a calendar entry's sends a cap counts: on its channel, to its subject, of its tags."""
    templates = plan.declarations.templates
    for compiled in plan.playbooks:
        if compiled.name != slot.playbook:
            continue
        for entry in compiled.schedule:
            if entry.loc != slot.loc:
                continue
            count = 0
            for instr in entry.code:
                step = instr.action
                if not isinstance(step, lang.SendStep) or (cap.channel and step.channel != cap.channel):
                    continue
                to_member = entry.for_each_member or step.target in ("member", "referrer")
                if cap.subject is lang.CapSubject.MEMBER and not to_member:
                    continue
                if cap.subject is lang.CapSubject.GROUP and step.target != "group":
                    continue
                if step.template in templates and cap.counts(templates[step.template].tags):
                    count += 1
            return count
    return 0


def _sends(cap: lang.Cap) -> str:
    return "sends" if not cap.tags else "sends of templates tagged " + ", ".join(f'"{t}"' for t in cap.tags)


def _dropped_on_event(plan: Plan) -> list[Diagnostic]:
    """Sends a playbook makes on an event (a join, an order: at any hour, in any number) that a cap
    with `else drop` counts: on a busy day they are dropped, silently for the member."""
    program = plan.declarations
    caps = [
        c for c in program.policy.caps if c.noun is lang.CapNoun.SEND and c.overflow is lang.Overflow.DROP
    ]
    found: list[Diagnostic] = []
    for compiled in plan.playbooks:
        if not compiled.triggers:
            continue
        sends = {
            (i.action.template, i.action.target, i.action.channel, i.action.loc): None
            for i in compiled.code
            if isinstance(i.action, lang.SendStep)
        }
        for template, target, channel, loc in sends:
            declared = program.templates.get(template)
            for cap in caps:
                if (
                    declared is None
                    or not cap.counts(declared.tags)
                    or (cap.channel is not None and cap.channel != channel)
                    or (cap.subject is lang.CapSubject.MEMBER and target not in ("member", "referrer"))
                    or (cap.subject is lang.CapSubject.GROUP and compiled.scope.kind == "private")
                ):
                    continue
                found.append(
                    Diagnostic(
                        "SOP704",
                        Severity.WARNING,
                        f"'{template}' is sent on an event, at any hour, and the cap at {_where(cap.loc, loc)} "
                        f"({cap.text()}, else drop) counts it: on a busy day it is dropped",
                        _span(loc),
                        'limit the cap to the sends it is meant for (`of templates tagged "promo"`), '
                        "or let it defer them (leave out `else drop`)",
                    )
                )
    return found


def _where(loc: str, here: str) -> str:
    """`line 9` for a place in the same file as `here`, else `path:line`."""
    path, _, line = loc.rpartition(":")
    return f"line {line}" if path == here.rpartition(":")[0] else loc
