"""What a step asks of people and of the platform: steps the platform cannot perform, left to
staff (SOP504); the message a staff task carries; and who a message may @-mention (SOP207).

Input: a step's syntax node and its place in the flow. Output: diagnostics, and for a task its
message template's name. Called by `sopdsl.checker.steps`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sopdsl.checker.flow import Flow, template_text, template_use
from sopdsl.syntax import nodes

if TYPE_CHECKING:
    from sopdsl.checker.context import Context


_STAFF_DO = {
    "kick": "remove the member from the group",
    "dissolve": "dissolve the group",
    "invite": "invite the member",
}


def left_to_staff(ctx: Context, step: nodes.Kick | nodes.Dissolve | nodes.Invite) -> None:
    """SOP504: a step the platform cannot perform, which the engine makes a staff task."""
    kind = {nodes.Kick: "kick", nodes.Dissolve: "dissolve", nodes.Invite: "invite"}[type(step)]
    if ctx.platform is None or kind not in ctx.platform.cannot:
        return
    platform = f"the platform ({ctx.platform.title})" if ctx.platform.title else "the platform"
    path, _, line = ctx.platform.loc.rpartition(":")
    declared = f"line {line}" if path == step.span.path else ctx.platform.loc
    ctx.warning(
        "SOP504",
        f"{platform} cannot {kind} for customer groups: this step becomes a task for the group's operator",
        step.span,
        f"staff are asked to {_STAFF_DO[kind]} by hand; `cannot {kind}` is declared at {declared}",
    )


def task_message(ctx: Context, step: nodes.Assign, flow: Flow) -> tuple[bool, str | None]:
    """Whether a task's message is right, and the template it asks staff to send (None: none)."""
    if step.message is None:
        return True, None
    template = ctx.lookup("template", "SOP104", step.message.text, step.message.span)
    if template is None:
        return False, None
    template_use(
        ctx,
        template.variables,
        flow,
        step.span,
        f"template '{template.name}'",
        template_text(ctx, template.name),
    )
    if template.mentions:
        ctx.error(
            "SOP207",
            f"template '{template.name}' mentions the member, which a message staff send by hand cannot",
            step.message.span,
            "leave `mentioning member` to templates sent to a group",
        )
        return False, None
    return True, str(template.name)


def mentionable(ctx: Context, template: str, step: nodes.Send, flow: Flow) -> bool:
    """Whether this send may @-mention the member its template mentions: only in a group, with a member."""
    if step.target is not nodes.Target.GROUP:
        ctx.error(
            "SOP207",
            f"template '{template}' mentions the member, which only a message to the group can do",
            step.span,
            "send it `to group`, or use a template without `mentioning member` here",
        )
        return False
    if not flow.has_member:
        ctx.error(
            "SOP207",
            f"template '{template}' mentions the member, but {flow.where} has no member",
            step.span,
            "write `at CALENDAR for each member: ...`, or use a template without `mentioning member`",
        )
        return False
    return True
