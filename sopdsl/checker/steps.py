"""Steps to model: every step of a `do` block or calendar entry, with its target, names and template
uses checked against what its place of the flow provides, and the flow checks made while walking a
block (steps after a `stop` or a `kick` that can never run, kicks that could hit protected members)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, assert_never

from sopdsl.checker import model, templates, values
from sopdsl.checker.conditions import check_cond, check_coupon_field, check_value
from sopdsl.checker.context import loc
from sopdsl.checker.flow import (
    Flow,
    aims_at_member,
    always_stops,
    excluded,
    grants_after,
    template_text,
    template_use,
    where_cap,
)
from sopdsl.checker.staff import left_to_staff, mentionable, task_message
from sopdsl.checker.triggers import check_pattern, pattern_fields
from sopdsl.diagnostics import did_you_mean
from sopdsl.syntax import nodes
from sopdsl.vocabulary import BUILTIN_COUNTERS, CAP_PERIODS, MEMBER_FIELDS

if TYPE_CHECKING:
    from sopdsl.checker.context import Context
    from sopdsl.source import Span

_MEMBER_TARGETS = {nodes.Target.MEMBER, nodes.Target.REFERRER, nodes.Target.OWNER}


def check_block(
    ctx: Context, steps: tuple[nodes.Step, ...], flow: Flow, policy: model.Policy
) -> tuple[model.Step, ...]:
    """A block of steps as models (those without errors), reporting steps that can never run."""
    checked: list[model.Step] = []
    stopped: nodes.Stop | None = None
    kicked: nodes.Kick | None = None
    for step in steps:
        if stopped is not None:
            ctx.error(
                "SOP402",
                "this step can never run: the flow stops before it",
                step.span,
                f"`stop` at line {stopped.span.line} ends the flow; remove or move it",
            )
            break
        if kicked is not None and aims_at_member(step):
            ctx.error(
                "SOP402",
                "this step can never run: the member was kicked before it",
                step.span,
                f"`kick` at line {kicked.span.line} removes the member first",
            )
            break
        result = check_step(ctx, step, flow, policy)
        if result is not None:
            checked.append(result)
        if isinstance(step, nodes.Stop) or always_stops(step):
            stopped = step if isinstance(step, nodes.Stop) else nodes.Stop(step.span)
        if isinstance(step, nodes.Kick) and step.target is nodes.Target.MEMBER:
            kicked = step
        if not flow.granted and grants_after(step, False):
            flow = dataclasses.replace(flow, granted=True)  # the steps after it may read `coupon`
    return tuple(checked)


def _target(
    ctx: Context, target: nodes.Target, allowed: set[nodes.Target], flow: Flow, span: Span, verb: str
) -> bool:
    if target not in allowed:
        ctx.error(
            "SOP116",
            f"cannot {verb} {target.value}",
            span,
            "it can be aimed at " + " or ".join(sorted(t.value for t in allowed)),
        )
        return False
    if target in _MEMBER_TARGETS and not flow.has_member:
        ctx.error(
            "SOP116",
            f"{where_cap(flow)} has no member to {verb}",
            span,
            "write `at CALENDAR for each member: ...` to run it once for each member of the group",
        )
        return False
    if target is nodes.Target.GROUP and not flow.has_group:
        ctx.error("SOP116", f"a playbook for private chats has no group to {verb}", span)
        return False
    return True


def _assignee(ctx: Context, step: nodes.Assign, flow: Flow) -> bool:
    """A task goes to the contact's owner (a member's flow) or the group's operator (a group's)."""
    allowed = {nodes.Target.OPERATOR, nodes.Target.OWNER}
    if not _target(ctx, step.target, allowed, flow, step.span, "assign a task to"):
        return False
    if step.target is nodes.Target.OPERATOR and not flow.has_group:
        ctx.error(
            "SOP116",
            "a playbook for private chats has no group operator to assign a task to",
            step.span,
            "assign it `to owner`: the contact's owner (跟进人)",
        )
        return False
    return True


def check_step(ctx: Context, step: nodes.Step, flow: Flow, policy: model.Policy) -> model.Step | None:
    """One step as a model, or None if it has errors (reported); nested blocks are checked too."""
    where = loc(step.span)
    everyone = {nodes.Target.MEMBER, nodes.Target.GROUP, nodes.Target.OPERATOR, nodes.Target.REFERRER}
    members = {nodes.Target.MEMBER, nodes.Target.REFERRER}
    if isinstance(step, nodes.Kick | nodes.Dissolve | nodes.Invite):
        left_to_staff(ctx, step)
    match step:
        case nodes.Send():
            ok = _target(ctx, step.target, everyone, flow, step.span, "send to")
            template = ctx.lookup("template", "SOP104", step.template.text, step.template.span)
            if template is None or not ok:
                return None
            template_use(
                ctx,
                template.variables,
                flow,
                step.span,
                f"template '{template.name}'",
                template_text(ctx, template.name),
            )
            if template.mentions and not mentionable(ctx, template.name, step, flow):
                return None
            return model.SendStep(
                template=template.name,
                target=step.target.value,
                channel=step.via.text if step.via else None,
                loc=where,
            )
        case nodes.TagStep():
            verb = "untag" if step.remove else "tag"
            if not _target(
                ctx,
                step.target,
                {nodes.Target.MEMBER, nodes.Target.GROUP, nodes.Target.REFERRER},
                flow,
                step.span,
                verb,
            ):
                return None
            return model.TagStep(
                target=step.target.value,
                tags=tuple(s.value for s in step.tags),
                remove=step.remove,
                loc=where,
            )
        case nodes.Kick():
            if not _target(ctx, step.target, {nodes.Target.MEMBER}, flow, step.span, "kick"):
                return None
            exposed = [t for t in policy.protected_tags if t not in flow.excluded]
            if exposed:
                tags = ", ".join(f'"{t}"' for t in exposed)
                ctx.warning(
                    "SOP403",
                    f"this kick may hit members tagged {tags}, which the policy protects",
                    step.span,
                    f"the engine will refuse those kicks; say so in the guard: `when member not tagged {tags}`",
                )
            return model.KickStep(
                target="member", reason=step.reason.value if step.reason else None, loc=where
            )
        case nodes.Grant():
            ok = _target(ctx, step.target, members, flow, step.span, "grant a coupon to")
            if ctx.lookup("coupon", "SOP107", step.coupon.text, step.coupon.span) is None or not ok:
                return None
            return model.GrantStep(coupon=step.coupon.text, target=step.target.value, loc=where)
        case nodes.Invite():
            ok = _target(ctx, step.target, members, flow, step.span, "invite")
            if ctx.lookup("group", "SOP106", step.group.text, step.group.span) is None or not ok:
                return None
            return model.InviteStep(target=step.target.value, group=step.group.text, loc=where)
        case nodes.Add():
            return _add(ctx, step, flow, where)
        case nodes.SetStep():
            return _set(ctx, step, flow, where)
        case nodes.Assign():
            ok = _assignee(ctx, step, flow)
            message_ok, message = task_message(ctx, step, flow)
            within = values.duration(ctx, step.within)
            text_vars = templates.variables(ctx, step.text.value, step.text.span, step.text.long, "task text")
            if text_vars:
                template_use(ctx, text_vars, flow, step.span, "the task text", step.text.span)
            then = check_block(ctx, step.then or (), flow, policy)
            otherwise = check_block(ctx, step.otherwise or (), flow, policy)
            if not ok or within is None or text_vars is None or not message_ok:
                return None
            return model.AssignStep(
                text=step.text.value,
                target=step.target.value,
                within=within,
                message=message,
                then=then,
                otherwise=otherwise,
                loc=where,
            )
        case nodes.Wait():
            duration = values.duration(ctx, step.duration)
            return model.WaitStep(duration=duration, loc=where) if duration else None
        case nodes.WaitFor():
            return _wait_for(ctx, step, flow, policy, where)
        case nodes.If():
            branches = []
            for branch in step.branches:
                cond = check_cond(ctx, branch.cond, flow)
                inner = dataclasses.replace(flow, excluded=flow.excluded | excluded(branch.cond))
                body = check_block(ctx, branch.body, inner, policy)
                if cond is not None:
                    branches.append(model.Branch(cond=cond, steps=body))
            otherwise = check_block(ctx, step.otherwise or (), flow, policy)
            if len(branches) != len(step.branches):
                return None
            return model.IfStep(branches=tuple(branches), otherwise=otherwise, loc=where)
        case nodes.Split():
            return _split(ctx, step, flow, policy, where)
        case nodes.Stop():
            return model.StopStep(loc=where)
        case nodes.Call():
            return _call(ctx, step, flow, where)
        case nodes.Dissolve():
            if not flow.has_group:
                ctx.error("SOP116", "a playbook for private chats has no group to dissolve", step.span)
                return None
            return model.DissolveStep(loc=where)
        case nodes.Draw():
            return _draw(ctx, step, flow, where)
        case _:
            assert_never(step)


def _add(ctx: Context, step: nodes.Add, flow: Flow, where: str) -> model.Step | None:
    if step.attr.root not in (nodes.Root.MEMBER, nodes.Root.REFERRER):
        ctx.error(
            "SOP116", "only member counters can be added to", step.attr.span, "write add N to member.COUNTER"
        )
        return None
    name = step.attr.field.text
    if name != "points" and name not in ctx.table("counter"):
        known = ["points", *ctx.table("counter")]
        hint = did_you_mean(name, known) or (
            f"'{name}' is counted by the engine itself"
            if name in BUILTIN_COUNTERS
            else f"declare it with `counter {name}`"
        )
        ctx.unknown_field(
            "SOP108", f"'{name}' is not a counter that playbooks add to", step.attr.field.span, hint
        )
        return None
    if not flow.has_member:
        ctx.error("SOP116", f"{where_cap(flow)} has no member to add to", step.span)
        return None
    size = values.number(ctx, step.amount)
    if size is None:
        return None
    amount = -size if step.negative else size
    return model.AddStep(root=step.attr.root.value, counter=name, amount=amount, loc=where)


def _set(ctx: Context, step: nodes.SetStep, flow: Flow, where: str) -> model.Step | None:
    if step.attr.root not in (nodes.Root.MEMBER, nodes.Root.REFERRER):
        ctx.error("SOP116", "only member attributes can be set", step.attr.span)
        return None
    name = step.attr.field.text
    attribute = ctx.table("attribute").get(name)
    # A counter playbooks add to can be set too: `set member.streak = 0` resets it.
    counter = name == "points" or name in ctx.table("counter")
    if not counter and (attribute is None or attribute.value is None):
        hint = (
            f"member.{name} is kept by the engine and cannot be set"
            if name in MEMBER_FIELDS
            else did_you_mean(name, [*ctx.table("attribute"), *ctx.table("counter")])
            or f"declare it with `attribute {name}: text` or `counter {name}`"
        )
        ctx.unknown_field(
            "SOP108", f"'{name}' is not a declared attribute or counter", step.attr.field.span, hint
        )
        return None
    if not flow.has_member:
        ctx.error("SOP116", f"{where_cap(flow)} has no member to set an attribute on", step.span)
        return None
    kind = model.ValueType.NUMBER if counter or attribute is None else attribute.value.type
    what = f"{step.attr.root.value}.{name}"
    if isinstance(step.value, nodes.CouponField):
        coupon = check_coupon_field(ctx, step.value, flow, kind, what)
        if coupon is None:
            return None
        return model.SetStep(root=step.attr.root.value, attribute=name, value=coupon, loc=where)
    value, ok = check_value(ctx, step.value, flow, kind, what)
    if not ok:
        return None
    return model.SetStep(root=step.attr.root.value, attribute=name, value=value, loc=where)


def _draw(ctx: Context, step: nodes.Draw, flow: Flow, where: str) -> model.Step | None:
    count = values.whole(ctx, step.count, "a number of winners", minimum=1)
    stock = values.whole(ctx, step.stock, "a draw's stock", minimum=1) if step.stock else None
    period = CAP_PERIODS.get(step.period.text) if step.period else None
    if step.period is not None and period is None:
        ctx.error(
            "SOP112",
            f"unknown period '{step.period.text}'",
            step.period.span,
            did_you_mean(step.period.text, CAP_PERIODS) or "a draw's stock is per day, week or month",
        )
        return None
    if not flow.has_group:
        ctx.error("SOP116", "a playbook for private chats has no group to draw winners in", step.span)
        return None
    if not count or (step.stock is not None and stock is None):
        return None
    tags = tuple(t.value for t in step.tags)
    return model.DrawStep(count=count, tags=tags, stock=stock, period=period, loc=where)


def _wait_for(
    ctx: Context, step: nodes.WaitFor, flow: Flow, policy: model.Policy, where: str
) -> model.Step | None:
    if step.timeout is None:
        ctx.error(
            "SOP401",
            "this wait has no timeout: a member who never does it keeps the flow waiting forever",
            step.span,
            "say how long to wait, e.g. `wait 3 days for member posts else { ... }`",
        )
    if not flow.has_member:
        ctx.error("SOP116", f"{where_cap(flow)} has no member to wait for", step.span)
        return None
    timeout = values.duration(ctx, step.timeout) if step.timeout is not None else None
    pattern = check_pattern(ctx, step.pattern)
    then_flow = (
        dataclasses.replace(flow, event_fields=pattern_fields(ctx, pattern), where="the awaited event")
        if pattern
        else flow
    )
    same = _same(ctx, step, pattern_fields(ctx, pattern) if pattern else None, flow)
    then = check_block(ctx, step.then or (), then_flow, policy)
    otherwise = check_block(ctx, step.otherwise or (), flow, policy)
    if timeout is None or pattern is None or same is None:
        return None
    wait = model.EventWait(pattern=pattern, timeout=timeout, same=same)
    return model.WaitForStep(wait=wait, then=then, otherwise=otherwise, loc=where)


def _same(
    ctx: Context, step: nodes.WaitFor, awaited: dict[str, model.ValueType] | None, flow: Flow
) -> tuple[tuple[str, str], ...] | None:
    """The `where event.X == flow.Y` pairs of a wait, each field checked on both sides."""
    pairs: list[tuple[str, str]] = []
    ok = True
    for same in step.same:
        sides = (
            (same.event, awaited or {}, "the awaited event"),
            (same.flow, flow.event_fields or {}, f"the event {where_cap(flow)} holds"),
        )
        kinds = []
        for name, fields, what in sides:
            kind = fields.get(name.text)
            if kind is None:
                ok = False
                hint = did_you_mean(name.text, fields) or (
                    "fields: " + ", ".join(sorted(fields)) if fields else "it has no fields to match on"
                )
                ctx.error("SOP108", f"{what} has no field '{name.text}'", name.span, hint)
            kinds.append(kind)
        event_kind, flow_kind = kinds
        if event_kind is not None and flow_kind is not None and event_kind is not flow_kind:
            ok = False
            ctx.error(
                "SOP406",
                f"event.{same.event.text} is {event_kind.value}, flow.{same.flow.text} is {flow_kind.value}",
                same.span,
                "a wait matches its own event on fields of one type",
            )
        pairs.append((same.event.text, same.flow.text))
    return tuple(pairs) if ok else None


def _split(
    ctx: Context, step: nodes.Split, flow: Flow, policy: model.Policy, where: str
) -> model.Step | None:
    arms: list[model.Arm] = []
    names: set[str] = set()
    ok = True
    for arm in step.arms:
        if arm.control and arm.name.text in names:
            ctx.error(
                "SOP415", "a split has one control arm", arm.span, "merge the two control arms into one"
            )
            ok = False
        elif arm.name.text in names:
            ctx.error("SOP111", f"split arm '{arm.name.text}' is named twice", arm.name.span)
            ok = False
        names.add(arm.name.text)
        if arm.percent.value <= 0:
            ctx.error(
                "SOP502",
                f"arm '{arm.name.text}' gets 0% of members and would never run",
                arm.percent.span,
                "remove the arm, or give it a share above 0%",
            )
            ok = False
        elif arm.percent.value > 100:
            ctx.error("SOP502", f"{arm.percent.text}% is more than all members", arm.percent.span)
            ok = False
        arms.append(
            model.Arm(
                name=arm.name.text,
                percent=arm.percent.value,
                steps=check_block(ctx, arm.body, flow, policy),
                control=arm.control,
            )
        )
    total = sum(a.percent.value for a in step.arms)
    if abs(total - 100) > 1e-9:
        shares = " + ".join(f"{a.name.text} {a.percent.text}%" for a in step.arms)
        ctx.error(
            "SOP404",
            f"the arms add up to {total:g}%, not 100% ({shares})",
            step.span,
            "adjust the percentages so they sum to 100%",
        )
        ok = False
    if all(arm.control for arm in step.arms):
        ctx.error(
            "SOP415",
            "a split with only a control arm does nothing",
            step.span,
            "add an arm that does something, to compare with the control",
        )
        ok = False
    if not flow.has_member:
        ctx.error("SOP116", f"{where_cap(flow)} has no member to split", step.span)
        ok = False
    return model.SplitStep(arms=tuple(arms), loc=where) if ok else None


def _call(ctx: Context, step: nodes.Call, flow: Flow, where: str) -> model.Step | None:
    action = ctx.lookup("action", "SOP110", step.action.text, step.action.span)
    if action is None:
        return None
    args: dict[str, Any] = {}
    ok = True
    for arg in step.args:
        kind = action.fields.get(arg.name.text)
        if kind is None:
            ctx.error(
                "SOP407",
                f"action '{action.name}' has no argument '{arg.name.text}'",
                arg.name.span,
                did_you_mean(arg.name.text, action.fields)
                or "arguments: " + (", ".join(action.fields) or "none"),
            )
            ok = False
            continue
        if arg.name.text in args:
            ctx.error("SOP407", f"argument '{arg.name.text}' is given twice", arg.name.span)
            ok = False
            continue
        value, good = check_value(
            ctx, arg.value, flow, kind, f"argument '{arg.name.text}' of '{action.name}'"
        )
        ok = ok and good
        args[arg.name.text] = value
    missing = [name for name in action.fields if name not in args and ok]
    if missing:
        ctx.error(
            "SOP407",
            f"call to '{action.name}' is missing {', '.join(missing)}",
            step.span,
            "give every argument the action declares: "
            + ", ".join(f"{name} = ..." for name in action.fields),
        )
        ok = False
    return model.CallStep(action=action.name, args=args, loc=where) if ok else None
