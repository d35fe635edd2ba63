"""Whether a plan's dry run may be split by member across processes, and if not, why.

Input: a `Plan`. Output: None when every playbook only reads and changes its own member's state
(and the groups' fixed fields), so that shards of members run apart give the log one process
gives; else the first reason found, naming the playbook line. Conservative: whatever reads or
changes what several members share forces one process (`sopdsl.dryrun.shard` says so and runs it
in one):

- the policy's caps per group or over everyone (kick limits among them) and coupons with a stock;
- a `draw` (a group's members), `group.size`, `coupon X in stock`, anything of the referrer;
- triggers on a group (its size, its silence) and calendar entries `for each member`;
- tagging or dissolving a group (its scope changes for every member);
- a member's flow sending to the group where the policy can hold the send back (quiet hours, a
  cap): the held sends of members of different shards would share one queue.

Calendar entries without `for each member` run alike in every shard (they read no member), and
only one shard's copy of their actions is kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import assert_never

from sopdsl import lang
from sopdsl.plan import CompiledPlaybook, Instr, Plan, TemplateField

# The group's fields every shard reads alike: given by the header or the plan, never changed by
# a member's flow (tags would be, by `tag group`, which forces one process on its own).
_FIXED_GROUP_FIELDS = frozenset(("id", "name", "owner", "operator", "tags"))
_BLOCK = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
_GROUP_USE = re.compile(r"\bgroup\b(\s*\.\s*(\w+))?")
_REFERRER = re.compile(r"\breferrer\b")


def one_shard_reason(plan: Plan) -> str | None:
    """Why this plan's dry run must run in one process, or None when members may be sharded."""
    return next(iter(_reasons(plan)), None)


def _reasons(plan: Plan) -> Iterable[str]:
    declarations = plan.declarations
    for cap in declarations.policy.caps:
        if cap.subject is not lang.CapSubject.MEMBER:
            yield f"{cap.loc}: the cap `{cap.text()}` counts the actions of several members"
    for coupon in declarations.coupons.values():
        if coupon.stock is not None:
            yield f"coupon {coupon.name} has a stock, which all members draw from"
    for template in declarations.templates.values():
        problem = _template_problem(template.parts, template.source)
        if problem is not None:
            yield f"{template.loc}: template {template.name} {problem}"
    holds_sends = declarations.policy.quiet_start is not None or any(
        cap.noun is lang.CapNoun.SEND and cap.overflow is lang.Overflow.DEFER
        for cap in declarations.policy.caps
    )
    for playbook in plan.playbooks:
        yield from _playbook_reasons(playbook, holds_sends)


def _playbook_reasons(pb: CompiledPlaybook, holds_sends: bool) -> Iterable[str]:
    for trigger in pb.triggers:
        problem = _trigger_problem(trigger)
        if problem is not None:
            yield f"{trigger.loc}: playbook {pb.name} {problem}"
    if pb.guard is not None:
        problem = _cond_problem(pb.guard)
        if problem is not None:
            yield f"{pb.loc}: playbook {pb.name}'s `when` {problem}"
    for instr in pb.code:  # a member's flow (every trigger left starts one for a member)
        yield from _instr_reasons(pb, instr, member_flow=True, holds_sends=holds_sends)
    for entry in pb.schedule:
        if entry.for_each_member:
            yield f"{entry.loc}: playbook {pb.name} runs a calendar entry for each member of a group"
        if entry.cond is not None:
            problem = _cond_problem(entry.cond)
            if problem is not None:
                yield f"{entry.loc}: playbook {pb.name}'s calendar `when` {problem}"
        for instr in entry.code:
            yield from _instr_reasons(pb, instr, member_flow=entry.for_each_member, holds_sends=holds_sends)


def _instr_reasons(
    pb: CompiledPlaybook, instr: Instr, *, member_flow: bool, holds_sends: bool
) -> Iterable[str]:
    where = f"{instr.loc}: playbook {pb.name}"
    if instr.cond is not None:
        problem = _cond_problem(instr.cond)
        if problem is not None:
            yield f"{where}: its `if` {problem}"
    if instr.text is not None:
        problem = _template_problem(instr.parts, instr.text)
        if problem is not None:
            yield f"{where}: its task text {problem}"
    if instr.action is not None:
        problem = _action_problem(instr.action, member_flow=member_flow, holds_sends=holds_sends)
        if problem is not None:
            yield f"{where} {problem}"


