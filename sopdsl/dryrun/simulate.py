"""Dry runs: a plan replayed over a fixture timeline on the virtual clock, and expectations checked.

Input: a `Plan` and a `Fixture` (with the plans its `reload` entries load). Output: the action
log, the plan changes, and a verdict per expectation. The engine is the same one the live
runtime drives, and a reload calls the same `Engine.reload`; only the clock differs.
"""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sopdsl.dryrun.fixtures import (
    Expectation,
    Fixture,
    FixtureEvent,
    FixtureGroup,
    parse_duration,
    parse_time,
)
from sopdsl.dryrun.history import History, as_listed
from sopdsl.dryrun.timeline import Timeline
from sopdsl.engine.actions import Action, iso
from sopdsl.engine.engine import Engine
from sopdsl.engine.events import Event
from sopdsl.engine.records import GroupRecord
from sopdsl.engine.trace import StepHook, Tracer
from sopdsl.engine.versions import ENDED, FINISHES, MOVED, PlanChange, unrecorded_windows
from sopdsl.gcpause import paused_gc
from sopdsl.kinds import subject_of
from sopdsl.plan import Plan, timeutil

if TYPE_CHECKING:
    from sopdsl.figures.collect import Collector


@dataclass
class Outcome:
    """One expectation's verdict, with what was found instead when it failed."""

    index: int
    expectation: Expectation
    passed: bool
    message: str
    nearest: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Reload:
    """Another version of the playbooks, loaded at `time` (a fixture's `reload` entry)."""

    time: int
    plan: Plan
    files: tuple[str, ...]  # as the fixture names them


@dataclass(frozen=True)
class Reloaded:
    """A reload as it happened: after how many actions of the log, and what it did to each flow."""

    time: int
    files: tuple[str, ...]
    previous: str  # the content hash of the plan running before
    plan: str  # the content hash of the plan loaded
    position: int  # actions logged before it
    changes: list[PlanChange]
    # Event kinds the loaded version counts over time windows that the running one did not
    # record: those counts start from zero at the reload.
    unrecorded: tuple[str, ...] = ()


# A plan-change expectation's words for the engine's outcomes.
PLAN_CHANGES = {"moves": MOVED, "finishes": FINISHES, "ends": ENDED}
CHANGE_NAMES = {outcome: name for name, outcome in PLAN_CHANGES.items()}


@dataclass
class Simulation:
    """The result of one dry run."""

    engine: Engine
    actions: list[Action]
    outcomes: list[Outcome]
    reloads: list[Reloaded] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Whether every expectation held."""
        return all(o.passed for o in self.outcomes)

    def log(self) -> Iterator[Action | Reloaded]:
        """The actions with each reload in its place among them."""
        done = 0
        for reload in self.reloads:
            yield from self.actions[done : reload.position]
            done = reload.position
            yield reload
        yield from self.actions[done:]


def _add_groups(engine: Engine, groups: Iterable[FixtureGroup | GroupRecord]) -> None:
    """Register the groups a fixture or a timeline's header declares."""
    for group in groups:
        engine.add_group(group if isinstance(group, GroupRecord) else group.record())


def to_epoch(text: str, tz_name: str) -> int:
    """A fixture time as epoch seconds (naive times are local to the zone)."""
    moment = parse_time(text)
    tz = timeutil.zone(tz_name)
    if moment.tzinfo is None:
        return timeutil.resolve(moment, tz)
    return timeutil.to_epoch(moment)


