"""A playbook's goals to model: the event and its condition, and how long after the member was
reached it still counts (`goal "下单" = member orders when event.amount >= 100 within 7 days`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sopdsl.checker import model, values
from sopdsl.checker.conditions import check_cond
from sopdsl.checker.context import loc
from sopdsl.checker.flow import Flow
from sopdsl.checker.triggers import check_pattern, pattern_fields
from sopdsl.syntax import nodes

if TYPE_CHECKING:
    from sopdsl.checker.context import Context


def check_goals(ctx: Context, goals: list[nodes.GoalSetting], has_group: bool) -> tuple[model.Goal, ...]:
    """Each goal as a model; a goal with an error is reported (SOP125 for the goal itself) and left out."""
    checked: list[model.Goal] = []
    seen: dict[str, nodes.GoalSetting] = {}
    for goal in goals:
        name = goal.name.value
        ok = True
        if not name.strip() or "\n" in name:
            ctx.error("SOP125", "a goal's name must be a non-empty text on one line", goal.name.span)
            ok = False
        elif name in seen:
            ctx.error(
                "SOP125",
                f"this playbook already has a goal named '{name}'",
                goal.name.span,
                f"the first one is at line {seen[name].span.line}; give each goal its own name",
            )
            ok = False
        seen.setdefault(name, goal)
        pattern = check_pattern(ctx, goal.pattern)
        within = values.duration(ctx, goal.within)
        cond: model.Cond | None = None
        if goal.cond is not None and pattern is not None:
            fields = pattern_fields(ctx, pattern)
            flow = Flow(True, has_group, fields, False, frozenset(), "this goal")
            cond = check_cond(ctx, goal.cond, flow)
            ok = ok and cond is not None
        if ok and pattern is not None and within is not None:
            checked.append(
                model.Goal(name=name, pattern=pattern, cond=cond, within=within, loc=loc(goal.span))
            )
    return tuple(checked)
