"""Playbooks to model: the pass that composes the playbook checks. Settings (`settings`),
triggers (`triggers`), conditions (`conditions`) and steps (`steps`) each have their module, and
`flow` says what each place of a playbook provides (a member, a group, event fields, coupons)."""

from __future__ import annotations

import dataclasses
from typing import Any, assert_never

from sopdsl.checker import model, values
from sopdsl.checker.conditions import check_cond
from sopdsl.checker.context import Context, loc
from sopdsl.checker.declarations import calendar_rule
from sopdsl.checker.flow import Flow, any_step, excluded
from sopdsl.checker.goals import check_goals
from sopdsl.checker.settings import check_setting, review_check, setting_word
from sopdsl.checker.steps import check_block
from sopdsl.checker.triggers import check_trigger, trigger_flow
from sopdsl.syntax import nodes


def check_playbook(ctx: Context, decl: nodes.PlaybookDecl, policy: model.Policy) -> model.Playbook | None:
    """Check one playbook and build its model, or None if it has errors."""
    before = sum(d.is_error for d in ctx.diagnostics)
    fields: dict[str, Any] = {"name": decl.name.text, "title": decl.title.value if decl.title else None}
    seen: dict[type, nodes.PlaybookItem] = {}
    triggers: list[model.Trigger] = []
    trigger_nodes: list[nodes.Trigger] = []
    do: nodes.DoSetting | None = None
    when: nodes.WhenSetting | None = None
    entries: list[nodes.AtEntry] = []
    goals: list[nodes.GoalSetting] = []
    for item in decl.items:
        if not isinstance(item, nodes.OnSetting | nodes.AtEntry | nodes.GoalSetting):
            if type(item) in seen:
                ctx.error(
                    "SOP114",
                    f"this playbook already has a '{setting_word(item)}' setting",
                    item.span,
                    f"the first one is at line {seen[type(item)].span.line}; keep one",
                )
                continue
            seen[type(item)] = item
        match item:
            case nodes.OnSetting():
                trigger = check_trigger(ctx, item.trigger)
                trigger_nodes.append(item.trigger)
                if trigger is not None:
                    triggers.append(trigger)
            case nodes.WhenSetting():
                when = item
            case nodes.DoSetting():
                do = item
            case nodes.AtEntry():
                entries.append(item)
            case nodes.GoalSetting():
                goals.append(item)
            case (
                nodes.ScenarioSetting()
                | nodes.ScopeSetting()
                | nodes.RepeatSetting()
                | nodes.ApplySetting()
                | nodes.MissedSetting()
                | nodes.ChangeSetting()
                | nodes.ActiveSetting()
                | nodes.VersionSetting()
                | nodes.AuthorSetting()
                | nodes.ReviewSetting()
            ):
                check_setting(ctx, item, fields)
            case _:
                assert_never(item)

    if nodes.RepeatSetting not in seen:
        for node in trigger_nodes:
            if isinstance(node, nodes.OnAnniversary):
                # `repeat once` is the default, and it outlasts the year: the greeting came once.
                ctx.warning(
                    "SOP410",
                    f"`on member.{node.attr.field.text}` comes every year, but this playbook runs once "
                    "per member (`repeat once` is the default): each member gets it the first year only",
                    node.span,
                    "add `repeat always` to run it every year, or write `repeat once` if once is meant",
                )
    if trigger_nodes and do is None:
        ctx.error(
            "SOP115",
            f"playbook '{decl.name.text}' has a trigger but no steps",
            decl.name.span,
            "add do { ... } with the steps to run",
        )
    if do is not None and not trigger_nodes:
        ctx.error(
            "SOP115",
            f"playbook '{decl.name.text}' has steps but no trigger",
            do.span,
            "add `on ...` (for example `on member joins`) before `do`",
        )
    if not trigger_nodes and not entries and do is None:
        ctx.error(
            "SOP115",
            f"playbook '{decl.name.text}' does nothing",
            decl.name.span,
            "add `on TRIGGER do { ... }` or `at CALENDAR: STEP`",
        )

    pb_scope: model.Scope = fields.get("scope", model.Scope())
    has_group = pb_scope.kind != "private"
    grants = any_step(decl, nodes.Grant)
    steps_flow = trigger_flow(ctx, trigger_nodes, has_group, grants)
    guard_flow = (
        steps_flow
        if trigger_nodes
        else Flow(
            bool(entries) and all(e.for_each_member for e in entries),
            has_group,
            None,
            grants,
            frozenset(),
            "this playbook",
        )
    )
    if when is not None:
        fields["guard"] = check_cond(ctx, when.cond, guard_flow)
        guard_excludes = excluded(when.cond)
        steps_flow = dataclasses.replace(steps_flow, excluded=guard_excludes)
    else:
        guard_excludes = frozenset()
    if do is not None:
        fields["steps"] = check_block(ctx, do.steps, steps_flow, policy)
    fields["schedule"] = tuple(
        e
        for e in (_entry(ctx, entry, has_group, grants, guard_excludes, policy) for entry in entries)
        if e is not None
    )
    fields["triggers"] = tuple(triggers)
    fields["goals"] = check_goals(ctx, goals, has_group)
    fields["loc"] = loc(decl.span)
    review_check(ctx, decl, fields)
    if sum(d.is_error for d in ctx.diagnostics) > before:
        return None
    return model.Playbook.model_validate(fields)


# ---- calendar entries -----------------------------------------------------------------------------


def _entry(
    ctx: Context,
    entry: nodes.AtEntry,
    has_group: bool,
    grants: bool,
    guard_excludes: frozenset[str],
    policy: model.Policy,
) -> model.ScheduleEntry | None:
    flow = Flow(
        entry.for_each_member,
        has_group,
        {},
        grants,
        guard_excludes,
        "a calendar entry for each member" if entry.for_each_member else "a group calendar entry",
        calendar_entry=True,
    )
    if not has_group and not entry.for_each_member:
        ctx.error("SOP116", "a calendar entry for private chats must say `for each member`", entry.span)
        return None
    when = _cal_expr(ctx, entry.when)
    cond = check_cond(ctx, entry.cond, flow) if entry.cond is not None else None
    if entry.cond is not None:
        flow = dataclasses.replace(flow, excluded=flow.excluded | excluded(entry.cond))
    steps = check_block(ctx, entry.steps, flow, policy)
    if when is None or (entry.cond is not None and cond is None):
        return None
    return model.ScheduleEntry(
        when=when, for_each_member=entry.for_each_member, cond=cond, steps=steps, loc=loc(entry.span)
    )


def _cal_expr(ctx: Context, node: nodes.CalExpr) -> model.CalRef | None:
    match node:
        case nodes.CalRef():
            calendar = ctx.lookup("calendar", "SOP105", node.name.text, node.name.span)
            offsets = [(o.negative, values.duration(ctx, o.duration)) for o in node.offsets]
            at = values.time(ctx, node.at) if node.at is not None else None
            if calendar is None or any(d is None for _, d in offsets) or (node.at is not None and at is None):
                return None
            return model.CalRef(
                calendar=node.name.text, offsets=tuple((neg, d) for neg, d in offsets if d), at=at
            )
        case nodes.CalInline():
            skip = (node.skip,) if node.skip is not None else ()
            rule = calendar_rule(ctx, nodes.CalWeekly(node.days, node.times, skip, node.span))
            return model.CalRef(inline=rule) if rule is not None else None
        case nodes.CalOnce():
            first = values.datetime(ctx, node.at)
            if first is None:
                return None
            return model.CalRef(inline=model.Dates(dates=(first.date(),), times=(first.time(),)))
        case _:
            assert_never(node)