def simulate(
    plan: Plan,
    fixture: Fixture,
    tracer: Tracer | None = None,
    versions: Mapping[tuple[str, ...], Plan] | None = None,
    on_step: StepHook | None = None,
    figures: Collector | None = None,
) -> Simulation:
    """Replay a fixture's timeline through the engine and check its expectations (`tracer`,
    `on_step`: see `sopdsl.engine.trace`). `versions` holds the plan each `reload` entry loads, by its files as
    the fixture names them (see `sopdsl.dryrun.testing.fixture_versions`); `figures` counts the
    run's figures when given."""
    zone_name = fixture.timezone or plan.declarations.timezone
    start = to_epoch(fixture.start, zone_name)
    delay = None
    if fixture.staff_completes_tasks_after:
        delay = parse_duration(fixture.staff_completes_tasks_after)
    engine = Engine(plan, start=start, seed=fixture.seed, task_delay=delay)
    engine.tracer = tracer
    engine.on_step = on_step
    if figures is not None:
        figures.attach(engine)
    first = engine.plan.content_hash
    _add_groups(engine, fixture.groups)
    past = register_members(engine, fixture, zone_name)
    checks = sorted(
        (to_epoch(e.at, zone_name), i)
        for i, e in enumerate(fixture.expect)
        if e.action is None and e.plan_change is None and e.at
    )
    states: dict[int, str | None] = {}

    def check(index: int) -> None:
        states[index] = _state_problem(engine, fixture.expect[index])

    reloads: list[Reloaded] = []

    running = [plan]

    def reloaded(reload: Reload, changes: list[PlanChange]) -> None:
        previous = reloads[-1].plan if reloads else first
        unrecorded = tuple(unrecorded_windows(running[-1], reload.plan))
        running.append(reload.plan)
        loaded = Reloaded(
            reload.time,
            reload.files,
            previous,
            engine.plan.content_hash,
            len(engine.log),
            changes,
            unrecorded,
        )
        reloads.append(loaded)

    def step(event: FixtureEvent) -> Event | Reload:
        time = to_epoch(event.at, zone_name)
        if event.kind is not None:
            return Event(event.kind, time, event.member, event.group, dict(event.data), event.name, event.id)
        files = event.reload_files
        if versions is None or files not in versions:
            raise ValueError(f"the fixture reloads {', '.join(files)}: pass its plan in `versions`")
        return Reload(time, versions[files], files)

    events: Iterable[Event | Reload] = (step(event) for event in fixture.events[past:])
    if figures is not None:
        events = figures.events(events)
    end = to_epoch(fixture.end, zone_name) if fixture.end else None
    replay(engine, events, end, checks, check, reloaded)
    actions = list(engine.log)
    outcomes = [_judge(i, e, actions, states, zone_name, reloads) for i, e in enumerate(fixture.expect)]
    return Simulation(engine, actions, outcomes, reloads)


def register_members(engine: Engine, fixture: Fixture, zone_name: str) -> int:
    """Register a fixture's members as they were at the start: its member entries, with what its
    events before the start (history, in time order, first) add. Returns how many events that was."""
    epoch = functools.partial(to_epoch, tz_name=zone_name)
    start = epoch(fixture.start)
    history = History()
    past = list(itertools.takewhile(lambda e: e.kind is not None and epoch(e.at) < start, fixture.events))
    for event in past:
        assert event.kind is not None
        history.add(
            Event(event.kind, epoch(event.at), event.member, event.group, dict(event.data), event.name)
        )
    for record in history.records(member.record(epoch) for member in fixture.members):
        engine.add_member(record)
    return len(past)


def replay(
    engine: Engine,
    events: Iterable[Event | Reload],
    end: int | None,
    checks: list[tuple[int, int]] | None = None,
    on_check: Callable[[int], None] | None = None,
    on_reload: Callable[[Reload, list[PlanChange]], None] | None = None,
) -> None:
    """Feed events in order, load each new plan version where the timeline has one, run state
    checks at their instants, then advance to `end`.

    The one driving loop of every dry run (YAML fixtures and JSONL timelines alike). Without an
    end the run stops after the last event or state check. A reload calls `Engine.reload`, as
    the live runtime does, and hands what it did to each flow to `on_reload`.
    """
    engine.start()
    pending = list(checks or ())
    feed = engine.feed
    for event in events:
        while pending and pending[0][0] < event.time:
            moment, index = pending.pop(0)
            engine.advance(moment)
            if on_check is not None:
                on_check(index)
        if isinstance(event, Reload):
            changes = engine.reload(event.plan, at=event.time)
            if on_reload is not None:
                on_reload(event, changes)
        else:
            feed(event)
    for moment, index in pending:
        engine.advance(moment)
        if on_check is not None:
            on_check(index)
    engine.advance(end if end is not None else max([engine.now, *(c[0] for c in pending)]))


