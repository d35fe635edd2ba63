"""What a member's flows did between their trigger and their actions, for `sopdsl why`: each
`wait … for` (and `assign`) with what ended it, and the actions the flows took on the group.

Input: the engine's step hook (`sopdsl.engine.trace.StepHook`) during the dry run. Output:
`WaitSeen` records and the places the member's flows acted, read after the run.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sopdsl import lang
from sopdsl.engine.state import Flow, MemberState
from sopdsl.plan import CompiledPlaybook


@dataclass
class WaitSeen:
    """One wait of a member's flow: what it waited for, since when, and what ended it."""

    playbook: str
    loc: str
    text: str  # `wait 1 day for message`, `assign a task to the operator within 2 hours`
    since: int
    flow: int
    ended: int | None = None
    came: bool = False  # the awaited event (or the task done) ended it, rather than the timeout
    then_loc: str = ""  # the first step it went on to


@dataclass
class StepLog:
    """The step hook `why` runs with: the member's waits, and where their flows acted (playbook,
    step's place, group, instant), so a send to the group is traced to the member who caused it."""

    member: str
    playbook: str | None = None
    waits: list[WaitSeen] = field(default_factory=list)
    acted: set[tuple[str, str, str | None, int]] = field(default_factory=set)
    # The member's flows as first seen, by id (so in the order they began): playbook, when it
    # began, the trigger's place; and which flows acted at each (playbook, step's place, instant).
    runs: dict[int, tuple[str, int, str]] = field(default_factory=dict)
    actors: dict[tuple[str, str, int], list[int]] = field(default_factory=dict)
    _open: dict[int, tuple[WaitSeen, int]] = field(default_factory=dict)  # flow id -> (wait, pc)
    _claimed: set[int] = field(default_factory=set)

    def hook(self, compiled: CompiledPlaybook, flow: Flow, now: int) -> None:
        """The engine's step hook: note the member's waits and acts as its flows run."""
        if flow.member != self.member or (self.playbook and compiled.name != self.playbook):
            return
        code = compiled.code if flow.entry < 0 else compiled.schedule[flow.entry].code
        self.runs.setdefault(flow.id, (compiled.name, flow.started, flow.trigger))
        pending = self._open.pop(flow.id, None)
        if pending is not None:
            seen, at = pending
            # A wait goes on at the step after it when what it waited for came, and past its
            # `then` steps (the compiler puts a jump there) when it timed out.
            seen.ended, seen.came = now, flow.pc == at + 1
            step = flow.pc
            while step < len(code) and code[step].op == "jump":  # an empty branch: where it leads
                step = code[step].jump or len(code)
            seen.then_loc = code[step].loc if step < len(code) else ""
        if flow.pc >= len(code):
            return
        instr = code[flow.pc]
        if instr.op in ("wait_for", "assign"):
            seen = WaitSeen(
                compiled.name,
                instr.loc,
                _wait_text(instr.wait, instr.duration, instr.to or "operator"),
                now,
                flow.id,
            )
            self.waits.append(seen)
            self._open[flow.id] = (seen, flow.pc)
        elif instr.op == "act":
            self.acted.add((compiled.name, instr.loc, flow.group, now))
            self.actors.setdefault((compiled.name, instr.loc, now), []).append(flow.id)

    def claim(self, playbook: str, started: int, trigger: str) -> int | None:
        """The flow a decision to start `playbook` at `started` by `trigger` began, once per
        decision: two starts at one instant by one trigger (two posts) take them in order."""
        for flow, run in self.runs.items():
            if run == (playbook, started, trigger) and flow not in self._claimed:
                self._claimed.add(flow)
                return flow
        return None

    def flow_of(self, playbook: str, loc: str, decided: int) -> int | None:
        """The flow that took the action at `loc` decided at `decided`, once per action: two flows
        acting at one place and instant are told apart by the order they acted in."""
        flows = self.actors.get((playbook, loc, decided))
        return flows.pop(0) if flows else None


def _wait_text(wait: lang.EventWait | None, within: lang.Duration | None, to: str) -> str:
    if wait is None:
        return f"assign a task to the {to} within {duration_text(within)}"
    pattern = wait.pattern
    what = pattern.kind.value + (f" {pattern.tag or pattern.custom}" if pattern.tag or pattern.custom else "")
    where = "".join(f" where event.{a} == flow.{b}" for a, b in wait.same)
    return f"wait {duration_text(wait.timeout)} for {what}{where}"


def duration_text(duration: lang.Duration | None) -> str:
    """A duration as the playbook writes it: `1 day`, `28 days`."""
    if duration is None:
        return "?"
    return f"{duration.amount} {duration.unit.value}{'s' if duration.amount != 1 else ''}"


_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_WORDS = {(0, 1, 2, 3, 4, 5, 6): "day", (0, 1, 2, 3, 4): "weekday", (5, 6): "weekend"}


def inline_text(rule: lang.CalendarRule | None) -> str | None:
    """An entry's own calendar as the playbook writes it after `at` (`2026-06-18 10:00`, `every
    monday at 20:00`), or None for one `why` does not spell out."""
    if isinstance(rule, lang.Dates):
        dates = ", ".join(f"{d:%Y-%m-%d}" for d in rule.dates)
        return f"{dates} {', '.join(f'{t:%H:%M}' for t in rule.times)}"
    if isinstance(rule, lang.Weekly):
        days = tuple(sorted(rule.weekdays))
        named = _DAY_WORDS.get(days) or ", ".join(_DAYS[d] for d in days)
        return f"every {named} at {', '.join(f'{t:%H:%M}' for t in rule.times)}"
    return None


def dates_told(pb: CompiledPlaybook, member: MemberState, tz: dt.tzinfo) -> list[str]:
    """For a playbook none of whose triggers fired: the day each of its date triggers reads, as
    the run ended (`member.coupon_due is not set`: a `set` that failed, or nothing set it)."""
    told = []
    for trigger in pb.triggers:
        if isinstance(trigger, lang.OnDateOffset | lang.OnAnniversary):
            value = member.field_value(trigger.attribute)
            if isinstance(value, int):  # a built-in instant, such as joined_at
                value = dt.datetime.fromtimestamp(value, tz).date().isoformat()
            shown = "is not set" if value is None or value == "" else f"is {value}"
            told.append(f"  (member.{trigger.attribute} {shown} at the end of the run)")
    return told