def _trigger_problem(trigger: lang.Trigger) -> str | None:
    match trigger:
        case lang.OnGroupSize():
            return "starts on a group's size, which counts the members of every shard"
        case lang.OnGroupSilent():
            return "starts on a group's silence, which every member's message ends"
        case (
            lang.OnEvent()
            | lang.OnAbsence()
            | lang.OnDateOffset()
            | lang.OnAnniversary()
            | lang.OnThreshold()
        ):
            return None  # the member's own events, dates and counters
        case _:
            assert_never(trigger)


def _action_problem(step: lang.ActionTypes, *, member_flow: bool, holds_sends: bool) -> str | None:
    if getattr(step, "target", None) == "referrer" or getattr(step, "root", None) == "referrer":
        return f"acts on the member's referrer (`{step.kind}`), another member"
    match step:
        case lang.SendStep():
            if member_flow and holds_sends and step.target == "group":
                return (
                    "sends to the group from a member's flow, and the policy can hold sends back: "
                    "held group sends of members in different shards share one queue"
                )
            return None
        case lang.TagStep():
            return (
                "tags the group, which changes its scope for every member" if step.target == "group" else None
            )
        case lang.DissolveStep():
            return "dissolves a group, which ends every member's flows in it"
        case lang.DrawStep():
            return "draws winners among a group's members"
        case lang.SetStep():
            return _operand_problem(step.value)
        case lang.CallStep():
            return next((p for p in map(_operand_problem, step.args.values()) if p is not None), None)
        case lang.KickStep() | lang.GrantStep() | lang.InviteStep() | lang.AddStep():
            return None  # the caps and stock that would join members are the policy's (above)
        case _:
            assert_never(step)


def _ref_problem(ref: lang.Ref) -> str | None:
    return _field_problem(ref.root, ref.field)


def _operand_problem(value: object) -> str | None:
    """What a value reads that another shard changes: a reference, or any inside arithmetic."""
    if isinstance(value, lang.Ref):
        return _ref_problem(value)
    if isinstance(value, lang.Calc):
        return _operand_problem(value.left) or _operand_problem(value.right)
    return None  # a literal, or a field of the flow's own coupon


def _field_problem(root: str, field: str) -> str | None:
    if root == "referrer":
        return f"reads referrer.{field}, another member's"
    if root == "group" and field not in _FIXED_GROUP_FIELDS:
        return f"reads group.{field}, which the members of every shard change"
    return None


def _cond_problem(cond: lang.Cond) -> str | None:
    match cond:
        case lang.StockCond():
            return f"reads coupon {cond.coupon}'s stock, which all members draw from"
        case lang.CompareCond():
            refs = [cond.left, *([cond.right] if isinstance(cond.right, lang.Ref) else [])]
            return next((p for p in map(_ref_problem, refs) if p is not None), None)
        case lang.StartsWithCond() | lang.MatchesCond() | lang.InCond() | lang.IsSetCond():
            return _ref_problem(cond.left)
        case lang.CalcCond():
            return _operand_problem(cond.left) or _operand_problem(cond.right)
        case lang.NotCond():
            return _cond_problem(cond.operand)
        case lang.AndCond() | lang.OrCond():
            return next((p for p in map(_cond_problem, cond.operands) if p is not None), None)
        case (
            lang.TagCond()
            | lang.WindowCond()
            | lang.TimeCond()
            | lang.DateCond()
            | lang.WeekdayCond()
            | lang.ConstCond()
        ):
            return None  # the member's tags and events, the group's fixed tags, the clock
        case _:
            assert_never(cond)


def _template_problem(parts: tuple[str | TemplateField, ...] | None, source: str) -> str | None:
    """What a text reads that another shard changes: its plain fields, or (a Jinja text) any use
    of `referrer` and of `group` but its fixed fields, read from its `{{ }}` and `{% %}` blocks."""
    if parts is not None:
        found = (_field_problem(p.root, p.field) for p in parts if isinstance(p, TemplateField))
        return next((p for p in found if p is not None), None)
    for block in _BLOCK.findall(source):
        if _REFERRER.search(block):
            return "reads the referrer, another member"
        for use in _GROUP_USE.finditer(block):
            if use.group(2) not in _FIXED_GROUP_FIELDS:
                return "reads the group beyond its fixed fields (its size, or all of it)"
    return None
