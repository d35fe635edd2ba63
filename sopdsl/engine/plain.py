"""The plan as a flow runs it: instructions, sends, coupons and absence triggers as plain slotted
records, built once per plan version (`_Compiled`).

The plan is pydantic, and a pydantic model reads each field through its `__getattr__` hook, a few
times dearer than a slot; these are read per action, per timer armed and per silence due.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sopdsl import lang
from sopdsl.engine.state import WaitEvent, event_wait
from sopdsl.plan import Declarations, Instr, TemplateField, timeutil

# A template's part as the engine renders it: a text, or a `{{ root.field }}` substitution as the
# pair (root, field) (a pydantic `TemplateField` reads each of its fields through `__getattr__`).
Part = str | tuple[str, str]


def plain_parts(parts: tuple[str | TemplateField, ...] | None) -> tuple[Part, ...] | None:
    """A template's parts (`CompiledTemplate.parts`) as `Part`s; None stays None (Jinja renders it)."""
    if parts is None:
        return None
    return tuple(part if isinstance(part, str) else (part.root, part.field) for part in parts)


@dataclass(frozen=True, slots=True)
class Send:
    """A send step with its template looked up, as plain values (see `Step`)."""

    template: str
    channel: str | None
    target: str
    source: str
    parts: tuple[Part, ...] | None
    attachments: tuple[lang.Attachment, ...]
    mentions: bool


def plain_send(step: lang.SendStep, program: Declarations) -> Send:
    """A send step of a plan version, its template found in that version's declarations."""
    template = program.templates[step.template]
    return Send(
        step.template,
        step.channel,
        step.target,
        template.source,
        plain_parts(template.parts),
        template.attachments,
        bool(template.mentions),
    )


@dataclass(frozen=True, slots=True)
class Coupon:
    """A declared coupon as a grant reads it, as plain values (see `Step`)."""

    name: str
    title: str
    worth: float | None
    valid: timeutil.Span | None


@dataclass(frozen=True, slots=True)
class Step:
    """An instruction as a flow runs it (`_go`, `_act`): what it does and the values read on the
    way, as plain slots, where the plan's pydantic `Instr` reads each field through its
    `__getattr__` hook (a few times dearer); `instr` is the instruction itself, for the rest."""

    op: str
    action: lang.Action | None
    kind: str  # the action's kind ("act" for none)
    send: Send | None  # a send's, its template found
    # A kick's or a grant's detail (`because`; the coupon and its worth), copied per action.
    detail: dict[str, Any] | None
    target: str  # a tag step's: "member" or "group" ("" for the rest)
    tags: tuple[str, ...]  # a tag step's tags,
    remove: bool  # and whether it takes them off
    loc: str
    jump: int | None
    duration: timeutil.Span | None  # a `wait`'s, an `assign`'s
    timeout: timeutil.Span | None  # a `wait … for`'s
    # What a `wait … for` with no correlated fields waits for (one shared record); None for the rest.
    awaits: WaitEvent | None
    instr: Instr


def _detail(action: lang.Action | None, program: Declarations) -> dict[str, Any] | None:
    # As `_act` wrote them per action: a kick says why (`because`, as the playbook writes it: an
    # action's `reason` says only why the policy or the run did not do it as planned).
    if type(action) is lang.KickStep:
        return {"because": action.reason}
    if type(action) is lang.GrantStep and action.coupon in program.coupons:
        return {"coupon": action.coupon, "worth": program.coupons[action.coupon].worth}
    return None


def plain_step(instr: Instr, program: Declarations) -> Step:
    """An instruction of a plan version (whose declarations are `program`) as a `Step`."""
    wait = instr.wait
    action = instr.action
    return Step(
        instr.op,
        action,
        action.kind if action is not None else "act",
        # A template or coupon the declarations lack (a plan not checked) fails at the action, as
        # `_decide` finds it missing there.
        plain_send(action, program)
        if type(action) is lang.SendStep and action.template in program.templates
        else None,
        _detail(action, program),
        action.target if type(action) is lang.TagStep else "",
        action.tags if type(action) is lang.TagStep else (),
        action.remove if type(action) is lang.TagStep else False,
        instr.loc,
        instr.jump,
        timeutil.span(instr.duration) if instr.duration is not None else None,
        timeutil.span(wait.timeout) if wait is not None else None,
        event_wait(wait, {}) if wait is not None and not wait.same else None,
        instr,
    )


@dataclass(frozen=True, slots=True)
class AbsenceRule:
    """An absence trigger's event, duration and place, as plain values: read per silence armed and
    due, where a pydantic model's fields go through its `__getattr__` hook (a few times dearer)."""

    event: lang.EventKind
    duration: timeutil.Span
    loc: str
