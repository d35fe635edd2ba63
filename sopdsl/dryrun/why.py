"""`sopdsl why`: why a member got, or did not get, a playbook's actions in a dry run.

Input: a plan, a fixture and a member id. Output: lines for people. The run is the ordinary
simulation with a tracer attached (`sopdsl.engine.trace`), so the answer is what the engine
decided, at the instant it decided, never a second reading of the playbook.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from sopdsl import lang
from sopdsl.diagnostics import did_you_mean
from sopdsl.dryrun.fixtures import Fixture
from sopdsl.dryrun.simulate import reload_warning, simulate, to_epoch
from sopdsl.dryrun.why_runs import Told, arranged
from sopdsl.dryrun.why_steps import StepLog, WaitSeen, dates_told, duration_text, inline_text
from sopdsl.engine import trace
from sopdsl.engine.actions import Action
from sopdsl.engine.calc import operand_text
from sopdsl.engine.conditions import compile_cond, getter, in_window
from sopdsl.engine.engine import Engine
from sopdsl.engine.timers import Deliver
from sopdsl.errors import SopdslError
from sopdsl.kinds import subject_of
from sopdsl.plan import CompiledEntry, CompiledPlaybook, Plan, timeutil
from sopdsl.template_bounds import plain_number
from sopdsl.vocabulary import BUILTIN_COUNTERS


@dataclass
class _Seen:
    """One decision, with what the member looked like at that instant."""

    decision: trace.Decision
    reasons: list[str] = field(default_factory=list)


class UnknownNameError(SopdslError, LookupError):
    """`why` was asked about a member or playbook the dry run does not have."""

    def __init__(self, message: str, hint: str | None) -> None:
        super().__init__(message)
        self.hint = hint


def _by_name(fixture: Fixture, asked: str) -> str:
    """The member id `asked` names: itself if a member has it, else the one member whose name
    (in `members`, or a join's `data.name`) it is (ops know members by name: `why 阿峰`)."""
    ids = {m.id for m in fixture.members} | {e.member for e in fixture.events if e.member}
    if asked in ids:
        return asked
    named = {m.id for m in fixture.members if m.name == asked}
    named |= {
        e.member for e in fixture.events if e.member and e.kind == "join" and e.data.get("name") == asked
    }
    return named.pop() if len(named) == 1 else asked


def explain(
    plan: Plan,
    fixture: Fixture,
    member_id: str,
    playbook: str | None = None,
    versions: Mapping[tuple[str, ...], Plan] | None = None,
) -> list[str]:
    """Why `member_id` got or did not get each playbook's actions (or only `playbook`'s).

    `versions`: the plans the fixture's `reload` entries load (see `simulate`); a playbook of any
    version is explained, and a reload's plan change for the member is shown in its place.
    """
    member_id = _by_name(fixture, member_id)
    counters = frozenset(BUILTIN_COUNTERS) | frozenset(plan.declarations.counters)
    seen: list[_Seen] = []

    def tracer(decision: trace.Decision) -> None:
        if decision.member.id != member_id or (playbook and decision.playbook.name != playbook):
            return
        note = _Seen(decision)
        if decision.verdict is trace.GUARD_FALSE:
            referrer = decision.referrer
            note.reasons = [
                reason
                for cond in _guards(decision)
                for reason in _false_parts(decision, cond, counters, lambda _id: referrer)
            ]
        elif decision.verdict is trace.OUT_OF_SCOPE:
            note.reasons = [f"it applies to {_scope_text(decision.playbook.scope, decision.group)}"]
        elif decision.since is not None and decision.verdict in (trace.RAN_ONCE, trace.COOLING_DOWN):
            note.reasons = [f"it last started for this member at {_when(decision.since, decision.zone)}"]
        seen.append(note)

    playbooks: dict[str, CompiledPlaybook] = {}  # by name, as the first version to have it says
    for each in (plan, *(versions or {}).values()):
        for compiled in each.playbooks:
            playbooks.setdefault(compiled.name, compiled)
    if playbook is not None and playbook not in playbooks:
        raise UnknownNameError(
            f"no playbook named '{playbook}' in this plan; it has: {', '.join(playbooks)}",
            did_you_mean(playbook, playbooks),
        )
    steps = StepLog(member_id, playbook)
    result = simulate(plan, fixture, tracer, versions, steps.hook)
    tz = timeutil.zone(fixture.timezone or plan.declarations.timezone)
    start = to_epoch(fixture.start, fixture.timezone or plan.declarations.timezone)
    member = result.engine.members.get(member_id)
    if member is None:
        members = result.engine.members
        raise UnknownNameError(
            f"no member '{member_id}' in this timeline",
            did_you_mean(member_id, members) or f"members: {', '.join(sorted(members)[:8]) or 'none'}",
        )
    lines = [f"why {member.name} ({member_id}):"]
    zone_name = fixture.timezone or plan.declarations.timezone
    lines.extend(w for reload in result.reloads if (w := reload_warning(reload, zone_name)) is not None)
    changes = [
        (reload.time, change)
        for reload in result.reloads
        for change in reload.changes
        if change.member == member_id
    ]
    for pb in playbooks.values():
        if playbook and pb.name != playbook:
            continue
        title = f" {pb.title}" if pb.title else ""
        lines.append("")
        lines.append(f"playbook {pb.name}{title}  ({pb.loc})")
        home = pb.loc.rpartition(":")[0]
        decisions = [s for s in seen if s.decision.playbook.name == pb.name]
        actions = [a for a in result.actions if a.playbook == pb.name and _concerns(a, member_id, steps)]
        held = _held(result.engine, pb.name, member_id, steps)
        changed = [(time, change) for time, change in changes if change.playbook == pb.name]
        if not decisions and not actions and not held and not changed:
            lines.append(f"  no trigger of it fired for {member_id}: {_triggers_text(pb)}")
            lines.extend(dates_told(pb, member, tz))
            if pb.scope.kind != "all":
                lines.append(
                    f"  (it applies to {_scope_text(pb.scope, None)}; {member_id} is in: "
                    f"{_groups_text(result.engine.groups, member.groups)})"
                )
            lines.extend(_group_sends(result.actions, pb.name, member.groups, member_id, tz))
            continue
        # Decisions, plan changes and what the flows did, in time order: an action at the time it
        # was decided (a deferred one says when it went), a wait at the time it ended; each with
        # its flow, so that overlapping runs are told run by run (`why_runs`).
        told: list[Told] = []
        for note in decisions:
            d = note.decision
            outcome = "started" if d.verdict is trace.STARTED else f"not started: {d.verdict}"
            at = max(d.time, start)
            if d.time < start:  # due before the start, by the member's history: fired on day one
                outcome += f" (due {_when(d.time, d.zone)}, before the start)"
            said = f"  {_when(at, d.zone)}  {_trigger_text(d.playbook, d.trigger, home)} → {outcome}"
            flow = steps.claim(pb.name, d.time, d.trigger) if d.verdict is trace.STARTED else None
            told.append(Told(at, 0, [said, *(f"      {reason}" for reason in note.reasons)], flow, True))
        told.extend(Told(time, 1, [f"  {_when(time, tz)}  {change}"]) for time, change in changed)
        waits = [w for w in steps.waits if w.playbook == pb.name]
        # An event ends the waits it answers before it starts flows (`_resume_waiting` runs
        # first), so an earlier flow's wait it ended goes above the flow it starts.
        told.extend(
            Told(
                w.ended or w.since,
                -1 if w.came and w.since < (w.ended or 0) else 2,
                [f"    {_wait_line(w, result, tz, home)}"],
                w.flow,
            )
            for w in waits
        )
        told.extend(
            Told(
                a.planned or a.time,
                3,
                [f"    {_action_text(a, tz, home, member_id)}"],
                steps.flow_of(pb.name, a.loc, a.planned or a.time),
            )
            for a in actions
        )
        told.extend(
            Told(a.planned or a.time, 3, [f"    {_held_text(a, due, tz, home, member_id)}"], flow)
            for due, a, flow in held
        )
        # A run no decision told of (carried over by a plan change) is told as it began.
        heads: dict[int, Told] = {}
        for flow, (name, time, where) in steps.runs.items():
            if name == pb.name:
                at = max(time, start)
                said = f"  {_when(at, tz)}  {_trigger_text(pb, where, home)} → started"
                heads[flow] = Told(at, 0, [said], flow, True)
        lines.extend(arranged(told, heads))
    return lines


def _wait_line(wait: WaitSeen, result: Any, tz: dt.tzinfo, home: str) -> str:
    """A wait of the member's flow and what ended it: what it waited for, or the timeout."""
    head = f"{_when(wait.ended or wait.since, tz)}  {wait.text} ({_line(wait.loc, home)}), from {_when(wait.since, tz)}: "
    then = f", went on at {_line(wait.then_loc, home)}" if wait.then_loc else ", and the flow ended"
    if wait.ended is None:
        if wait.flow in result.engine.flows:
            return head + "still waiting when the run ended"
        return head + "the flow ended while waiting (the member left, or a plan change ended it)"
    if wait.came:
        return head + "it came" + then
    return (
        head
        + "it did not come in time"
        + (f", so the `else` at {_line(wait.then_loc, home)}" if wait.then_loc else ", and the flow ended")
    )


def _group_sends(
    actions: list[Action], playbook: str, groups: AbstractSet[str], member_id: str, tz: dt.tzinfo
) -> list[str]:
    """For a playbook whose actions go to groups (a calendar's), not to members: how many went to
    the groups the member is in, which is how the member saw them."""
    counts: dict[str, list[int]] = {}
    for action in actions:
        if (
            action.playbook == playbook
            and action.member is None
            and action.group is not None
            and action.group in groups
        ):
            counts.setdefault(action.group, []).append(action.time)
    return [
        f"  it acts on groups, not on members: {len(times)} action(s) to group {group}, which "
        f"{member_id} is in (first {_when(min(times), tz)}, last {_when(max(times), tz)})"
        for group, times in sorted(counts.items())
    ]


def _groups_text(groups: dict[str, Any], ids: AbstractSet[str]) -> str:
    shown = []
    for group_id in sorted(ids):
        tags = sorted(groups[group_id].tags) if group_id in groups else []
        shown.append(f"{group_id} (tagged {', '.join(tags)})" if tags else f"{group_id} (no tags)")
    return ", ".join(shown) or "no group"


def _concerns(action: Action, member_id: str, steps: StepLog) -> bool:
    """An action to the member, or one the member's flow took on the group (a welcome to the group)."""
    if action.member == member_id:
        return True
    return (
        action.member is None
        and (action.playbook, action.loc, action.group, action.planned or action.time) in steps.acted
    )


def _when(epoch: int, tz: dt.tzinfo) -> str:
    return dt.datetime.fromtimestamp(epoch, tz).strftime("%Y-%m-%d %H:%M")


def _line(loc: str, home: str) -> str:
    """`line N` of the file the playbook's section is about, or the whole `path:line` of another
    (a version loaded by a reload)."""
    path, _, line = loc.rpartition(":")
    return f"line {line}" if path == home else loc


def _trigger_text(pb: CompiledPlaybook, where: str, home: str) -> str:
    for trigger in pb.triggers:
        if trigger.loc == where:
            return f"{_trigger_name(trigger)} ({_line(where, home)})"
    for entry in pb.schedule:
        if entry.loc == where:
            return f"{_entry_text(entry)} ({_line(where, home)})"
    return where


def _guards(decision: trace.Decision) -> list[lang.Cond]:
    """The conditions the decision tested: the playbook's `when`, then, for a calendar entry
    `for each member when …`, the entry's own."""
    pb = decision.playbook
    conds = [pb.guard] if pb.guard is not None else []
    conds.extend(e.cond for e in pb.schedule if e.loc == decision.trigger and e.cond is not None)
    return conds


def _entry_text(entry: CompiledEntry) -> str:
    """A calendar entry as the playbook writes its head, near enough: `at weekly_live - 10 minutes`."""
    when = entry.when
    if when.calendar is None:
        inline = inline_text(when.inline)
        said = "calendar entry" if inline is None else f"at {inline}"
    else:
        shifts = "".join(f" {'-' if before else '+'} {duration_text(d)}" for before, d in when.offsets)
        said = f"at {when.calendar}{shifts}" + (f" at {when.at:%H:%M}" if when.at is not None else "")
    return said + (" for each member" if entry.for_each_member else "")


def _triggers_text(pb: CompiledPlaybook) -> str:
    names = [_trigger_name(t) for t in pb.triggers]
    if pb.schedule:
        names.append("its calendar entries")
    return "; ".join(names) or "it has no trigger"


def _trigger_name(trigger: lang.Trigger) -> str:
    """The trigger as the playbook says it, near enough."""
    if isinstance(trigger, lang.OnEvent):
        detail = trigger.pattern.tag or trigger.pattern.custom
        return f"on {trigger.pattern.kind.value}" + (
            f" {json.dumps(detail, ensure_ascii=False)}" if detail else ""
        )
    if isinstance(trigger, lang.OnAbsence):
        return f"no {trigger.event.value} for {duration_text(trigger.duration)}"
    if isinstance(trigger, lang.OnDateOffset):
        side = "before" if trigger.before else "after"
        return f"{duration_text(trigger.offset)} {side} member.{trigger.attribute} at {trigger.at:%H:%M}"
    if isinstance(trigger, lang.OnAnniversary):
        return f"member.{trigger.attribute} at {trigger.at:%H:%M}"
    if isinstance(trigger, lang.OnThreshold):
        return f"member.{trigger.counter} reaches {trigger.threshold:g}"
    if isinstance(trigger, lang.OnGroupSize):
        return f"group size reaches {trigger.threshold}"
    return f"group silent for {duration_text(trigger.duration)}"


def _scope_text(scope: lang.Scope, group: Any) -> str:
    where = ""
    if group is not None:
        where = f"; this was in group '{group.id}'" + (
            f" (tagged {', '.join(sorted(group.tags))})" if group.tags else ""
        )
    if scope.kind == "tagged":
        return f"groups tagged {', '.join(map(repr, scope.tags))}{where}"
    if scope.kind == "named":
        return f"groups {', '.join(scope.groups)}{where}"
    if scope.kind == "private":
        return f"private chats{where}"
    return f"all groups{where}"


def _false_parts(
    decision: trace.Decision, cond: lang.Cond, counters: frozenset[str], lookup: Any
) -> list[str]:
    """The smallest parts of a false condition that made it false, each with the values it read."""
    d = decision
    test = (
        compile_cond(cond, lookup, counters, d.stock)
        if d.stock is not None
        else compile_cond(cond, lookup, counters)
    )
    value = test(d.member, d.group, d.event, d.time, d.zone)
    if isinstance(cond, lang.AndCond):
        return (
            [r for part in cond.operands for r in _false_parts(d, part, counters, lookup)]
            if not value
            else []
        )
    if isinstance(cond, lang.OrCond) and not value:
        return [f"none of these held: {' / '.join(_cond_text(p) for p in cond.operands)}"]
    if value:
        return []
    return [f"✗ {_cond_text(cond)}    ({_values(d, cond, counters, lookup)})"]


def _values(d: trace.Decision, cond: lang.Cond, counters: frozenset[str], lookup: Any) -> str:
    if isinstance(cond, lang.NotCond):
        return _values(d, cond.operand, counters, lookup)
    if isinstance(cond, lang.TagCond):
        holder = d.member if cond.subject == "member" else d.group
        tags = sorted(holder.tags) if holder is not None else []
        return f"{cond.subject} tags: {', '.join(tags) or 'none'}"
    if isinstance(cond, lang.WindowCond):
        return f"{_window_word(cond)} in last {duration_text(cond.window)}: {_in_window(d, cond)}"
    if isinstance(cond, lang.StockCond):
        remaining = d.stock(cond.coupon) if d.stock is not None else None
        return f"{cond.coupon}: {'no stock declared' if remaining is None else f'{remaining} left'}"
    if isinstance(cond, lang.CalcCond):
        refs = [*_refs(cond.left), *_refs(cond.right)]
        read = [(r, getter(r, lookup, counters)(d.member, d.group, d.event)) for r in refs]
        return ", ".join(f"{r.root}.{r.field} = {_json(v)}" for r, v in read) or "no values read"
    left = getattr(cond, "left", None)
    if isinstance(left, lang.Ref):
        read = getter(left, lookup, counters)(d.member, d.group, d.event)
        return f"{left.root}.{left.field} = {_json(read)}"
    if isinstance(cond, lang.TimeCond | lang.WeekdayCond | lang.DateCond):
        return f"local time {_when(d.time, d.zone)}"
    return "no values read"


def _refs(operand: lang.Operand) -> list[lang.Ref]:
    """The references arithmetic reads, in the order written."""
    if isinstance(operand, lang.Ref):
        return [operand]
    if isinstance(operand, lang.Calc):
        return [*_refs(operand.left), *_refs(operand.right)]
    return []


def _in_window(d: trace.Decision, cond: lang.WindowCond) -> int:
    """How many of the member's events the window counted, as the engine counts them: the member
    keeps older ones too (for longer windows), which are no part of this one."""
    zone = d.group.zone if d.group is not None else d.zone
    return in_window(d.member.windows.get(cond.event, ()), cond.window, d.time, zone)


def _window_word(cond: lang.WindowCond) -> str:
    """`messages`, `checkins`: the events a window counts, as a playbook names them."""
    return cond.event.removeprefix("custom:") + "s"


def _json(value: Any) -> str:
    """A value as the playbook writes it: `1`, not `1.0`; text quoted."""
    return json.dumps(plain_number(value), ensure_ascii=False, default=str)


def _cond_text(cond: lang.Cond) -> str:
    if isinstance(cond, lang.NotCond):
        return f"not ({_cond_text(cond.operand)})"
    if isinstance(cond, lang.AndCond | lang.OrCond):
        joiner = " and " if isinstance(cond, lang.AndCond) else " or "
        return "(" + joiner.join(_cond_text(p) for p in cond.operands) + ")"
    if isinstance(cond, lang.TagCond):
        test = {
            "tagged": "tagged",
            "not_tagged": "not tagged",
            "any": "tagged any of",
            "all": "tagged all of",
        }
        return f"{cond.subject} {test[cond.test]} {', '.join(json.dumps(t, ensure_ascii=False) for t in cond.tags)}"
    if isinstance(cond, lang.CalcCond):
        return f"{operand_text(cond.left)} {cond.op} {operand_text(cond.right)}"
    if isinstance(cond, lang.CompareCond):
        right = cond.right
        shown = f"{right.root}.{right.field}" if isinstance(right, lang.Ref) else _json(right)
        return f"{cond.left.root}.{cond.left.field} {cond.op} {shown}"
    if isinstance(cond, lang.StartsWithCond):
        return f"{cond.left.root}.{cond.left.field} starts with {json.dumps(cond.prefix, ensure_ascii=False)}"
    if isinstance(cond, lang.MatchesCond):
        return f"{cond.left.root}.{cond.left.field} matches {json.dumps(cond.pattern, ensure_ascii=False)}"
    if isinstance(cond, lang.InCond):
        values = ", ".join(_json(v) for v in cond.values)
        return f"{cond.left.root}.{cond.left.field} in [{values}]"
    if isinstance(cond, lang.IsSetCond):
        return f"{cond.left.root}.{cond.left.field} is set"
    if isinstance(cond, lang.WindowCond):
        return f"{_window_word(cond)} in last {duration_text(cond.window)} {cond.op} {cond.count}"
    if isinstance(cond, lang.TimeCond):
        return f"time between {cond.start:%H:%M} and {cond.end:%H:%M}"
    if isinstance(cond, lang.WeekdayCond):
        return f"weekday in {list(cond.weekdays)}"
    if isinstance(cond, lang.DateCond):
        if cond.holidays is not None:
            return f"date in {cond.holidays}"
        (span,) = cond.spans
        return f"date between {span.first} and {span.last}"
    if isinstance(cond, lang.StockCond):
        return f"coupon {cond.coupon} {'in' if cond.in_stock else 'not in'} stock"
    return str(getattr(cond, "value", cond))


def _held(engine: Engine, playbook: str, member_id: str, steps: StepLog) -> list[tuple[int, Action, int]]:
    """The actions of `playbook` for `member_id` that the policy still held back when the run
    ended, each with when it was due to go and its flow: the log has none of them, as none went out."""
    held = []
    for due, _playbook, _member, _group, _seq, timer in engine.heap:
        if not isinstance(timer, Deliver) or timer.action.playbook != playbook:
            continue
        flow = engine.flows.get(timer.flow)
        if flow is not None and flow.token == timer.token and _concerns(timer.action, member_id, steps):
            held.append((due, timer.action, timer.flow))
    return sorted(held, key=lambda entry: entry[0])


def _held_text(action: Action, due: int, tz: dt.tzinfo, home: str, member_id: str) -> str:
    held = f"held back ({action.reason}) until {_when(due, tz)}: still waiting when the run ended"
    return f"{_when(action.planned or action.time, tz)}  {_what(action, home, member_id)}  [{held}]"


def _action_text(action: Action, tz: dt.tzinfo, home: str, member_id: str) -> str:
    status = (
        ""
        if action.status == "done"
        else f"  [{action.status}{': ' + action.reason if action.reason else ''}]"
    )
    if action.planned is not None and action.planned != action.time and action.status == "done":
        status = f"  [deferred from {_when(action.planned, tz)}: {action.reason}]"
    return f"{_when(action.time, tz)}  {_what(action, home, member_id)}{status}"


def _what(action: Action, home: str, member_id: str) -> str:
    """An action as `why` names it: its kind and subject, to whom, and its line."""
    shown = subject_of(action.kind, action.detail).replace(",", ", ")
    to_group = ""
    if action.member != member_id and action.group is not None:
        # Sent because of this member, but to the group: one message everyone in it sees.
        to_group = f" to group {action.group}, which everyone in it sees, {member_id} included"
    what = f"{action.kind} {shown}" if shown else action.kind
    return f"{what}{to_group} ({_line(action.loc, home)})"
