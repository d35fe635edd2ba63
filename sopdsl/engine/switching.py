"""Plan versions: switching a running engine to another version of its playbooks."""

from __future__ import annotations

import functools
import heapq
from typing import Any, assert_never, cast

from sopdsl import lang
from sopdsl.engine import versions
from sopdsl.engine.flows import _Flows
from sopdsl.engine.parts import _Compiled, in_group, membership
from sopdsl.engine.policy import template_tags
from sopdsl.engine.state import Flow, MemberState, WaitDelivery, WaitEvent, WaitTask, event_wait
from sopdsl.engine.timers import FLOW_TIMERS, absence, silence_in
from sopdsl.engine.trigger_absence import ABSENCE
from sopdsl.engine.trigger_counts import GROUP_SIZE
from sopdsl.engine.trigger_dates import DATES
from sopdsl.engine.versions import PlanChange
from sopdsl.plan import Instr, Plan, timeutil


class _Switching(_Flows):
    """Plan versions: switching a running engine to another version of its playbooks."""

    __slots__ = ()  # the engine's state is in `_Parts`'s slots

    def reload(self, plan: Plan, *, at: int | None = None) -> list[PlanChange]:
        """Switch to another version of the plan at `at`, keeping every member's and group's state.

        Timers due by `at` run first, under the version they were set by. Then calendars and
        triggers are armed from the new version, and each flow in progress goes on as the new
        version of its playbook declares (`on change finish` or `migrate`; a playbook whose steps
        did not change just goes on). Returns what happened to each flow moved, finished or ended.
        """
        if not plan.content_hash:
            plan = plan.with_hash()
        if plan.content_hash == self.plan.content_hash:
            return []
        if self._started and at is not None:
            self.advance(at)
        old_live, old_compiled, old_armed = self.live, self.compiled, self.armed
        new_index = {c.name: i for i, c in enumerate(plan.playbooks)}
        version = plan.content_hash[:12]
        changes: list[PlanChange] = []
        retired: list[tuple[Plan, int]] = []
        retired_at: dict[int, int] = {}  # old index -> index among the retired
        moves: list[tuple[Flow, int, int]] = []
        for flow in sorted(self.flows.values(), key=lambda f: f.id):
            c = old_compiled[flow.playbook]
            j = new_index.get(c.playbook.name)
            if flow.playbook >= len(old_live) and c.plan.content_hash != plan.content_hash:
                j = None  # finishing on an earlier version: it stays there (unless that one returns)
            new = plan.playbooks[j] if j is not None else None
            at_step = c.code_of(flow.entry)[flow.pc].loc
            change = functools.partial(
                PlanChange, c.playbook.name, flow.member, flow.group, old=c.version, new=version
            )
            if new is not None and versions.same_steps(c.source, new):
                moves.append((flow, cast(int, j), flow.pc))
            elif new is not None and new.on_change is lang.OnChange.MIGRATE:
                pc = versions.map_position(c.source, new, flow.entry, flow.pc)
                if pc is None:
                    changes.append(change(versions.ENDED, at=at_step))
                    self._unwait(flow)
                    self._drop(flow)
                else:
                    moves.append((flow, cast(int, j), pc))
                    code = new.code if flow.entry < 0 else new.schedule[flow.entry].code
                    changes.append(change(versions.MOVED, at=code[pc].loc))
            else:
                if flow.playbook not in retired_at:
                    retired_at[flow.playbook] = len(retired)
                    retired.append((c.plan, c.position))
                moves.append((flow, len(plan.playbooks) + retired_at[flow.playbook], flow.pc))
                changes.append(change(versions.FINISHES, at=at_step))
        self.delivery = self.delivery.moved_to(
            plan.declarations.policy, plan.declarations.coupons, template_tags(plan)
        )
        before = self.program.groups
        # A timer's origin names its playbook by index: written out before the indices change.
        self._cause = self._origin()
        self._install(plan, retired)
        self._redeclare(before)
        for flow, index, pc in moves:
            flow.playbook, flow.pc = index, pc
            instr = self.compiled[index].code_of(flow.entry)[pc]
            if instr.op == "wait_for":
                self._rewait(flow, instr)
        self._carry_over(old_live, old_armed)
        return changes

    def _redeclare(self, before: dict[str, lang.Group]) -> None:
        """Groups the engine knows take the new version's declarations, as a group met afresh would.

        A declaration only took effect when its group was first met, so a version that newly
        declared a known group's tags never put them in force (nor dropped the ones it removed).
        """
        for group_id, group in self.groups.items():
            old, new = before.get(group_id), self.program.groups.get(group_id)
            if old == new:
                continue
            group.tags -= set(old.tags if old else ()) - set(new.tags if new else ())
            group.tags |= set(new.tags if new else ())
            if new is not None and new.operator and group.operator in (None, old.operator if old else None):
                group.operator = new.operator
            zones = (old.timezone if old else None, new.timezone if new else None)
            if zones[0] != zones[1]:
                group.zone = timeutil.zone(zones[1] or self.program.timezone)

    @staticmethod
    def _rewait(flow: Flow, instr: Instr) -> None:
        """A flow moved onto a `wait … for` by a reload: an edited wait waits for its new event."""
        match flow.waiting:
            case WaitEvent() | WaitTask():
                assert instr.wait is not None
                flow.waiting = event_wait(instr.wait, flow.event)
            case WaitDelivery() | None:
                pass  # held by an action (it reaches the wait once that goes out), or not waiting
            case _:
                assert_never(flow.waiting)

    def _carry_over(
        self, old_live: list[_Compiled], old_armed: dict[tuple[int, int], dict[str, int]]
    ) -> None:
        """After a reload: keep what triggers the new version shares with the old one did; re-arm the rest."""
        same: dict[tuple[int, int], tuple[int, int]] = {}  # old (playbook, trigger) -> new
        by_name = {c.playbook.name: c for c in self.live}
        for old in old_live:
            c = by_name.get(old.playbook.name)
            if c is None:
                continue
            for t_index, trigger in enumerate(old.playbook.triggers):
                if t_index < len(c.playbook.triggers) and versions.same_trigger(
                    trigger, c.playbook.triggers[t_index]
                ):
                    same[(old.index, t_index)] = (c.index, t_index)
        self.entered = {
            by_name[name].index: table
            for i, table in self.entered.items()
            if i < len(old_live) and (name := old_live[i].playbook.name) in by_name
        }
        fired: set[tuple[Any, ...]] = set()
        for key in self.fired:
            moved = same.get((key[1], key[2]))
            if moved is not None:
                fired.add((key[0], *moved, *key[3:]))
        self.fired = fired
        self._started_now.clear()  # keyed by the old version's playbooks
        earlier: dict[tuple[int, int], int] = {}  # absences carried over with their members: old playbook
        for (i, t_index), table in old_armed.items():
            moved = same.get((i, t_index))
            if moved is not None and moved in self.armed:
                self.armed[moved].update(table)
                earlier[moved] = i
        # Timers of triggers and calendars are set again from the new version; flows' own stay.
        self.heap = [e for e in self.heap if isinstance(e[5], FLOW_TIMERS)]
        heapq.heapify(self.heap)
        if not self._started:
            return
        for group in sorted(self.groups.values(), key=lambda g: g.id):
            self._arm_group(group)
            for c, t_index, trigger in self._triggers.get("group_size", ()):
                if (c.index, t_index) not in same.values():
                    GROUP_SIZE.at_start(self, c, t_index, trigger, group)  # as at start: reached before
        for (i, t_index), table in self.armed.items():
            if (i, t_index) in earlier:
                trigger = cast(lang.OnAbsence, self.compiled[i].playbook.triggers[t_index])
                if in_group(trigger, self.compiled[i].playbook):
                    for place, since in sorted(table.items()):
                        member_id, _, group_id = place.partition("\x00")
                        in_zone = self.groups[group_id].zone if group_id in self.groups else self.zone
                        due = timeutil.add(since, trigger.duration, in_zone)
                        self._push(due, i, member_id, silence_in(t_index, group_id), group_id)
                    continue
                for member_id, since in sorted(table.items()):
                    last = ABSENCE.last(self.members[member_id], trigger.event)
                    due = timeutil.add(max(since, last or since), trigger.duration, self.zone)
                    self._push(due, i, member_id, absence(t_index))
        for member in sorted(self.members.values(), key=lambda m: m.id):
            if not member.arrived:
                continue
            for c, t_index, trigger in self._triggers.get("absence", ()):
                if in_group(trigger, c.playbook):
                    self._rearm_silence_in(
                        c,
                        t_index,
                        member,
                        old_live[earlier[(c.index, t_index)]] if (c.index, t_index) in earlier else None,
                    )
                    continue
                if not ABSENCE.applies(self, c, member):
                    continue
                if (c.index, t_index) not in earlier:
                    ABSENCE.arm(self, c, t_index, member, self.now)
                elif member.id not in self.armed[(c.index, t_index)]:
                    # Not counting: their silence already fired, or the old version did not
                    # apply to them (a wider scope, `apply to all members` added): from now.
                    before = old_live[earlier[(c.index, t_index)]]
                    if not ABSENCE.applies(self, before, member):
                        ABSENCE.arm(self, c, t_index, member, self.now)
            for kind in ("date_offset", "anniversary"):
                for c, t_index, trigger in self._triggers.get(kind, ()):
                    DATES.arm_member(self, c, t_index, trigger, member, self.now, None)
        self._arm_private()

    def _rearm_silence_in(
        self, c: _Compiled, t_index: int, member: MemberState, before: _Compiled | None
    ) -> None:
        """After a plan switch, count a member's silence in each group of the new scope that is not
        counting yet: from now, unless the old version counted it there and it already fired."""
        table = self.armed[(c.index, t_index)]
        for group_id in sorted(member.groups):
            if not ABSENCE.applies_in(self, c, member, group_id) or membership(member.id, group_id) in table:
                continue
            if before is None or not ABSENCE.applies_in(self, before, member, group_id):
                ABSENCE.arm_in(self, c, t_index, member, group_id, self.now)
