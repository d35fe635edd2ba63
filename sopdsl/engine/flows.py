"""Flows: starting a playbook for a member or group, and running its instructions."""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from typing import Any, Final, Protocol, cast
from zoneinfo import ZoneInfo

from sopdsl.engine import trace
from sopdsl.engine.acting import _Acting
from sopdsl.engine.actions import Action
from sopdsl.engine.conditions import Test
from sopdsl.engine.events import Event
from sopdsl.engine.parts import _Compiled
from sopdsl.engine.state import Flow, GroupState, MemberState, event_wait
from sopdsl.engine.timers import Resume, Timeout, origin_text
from sopdsl.plan import Instr, timeutil


class _Digest(Protocol):
    def hexdigest(self) -> str: ...


def _own_sha256() -> Callable[[bytes], _Digest]:
    """CPython's own SHA-256 where it has one (`_sha2` from 3.12, `_sha256` before), else
    hashlib's: for a key's few dozen bytes, OpenSSL's set-up per call costs more than the hashing
    (1,570 of about 7,800 instructions a key, callgrind). The digest is SHA-256's either way."""
    for name in ("_sha2", "_sha256"):
        try:
            return cast("Callable[[bytes], _Digest]", importlib.import_module(name).sha256)
        except (ImportError, AttributeError):
            continue
    return hashlib.sha256


_sha256: Final = _own_sha256()  # once per action


