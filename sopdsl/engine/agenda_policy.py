"""The group calendar (`plan.agenda`) held to the engine's delivery policy, so that `sopdsl plan`
and the report's 群日历 (`figures.report`) show when the engine would really send: quiet hours
and caps that defer move an entry's sends (a cap's next period, then the quiet hours it may
begin in), caps that drop and coupons out of stock drop them.

Input: a plan and its calendar's slots. Output: the slots, each with when its actions have all
gone out if the policy moved them, and why, in the engine's own words (each reason once). The
decisions are the engine's (`policy.Delivery.decide`, one instance for the whole calendar, as
one engine keeps one), taken in the engine's order (its timer heap's: due, playbook, member,
group, then first come). Only the calendar's own actions are counted: a send an event sets off
counts against a cap in the engine too, which a calendar cannot know. An entry `for each member`
is played for one member of each group (a member's caps count as theirs), down the first arm of
a split that does something.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import replace
from typing import assert_never

from sopdsl import lang
from sopdsl.engine.actions import Action
from sopdsl.engine.policy import Delivery, template_tags
from sopdsl.plan import Plan, timeutil
from sopdsl.plan.agenda import Slot, actions_in_order

_FARTHEST = 400 * 86400  # seconds past its time a slot is followed (the engine's window span)


def _action(step: lang.Action, slot: Slot, member: str | None, now: int) -> Action:
    """The action the engine would decide on for a step of the slot's entry, as `acting` makes
    it: what the policy reads of it (kind, whom, template, channel, coupon)."""
    kind = getattr(step, "kind", "call")
    target = getattr(step, "target", "member")
    detail: dict[str, object]
    match step:
        case lang.SendStep():
            detail = {"template": step.template, "channel": step.channel}
        case lang.GrantStep():
            detail = {"coupon": step.coupon}
        case lang.InviteStep():
            detail = {"group": step.group}
        case (
            lang.TagStep()
            | lang.KickStep()
            | lang.AddStep()
            | lang.SetStep()
            | lang.CallStep()
            | lang.DissolveStep()
            | lang.DrawStep()
        ):
            detail = {}  # nothing of theirs the policy reads but their kind and whom
        case _:
            assert_never(step)
    whom = None if target == "group" else member
    return Action(now, kind, slot.playbook, "", whom, slot.group, target, detail, loc=slot.loc)


def held_to_policy(plan: Plan, slots: Sequence[Slot]) -> list[Slot]:
    """The slots (sorted) with the moves and drops the engine's delivery policy makes of them."""
    delivery = Delivery(
        plan.declarations.policy, plan.declarations.coupons, template_tags=template_tags(plan)
    )
    order = {pb.name: index for index, pb in enumerate(plan.playbooks)}
    entries = {(pb.name, e.loc): e for pb in plan.playbooks for e in pb.schedule}
    ordered = sorted(slots)
    # (due, playbook, member, group, seq) as the engine's heap orders its timers, then the slot
    # and the step of its entry it is at.
    heap = [((slot.time, order[slot.playbook], "", slot.group, i), i, 0) for i, slot in enumerate(ordered)]
    heapq.heapify(heap)
    seq = len(ordered)
    went = [slot.time for slot in ordered]
    # Why each slot was moved: the policy's reasons, each said once in the order first met (the
    # engine's log says a send put off for a week `cap…, then quiet hours, then cap…` seven times).
    moved: list[list[str]] = [[] for _ in ordered]
    dropped = [""] * len(ordered)
    steps = {key: actions_in_order(entry.code) for key, entry in entries.items()}
    zones = {slot.zone: timeutil.zone(slot.zone or plan.declarations.timezone) for slot in ordered}
    while heap:
        (now, rank, _, group, _), index, step = heapq.heappop(heap)
        slot = ordered[index]
        key = (slot.playbook, slot.loc)
        member = f"{group}\0member" if entries[key].for_each_member else None
        actions, tz = steps[key], zones[slot.zone]
        went[index] = now
        while step < len(actions):
            decision = delivery.decide(_action(actions[step], slot, member, now), now, tz, None)
            if decision.verdict == "defer":
                assert decision.until is not None
                reason = decision.reason or "the delivery policy"
                if reason not in moved[index]:
                    moved[index].append(reason)
                if decision.until - slot.time > _FARTHEST:
                    went[index] = decision.until  # a cap nothing gets under: no end to play to
                    break
                seq += 1
                heapq.heappush(heap, ((decision.until, rank, member or "", group, seq), index, step))
                break
            if decision.verdict != "go" and not dropped[index]:
                dropped[index] = decision.reason or decision.verdict
            step += 1
    return [
        replace(slot, moved_to=went[i], moved_by=", then ".join(moved[i]), dropped=dropped[i])
        if moved[i]
        else replace(slot, dropped=dropped[i])
        for i, slot in enumerate(ordered)
    ]
