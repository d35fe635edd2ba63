"""Dry runs: a plan replayed over a fixture timeline on the virtual clock, and expectations checked.

Input: a `Plan` and a `Fixture` (with the plans its `reload` entries load). Output: the action
log, the plan changes, and a verdict per expectation. The engine is the same one the live
runtime drives, and a reload calls the same `Engine.reload`; only the clock differs.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sopdsl.dryrun.fixture_times import to_epoch as to_epoch
from sopdsl.dryrun.fixtures import (
    Fixture,
    FixtureEvent,
    FixtureGroup,
    parse_duration,
)
from sopdsl.dryrun.history import History, as_listed
from sopdsl.dryrun.timeline import Timeline
from sopdsl.dryrun.verdicts import CHANGE_NAMES as CHANGE_NAMES
from sopdsl.dryrun.verdicts import PLAN_CHANGES as PLAN_CHANGES
from sopdsl.dryrun.verdicts import Outcome as Outcome
from sopdsl.dryrun.verdicts import Reload as Reload
from sopdsl.dryrun.verdicts import Reloaded as Reloaded
from sopdsl.dryrun.verdicts import _judge, _state_problem
from sopdsl.dryrun.verdicts import describe as describe
from sopdsl.dryrun.verdicts import describe_reload as describe_reload
from sopdsl.dryrun.verdicts import expectation_title as expectation_title
from sopdsl.dryrun.verdicts import moment as moment
from sopdsl.dryrun.verdicts import reload_warning as reload_warning
from sopdsl.engine.actions import Action
from sopdsl.engine.engine import Engine
from sopdsl.engine.events import Event
from sopdsl.engine.records import GroupRecord
from sopdsl.engine.trace import StepHook, Tracer
from sopdsl.engine.versions import PlanChange, unrecorded_windows
from sopdsl.gcpause import kept_gc
from sopdsl.plan import Plan

if TYPE_CHECKING:
    from sopdsl.figures.collect import Collector


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
    engine.staff_delays = {
        s.id: parse_duration(s.completes_tasks_after) if s.completes_tasks_after else None
        for s in fixture.staff
    }
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
    end = to_epoch(fixture.end, zone_name) if fixture.end else None
    replay(engine, events, end, checks, check, reloaded, figures)
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
    figures: Collector | None = None,
) -> None:
    """Feed events in order, load each new plan version where the timeline has one, run state
    checks at their instants, then advance to `end`.

    The one driving loop of every dry run (YAML fixtures and JSONL timelines alike). Without an
    end the run stops after the last event or state check. A reload calls `Engine.reload`, as
    the live runtime does, and hands what it did to each flow to `on_reload`. `figures` (attached
    to the engine, which counts the events it takes in: see `Collector.attach`) is told here of
    each event a goal counts, once the engine has taken it in; without goals the loop is the same
    as without figures.
    """
    engine.start()
    pending = list(checks or ())
    feed = engine.feed
    judge = figures.judge if figures is not None else None
    goal_kinds = figures.goal_kinds if figures is not None else frozenset()
    if not pending and judge is None:
        # Nothing to do between events but reloads: the engine takes them in a loop of its own.
        events = iter(events)
        while (reload := engine.feed_all(events)) is not None:
            changes = engine.reload(reload.plan, at=reload.time)
            if on_reload is not None:
                on_reload(reload, changes)
    else:
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
                continue
            feed(event)
            if judge is not None and event.kind in goal_kinds:
                judge(event)  # once the engine has taken it in (the timers before it have run)
    for moment, index in pending:
        engine.advance(moment)
        if on_check is not None:
            on_check(index)
    engine.advance(end if end is not None else max([engine.now, *(c[0] for c in pending)]))


@kept_gc
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
    run at 10k members, more at 100k). What the run built is then promoted out of the young
    generations, so the first collection after it does not scan it all (`gcpause.kept_gc`).
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
    records: Iterator[Any] = itertools.chain.from_iterable(timeline.blocks())
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
    del history  # folded into the members: not kept through the run
    events = records if first is None else itertools.chain((first,), records)
    if progress is not None:
        events = _reporting(events, timeline, progress)
    replay(engine, events, header.end, figures=figures)
    return engine


def _reporting(events: Iterator[Any], timeline: Timeline, progress: Callable[[int], None]) -> Iterator[Any]:
    for count, event in enumerate(events, 1):
        if not count & 0x3FFF:
            progress(timeline.read_bytes)
        yield event
    progress(timeline.read_bytes)
