"""Triggers to model: events (built-in and declared), absences, dates, anniversaries, thresholds,
group size and group silence, and the flow a playbook's triggers provide to its steps."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, assert_never

from sopdsl.checker import model, values
from sopdsl.checker.conditions import member_field
from sopdsl.checker.context import loc
from sopdsl.checker.flow import Flow
from sopdsl.diagnostics import did_you_mean
from sopdsl.syntax import nodes
from sopdsl.vocabulary import ABSENCE_KINDS, BUILTIN_COUNTERS, EVENT_FIELDS

if TYPE_CHECKING:
    from sopdsl.checker.context import Context


def check_pattern(ctx: Context, node: nodes.EventPattern) -> model.EventPattern | None:
    """An event pattern (for a trigger or a wait) as a model, or None if its custom event is unknown."""
    kind = node.kind
    if node.kind is nodes.EventKind.CUSTOM and node.custom is not None:
        if ctx.lookup("event", "SOP109", node.custom.text, node.custom.span) is None:
            return None
        return model.EventPattern(kind=kind, custom=node.custom.text)
    return model.EventPattern(kind=kind, tag=node.tag.value if node.tag is not None else None)


def pattern_fields(ctx: Context, pattern: model.EventPattern) -> dict[str, model.ValueType]:
    """The fields (`event.NAME`) an event matching the pattern carries."""
    if pattern.kind is model.EventKind.CUSTOM and pattern.custom is not None:
        declared = ctx.table("event").get(pattern.custom)
        return dict(declared.value.fields) if declared and declared.value else {}
    return dict(EVENT_FIELDS[pattern.kind])


def check_trigger(ctx: Context, node: nodes.Trigger) -> model.Trigger | None:
    """A trigger as a model, or None if it has errors (reported)."""
    where = loc(node.span)
    match node:
        case nodes.OnEvent():
            pattern = check_pattern(ctx, node.pattern)
            return model.OnEvent(pattern=pattern, loc=where) if pattern else None
        case nodes.OnAbsence():
            kind = ABSENCE_KINDS.get(node.kind.text)
            duration = values.duration(ctx, node.duration)
            if kind is None:
                ctx.error(
                    "SOP112",
                    f"cannot watch for absence of '{node.kind.text}'",
                    node.kind.span,
                    did_you_mean(node.kind.text, ABSENCE_KINDS)
                    or "write `no order for ...` or `member silent for ...`",
                )
            if kind is None or duration is None:
                return None
            return model.OnAbsence(event=kind, duration=duration, loc=where)
        case nodes.OnDateOffset() | nodes.OnAnniversary():
            kind_ = _date_attribute(ctx, node.attr)
            at = values.time(ctx, node.at) if node.at is not None else None
            if isinstance(node, nodes.OnAnniversary):
                return (
                    model.OnAnniversary(attribute=node.attr.field.text, at=at, loc=where)
                    if kind_ and at
                    else None
                )
            offset = values.duration(ctx, node.offset)
            if not kind_ or offset is None or at is None:
                return None
            return model.OnDateOffset(
                attribute=node.attr.field.text, offset=offset, before=node.before, at=at, loc=where
            )
        case nodes.OnThreshold():
            if node.attr.root is not nodes.Root.MEMBER:
                ctx.error(
                    "SOP116",
                    "a threshold trigger watches a member counter",
                    node.attr.span,
                    "write member.NAME reaches N",
                )
                return None
            name = node.attr.field.text
            if name not in BUILTIN_COUNTERS and name not in ctx.table("counter"):
                known = [*BUILTIN_COUNTERS, *ctx.table("counter")]
                ctx.unknown_field(
                    "SOP108",
                    f"'{name}' is not a counter",
                    node.attr.field.span,
                    did_you_mean(name, known) or f"declare it with `counter {name}`",
                )
                return None
            threshold = values.number(ctx, node.threshold)
            return (
                model.OnThreshold(counter=name, threshold=threshold, loc=where)
                if threshold is not None
                else None
            )
        case nodes.OnGroupSize():
            size = values.whole(ctx, node.threshold, "a group size", minimum=1)
            return model.OnGroupSize(threshold=size, loc=where) if size is not None else None
        case nodes.OnGroupSilent():
            duration = values.duration(ctx, node.duration)
            return model.OnGroupSilent(duration=duration, loc=where) if duration else None
        case _:
            assert_never(node)


def _date_attribute(ctx: Context, ref: nodes.AttrRef) -> bool:
    if ref.root is not nodes.Root.MEMBER:
        ctx.error(
            "SOP116",
            "date triggers read a member's date",
            ref.span,
            "write member.joined_at or a declared date attribute",
        )
        return False
    kind = member_field(ctx, ref)
    if kind is None:
        return False
    if kind not in (model.ValueType.DATE, model.ValueType.DATETIME):
        ctx.error("SOP406", f"member.{ref.field.text} is {kind.value}, not a date", ref.span)
        return False
    return True


def trigger_flow(ctx: Context, triggers: list[nodes.Trigger], has_group: bool, grants: bool) -> Flow:
    """What a playbook's triggers provide its steps: a member unless a group trigger starts it, and the
    event fields every trigger provides."""
    event_fields: dict[str, model.ValueType] | None = None
    has_member = True
    for node in triggers:
        fields: dict[str, model.ValueType] = {}
        match node:
            case nodes.OnEvent():
                # Silent (errors were reported once already), but with the real symbol tables so that
                # a custom event resolves and its payload fields reach the steps.
                pattern = check_pattern(dataclasses.replace(ctx, diagnostics=[]), node.pattern)
                fields = pattern_fields(ctx, pattern) if pattern else {}
            case nodes.OnGroupSilent():
                # Nobody posted: there is no member for the steps to act on.
                has_member = False
            case (
                nodes.OnAbsence()
                | nodes.OnDateOffset()
                | nodes.OnAnniversary()
                | nodes.OnThreshold()
                | nodes.OnGroupSize()
            ):
                pass  # a member (for group size, the owner) and no event fields
            case _:
                assert_never(node)
        # `event.x` is available only where every trigger of the playbook provides it.
        event_fields = (
            fields if event_fields is None else {k: v for k, v in event_fields.items() if fields.get(k) == v}
        )
    return Flow(has_member, has_group, event_fields or {}, grants, frozenset(), "this playbook's trigger")