@paused_gc
def simulate_timeline(
    plan: Plan,
    timeline: Timeline,
    sink: Callable[[Action], None] | None = None,
    progress: Callable[[int], None] | None = None,
    figures: Collector | None = None,
) -> Engine:
    """Stream a JSONL timeline through the engine; actions go to `sink` as they happen.

    With a sink the engine keeps no log (a long run's actions need not fit in memory).
    `progress` is called now and then with the bytes read so far; `figures` counts the run's
    figures when given. Raises `FixtureError` for bad lines (every one found, with its line). The
    cyclic garbage collector is paused meanwhile: a run allocates several objects per line and
    makes no cycles, so collections would only scan every member's state again and again (7% of a
    run at 10k members, more at 100k).
    """
    header = timeline.header
    engine = Engine(
        plan, start=header.start, seed=header.seed, task_delay=header.task_delay, keep_log=sink is None
    )
    if sink is not None:
        engine.sinks.append(sink)
    if figures is not None:
        figures.attach(engine)
    _add_groups(engine, header.groups)
    records = timeline.records()
    first: Event | None = None
    add_member = engine.add_member
    history = History()
    for record in records:
        if not isinstance(record, Event):
            add_member(record)
        elif record.time < header.start:  # history: sets state, starts nothing
            history.add(record)
        else:
            first = record
            break
    if history:
        # Members are registered as they are read (a million need not be held twice); the ones
        # history speaks of are registered again with it, their own lines still winning.
        listed = [as_listed(engine.members[m]) for m in history.members() if m in engine.members]
        for member in history.records(listed):
            add_member(member)
    events = records if first is None else itertools.chain((first,), records)
    if progress is not None:
        events = _reporting(events, timeline, progress)
    if figures is not None:
        events = figures.events(events)
    replay(engine, events, header.end)  # type: ignore[arg-type]
    return engine


def _reporting(events: Iterator[Any], timeline: Timeline, progress: Callable[[int], None]) -> Iterator[Any]:
    for count, event in enumerate(events, 1):
        if not count & 0x3FFF:
            progress(timeline.read_bytes)
        yield event
    progress(timeline.read_bytes)


def _state_problem(engine: Engine, expectation: Expectation) -> str | None:
    member = engine.members.get(expectation.member or "")
    if member is None:
        return f"no member '{expectation.member}'"
    have = ", ".join(sorted(member.tags)) or "none"
    problems = [
        f"not tagged '{tag}' (tags: {have})" for tag in expectation.tagged or () if tag not in member.tags
    ]
    problems.extend(f"tagged '{tag}'" for tag in expectation.not_tagged or () if tag in member.tags)
    for name, value in (expectation.attributes or {}).items():
        if member.attributes.get(name) != value:
            problems.append(f"{name} is {member.attributes.get(name)!r}, not {value!r}")
    for name, value in (expectation.counters or {}).items():
        if member.counters.get(name, 0) != value:
            problems.append(f"{name} is {member.counters.get(name, 0):g}, not {value:g}")
    if expectation.in_group and expectation.in_group not in member.groups:
        problems.append(f"not in group '{expectation.in_group}'")
    if expectation.not_in_group and expectation.not_in_group in member.groups:
        problems.append(f"still in group '{expectation.not_in_group}'")
    return "; ".join(problems) or None