class _Flows(_Acting):
    """Flows: starting a playbook for a member or group, and running its instructions."""

    __slots__ = ()  # the engine's state is in `_Parts`'s slots

    def _start_flow(
        self,
        c: _Compiled,
        member: MemberState,
        group_id: str | None,
        trigger: str,
        event: dict[str, Any],
        now: int,
        *,
        check_scope: bool = True,
    ) -> None:
        pb = c.playbook
        group = self.groups.get(group_id) if group_id else None
        tz = group.zone if group is not None else self.zone
        key = (c.index, member.id)
        entered = self.entered.get(c.index)
        last = entered.get(member.id) if entered is not None else None
        if self._instant != now:
            self._instant = now
            self._started_now.clear()
        if check_scope and not self._in_scope(c, group_id):
            verdict = trace.OUT_OF_SCOPE
        elif self._started_now.get(key, trigger) != trigger:
            # Two of its triggers at once (no order and no message for a year, both counted
            # from the start): one run. The same trigger twice (two posts) runs twice.
            verdict = trace.SAME_INSTANT
        else:
            # The common case (always active, never started) needs no call to `_held_back`.
            held = (
                self._held_back(pb, last, now, tz)
                if (last is not None or not c.always_active) and not c.never_held
                else None
            )
            verdict = held or trace.STARTED
            guard = c.guard
            if verdict is trace.STARTED and guard is not None:
                try:
                    holds: bool | None = guard(member, group, event, now, tz)
                except (TypeError, ValueError, ArithmeticError):
                    # Asked again through `_holds`, which logs the failure (a test reads, never writes).
                    holds = self._holds(guard, c, "when", member, group, event, now, tz, trigger)
                if not holds:
                    verdict = trace.GUARD_FALSE if holds is False else trace.GUARD_FAILED
        if self.tracer is not None:
            self.tracer(
                trace.Decision(
                    now,
                    pb,
                    member,
                    group,
                    trigger,
                    event,
                    tz,
                    verdict,
                    last,
                    self.members.get(member.referrer) if member.referrer else None,
                    self.delivery.left,
                )
            )
        if verdict is not trace.STARTED:
            return
        if entered is None:  # made when first written: a snapshot restores no empty table
            entered = self.entered[c.index] = {}
        entered[member.id] = now
        self._started_now[key] = trigger
        self._begin(c, -1, member, group, trigger, event, now)

    def _begin(
        self,
        c: _Compiled,
        entry: int,
        member: MemberState | None,
        group: GroupState | None,
        trigger: str,
        event: dict[str, Any],
        now: int,
    ) -> None:
        self._flow_ids += 1
        flow_id = self._flow_ids
        member_id = member.id if member is not None else None
        # Every field positionally: a dataclass's keywords cost more, and this runs per flow.
        flow = Flow(
            flow_id,
            c.index,
            entry,
            member_id,
            group.id if group is not None else None,
            0,
            trigger,
            now,
            event,
            None,
            None,
            0,
            None,
            # `_origin`, its common case (an event fed) written out: this runs per flow.
            (f"e:{cause.id}" if cause.id is not None else f"#{self._fed}")
            if type(cause := self._cause) is Event
            else self._origin(),
            0,
        )
        self.flows[flow_id] = flow
        if member_id is not None:
            ids = self.member_flows.get(member_id)
            if ids is None:
                self.member_flows[member_id] = [flow_id]
            else:
                ids.append(flow_id)
        if self.watch is not None:
            self.watch.flow_begun(c.source, flow, self.now)
        # The member and group are the engine's own records (what `_run` would look up again).
        self._go(flow, c, member, group, group.zone if group is not None else self.zone)

    def _run(self, flow: Flow) -> None:
        group = self.groups.get(flow.group) if flow.group else None
        self._go(
            flow,
            self.compiled[flow.playbook],
            self.members.get(flow.member) if flow.member else None,
            group,
            group.zone if group is not None else self.zone,
        )

    def _go(
        self, flow: Flow, c: _Compiled, member: MemberState | None, group: GroupState | None, tz: ZoneInfo
    ) -> None:
        """Run a flow's instructions from its program counter until it waits or ends."""
        code = c.steps if flow.entry < 0 else c.schedule_steps[flow.entry]
        hook = self.on_step
        ended = True  # past its last step or at a `stop`; False where a test could not be decided
        while flow.pc < len(code):
            if hook is not None:
                hook(c.source, flow, self.now)
            step = code[flow.pc]
            op = step.op
            if op == "act":
                self._act(flow, c, step, member, group, tz)
                if flow.id not in self.flows or flow.waiting is not None:
                    return  # ended, or held until a deferred action goes out (see _policy)
                flow.pc += 1
            elif op == "jump":
                assert step.jump is not None
                flow.pc = step.jump
            elif op == "branch":
                test = c.branch_conds[(flow.entry, flow.pc)]
                holds = self._holds(
                    test, c, "if", member, group, flow.event, self.now, tz, flow.trigger, flow, step.loc
                )
                if holds is None:
                    ended = False
                    break  # neither branch is right for a test that could not be decided: the flow ends
                if holds:
                    flow.pc += 1
                else:
                    assert step.jump is not None
                    flow.pc = step.jump
            elif op == "split":
                flow.pc = self._choose(flow, c, step.instr)
            elif op == "stop":
                break
            elif op == "wait":
                assert step.duration is not None
                flow.token += 1
                self._push(
                    timeutil.add(self.now, step.duration, tz),
                    flow.playbook,
                    flow.member or "",
                    Resume(flow.id, flow.token),
                    flow.group or "",
                )
                return
            else:  # wait_for, assign
                flow.token += 1
                timeout = step.duration if op == "assign" else step.timeout
                assert timeout is not None
                if op == "assign":
                    self._assign(flow, c, step.instr, member, group, tz)  # the task and its wait (tasks.py)
                else:
                    if step.awaits is not None:  # a plain `wait … for`: one shared record (see `Step`)
                        flow.waiting = step.awaits
                    else:
                        assert step.instr.wait is not None
                        flow.waiting = event_wait(step.instr.wait, flow.event)
                    if flow.member is not None:
                        self.waits.setdefault(flow.member, set()).add(flow.id)
                self._push(
                    timeutil.add(self.now, timeout, tz),
                    flow.playbook,
                    flow.member or "",
                    Timeout(flow.id, flow.token),
                    flow.group or "",
                )
                return
        if hook is not None:
            hook(c.source, flow, self.now)  # where it ended: past its last step, or at a `stop`
        if ended and self.watch is not None:
            self.watch.flow_ended(c.source, flow, self.now)
        if flow.member in self.waits:
            self._unwait(flow)
        else:
            flow.waiting = None  # nothing of the member's waits: nothing to take it out of
        self._drop(flow)

    def _holds(
        self,
        test: Test,
        c: _Compiled,
        what: str,
        member: MemberState | None,
        group: GroupState | None,
        event: dict[str, Any],
        now: int,
        tz: ZoneInfo,
        trigger: str,
        flow: Flow | None = None,
        loc: str = "",
    ) -> bool | None:
        """A condition's answer, or None when the member's data made it fail (a value of the wrong
        type: a list where a number was declared); the failure is logged as a failed `what` record,
        and stops only this member's run of this trigger."""
        try:
            return test(member, group, event, now, tz)
        except (TypeError, ValueError, ArithmeticError) as exc:
            if flow is not None:
                key = self._key_for(flow)
            else:
                subject = f"{member.id if member else ''}|{group.id if group else ''}"
                raw = f"{self._origin()}|{c.playbook.name}|{what}|{trigger}|{subject}"
                key = hashlib.sha256(raw.encode()).hexdigest()[:24]
            self._emit(
                Action(
                    now,
                    what,
                    c.playbook.name,
                    key,
                    member=member.id if member else None,
                    group=group.id if group else None,
                    target="member" if member else "group",
                    status="failed",
                    reason=f"condition error: {type(exc).__name__}: {exc}",
                    loc=loc or c.playbook.loc,
                    trigger=trigger,
                )
            )
            return None

    def _choose(self, flow: Flow, c: _Compiled, instr: Instr) -> int:
        split = c.split_names[(flow.entry, flow.pc)]
        digest = hashlib.sha256(f"{self.seed}:{c.playbook.name}:{split}:{flow.member}".encode()).digest()
        point = int.from_bytes(digest[:8], "big") / 2**64 * 100
        total = 0.0
        for arm in instr.arms:
            total += arm.percent
            if point < total:
                flow.arm = arm.name
                break
        else:
            arm = instr.arms[-1]
            flow.arm = arm.name
        if self.watch is not None and flow.member is not None:
            self.watch.flow_armed(c.source, flow, self.now)
        return arm.pc

    def _origin(self) -> str:
        """What is being processed now, as the text a flow's keys derive from: `e:ID` for an event
        with an id, `#N` for the Nth event fed without one, `t...` for a trigger's timer."""
        cause = self._cause
        if isinstance(cause, str):
            return cause
        if isinstance(cause, Event):
            return f"e:{cause.id}" if cause.id is not None else f"#{self._fed}"
        due, pb_index, member_id, _group, _seq, timer = cause
        name = self.compiled[pb_index].name
        kind, fields = origin_text(timer)
        return f"t{kind}{name}:{member_id}:{due}:{fields}"

    def _key_for(self, flow: Flow) -> str:
        """The idempotency key of the flow's next action: what started the flow, whose flow it is,
        and how many actions it decided before. Unique per decided action and the same on every
        replay; no clock, no path and no plan version goes into it."""
        flow.acts += 1
        name = self.compiled[flow.playbook].name
        raw = f"{flow.origin}|{name}|{flow.entry}|{flow.member or ''}|{flow.group or ''}|{flow.acts}"
        return _sha256(raw.encode()).hexdigest()[:24]