def _matches(action: Action, e: Expectation) -> bool:
    if action.kind != e.action or action.status != e.status:
        return False
    if e.member is not None and action.member != e.member:
        return False
    if e.group is not None and action.group != e.group:
        return False
    if e.playbook is not None and action.playbook != e.playbook:
        return False
    detail = action.detail
    if e.template is not None and detail.get("template") != e.template:
        return False
    if e.tag is not None and e.tag not in detail.get("tags", ()):
        return False
    if e.coupon is not None and detail.get("coupon") != e.coupon:
        return False
    if e.to_group is not None and detail.get("to_group") != e.to_group:
        return False
    if e.target is not None and action.target != e.target:
        return False
    if e.operator is not None and detail.get("operator") != e.operator:
        return False
    if e.call is not None and detail.get("action") != e.call:
        return False
    if e.args is not None:
        # The arguments named must match; others the call passes are not the expectation's concern.
        given = detail.get("args", {})
        if any(name not in given or given[name] != value for name, value in e.args.items()):
            return False
    if e.attachments is not None and [a.get("type") for a in detail.get("attachments", ())] != e.attachments:
        return False
    if e.mentions is not None and list(detail.get("mentions", ())) != e.mentions:
        return False
    return e.arm is None or detail.get("arm") == e.arm


def moment(epoch: int, tz_name: str) -> str:
    """An instant as tables show it: local to the minute, with its UTC offset, so the hour a
    clock goes back is not ambiguous (`2026-11-01T01:30-04:00`, then `…01:30-05:00`)."""
    text = iso(epoch, timeutil.zone(tz_name))
    return text[:16] + text[19:]


def describe(action: Action, tz_name: str) -> str:
    """A one-line description of an action for tables and failure messages: its time, and, when
    it did not go as planned, the time it was planned for and why (`[deferred from …: quiet
    hours]`, `[dropped: cap: …]`, `[failed: template error: 'coupon' is undefined]`)."""
    what = subject_of(action.kind, action.detail)
    who = action.member or action.group or "-"
    moved = action.planned is not None and action.planned != action.time
    planned = moment(action.planned, tz_name) if moved and action.planned is not None else ""
    why = f": {action.reason}" if action.reason else ""
    if action.status == "done":
        status = f" [deferred from {planned}{why}]" if moved else ""
    else:
        status = f" [{action.status}{why}" + (f"; planned {planned}" if moved else "") + "]"
    return f"{moment(action.time, tz_name)} {action.kind} {what} -> {who}{status}".replace("  ", " ")


def describe_reload(reload: Reloaded, tz_name: str) -> list[str]:
    """Lines for a reload, for tables and failure messages: what it loaded, then what it did to
    each flow in progress (one `plan change ...` line each)."""
    when = moment(reload.time, tz_name)
    head = f"{when} reload {', '.join(reload.files)}: plan {reload.previous[:12]} -> {reload.plan[:12]}"
    if not reload.changes:
        head += ", no flow in progress changed"
    lines = [head, *(f"{when} {change}" for change in reload.changes)]
    warning = reload_warning(reload, tz_name)
    return [*lines, warning] if warning else lines


def reload_warning(reload: Reloaded, tz_name: str) -> str | None:
    """The warning a reload deserves, if the new version counts events the old one did not record."""
    if not reload.unrecorded:
        return None
    when = moment(reload.time, tz_name)
    return (
        f"{when} warning: the new version counts {', '.join(reload.unrecorded)} events over time "
        "windows the old one did not record; those counts start from zero here"
    )


# An action or a plan change as a failure message shows it: its place in the log (an action's
# index; a plan change comes before the action logged after it), its time, and the action or
# the change's line.
_Entry = tuple[tuple[int, int, int], int, Action | str]


def _changes(reloads: list[Reloaded], e: Expectation, tz_name: str) -> list[tuple[_Entry, PlanChange]]:
    """The plan changes of the flows of the expectation's member or group (all, for neither)."""
    every = [(r, change) for r in reloads for change in r.changes]
    return [
        (((r.position, 0, n), r.time, f"{moment(r.time, tz_name)} {change}"), change)
        for n, (r, change) in enumerate(every)
        if (e.member is None or change.member == e.member) and (e.group is None or change.group == e.group)
    ]


def _judge(
    index: int,
    e: Expectation,
    actions: list[Action],
    states: dict[int, str | None],
    tz_name: str,
    reloads: list[Reloaded],
) -> Outcome:
    if e.action is None and e.plan_change is None:
        problem = states.get(index, "no time given for this state check")
        return Outcome(index, e, problem is None, problem or "state as expected")
    changes = _changes(reloads, e, tz_name)
    # Shown on failure: what plan changes did to this member's or group's flows (why they got
    # another version's steps); for an expectation about no one in particular, that is noise.
    named = e.member is not None or e.group is not None
    context = [entry for entry, _ in changes[:5]] if named else []
    if e.plan_change is not None:
        candidates = [entry for entry, change in changes if change.outcome == PLAN_CHANGES[e.plan_change]]
        similar = [entry for entry, _ in changes]
    else:
        logged = list(enumerate(actions))
        candidates = [((i, 1, 0), a.time, a) for i, a in logged if _matches(a, e)]
        similar = [
            ((i, 1, 0), a.time, a)
            for i, a in logged
            if a.kind == e.action and (e.member is None or a.member == e.member or a.group == e.group)
        ]
    found = candidates
    if e.at is not None:
        moment = to_epoch(e.at, tz_name)
        found = [entry for entry in candidates if entry[1] == moment]
    elif e.within is not None:
        low, high = to_epoch(e.within[0], tz_name), to_epoch(e.within[1], tz_name)
        found = [entry for entry in candidates if low <= entry[1] <= high]
    title = expectation_title(e)
    if e.never:
        passed = not found
        message = title if passed else f"expected {title}, but it happened {len(found)} time(s)"
        nearest = found[:5]
    elif e.count is not None:
        passed = len(found) == e.count
        message = title if passed else f"expected {title}, got {len(found)}"
        nearest = found[:8]
    else:
        passed = bool(found)
        message = title if passed else f"expected {title}, but it did not happen"
        nearest = (candidates or similar)[:5]
    if passed:
        return Outcome(index, e, passed, message)
    shown = sorted({entry[0]: entry for entry in (*nearest, *context)}.values(), key=lambda entry: entry[0])
    lines = [item if isinstance(item, str) else describe(item, tz_name) for _, _, item in shown]
    return Outcome(index, e, passed, message, lines)


def expectation_title(e: Expectation) -> str:
    """What an expectation asks, the same whether it holds or not (a JUnit test case's name, and
    an action's or plan change's message when it holds)."""
    if e.action is None and e.plan_change is None:
        parts = [f"member {e.member}"]
        if e.tagged:
            parts.append("tagged " + ", ".join(e.tagged))
        if e.not_tagged:
            parts.append("not tagged " + ", ".join(e.not_tagged))
        parts.extend(
            f"{name} = {value!r}" for name, value in {**(e.attributes or {}), **(e.counters or {})}.items()
        )
        if e.in_group:
            parts.append(f"in group {e.in_group}")
        if e.not_in_group:
            parts.append(f"not in group {e.not_in_group}")
        return " ".join(parts) + (f" at {e.at}" if e.at else "")
    window = ""
    if e.at is not None:
        window = f" at {e.at}"
    elif e.within is not None:
        window = f" between {e.within[0]} and {e.within[1]}"
    if e.never:
        return f"never {_what(e)}{window}"
    if e.count is not None:
        return f"{_what(e)}{window} {e.count} time(s)"
    return f"{_what(e)}{window}"


def _what(e: Expectation) -> str:
    if e.plan_change is not None:
        who = f" for member {e.member}" if e.member else ""
        where = f" in group {e.group}" if e.group else ""
        return f"plan change '{e.plan_change}'{who}{where}"
    parts: list[Any] = [e.action]
    for label in ("playbook", "call", "template", "tag", "coupon", "to_group", "arm", "target", "operator"):
        value = getattr(e, label)
        if value is not None:
            parts.append(f"{label}={value}")
    if e.args is not None:
        parts.append("args=" + json.dumps(e.args, ensure_ascii=False, sort_keys=True))
    parts.extend(
        f"{label}=[{', '.join(getattr(e, label))}]"
        for label in ("attachments", "mentions")
        if getattr(e, label) is not None
    )
    if e.member:
        parts.append(f"to member {e.member}")
    if e.group:
        parts.append(f"in group {e.group}")
    if e.status != "done":
        parts.append(f"({e.status})")
    return " ".join(str(p) for p in parts)
