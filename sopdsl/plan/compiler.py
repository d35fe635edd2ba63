"""Checked model to compiled plan: flatten steps into instructions, split templates into parts,
and index the triggers.

Input: `model.Program`. Output: `plan.Plan`, which holds none of the model's own records (steps,
playbooks, the program), only the checked language's values inside its own. Conditions stay
declarative here; the engine turns them into closures once when it loads the plan.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from sopdsl.checker import model
from sopdsl.gcpause import paused_gc
from sopdsl.plan import (
    CompiledEntry,
    CompiledPlaybook,
    CompiledTemplate,
    Declarations,
    Instr,
    Plan,
    SplitArm,
    TemplateField,
    event_key,
)


@paused_gc
def compile_program(program: model.Program, *, relative: bool = True) -> Plan:
    """Compile a checked program into an executable plan, its locations relative to the root
    file's folder (`relative=False` keeps them as the model has them, for diagnostics)."""
    compiled: list[CompiledPlaybook] = []
    index: dict[str, list[tuple[int, int]]] = {}
    for number, playbook in enumerate(program.playbooks):
        compiled.append(_playbook(playbook))
        for t_index, trigger in enumerate(playbook.triggers):
            if isinstance(trigger, model.OnEvent):
                index.setdefault(event_key(trigger.pattern), []).append((number, t_index))
    declarations = Declarations(
        timezone=program.timezone,
        attributes=program.attributes,
        counters=program.counters,
        events=program.events,
        actions=program.actions,
        coupons=program.coupons,
        groups=program.groups,
        calendars=program.calendars,
        templates={name: _template(t) for name, t in program.templates.items()},
        policy=program.policy,
        files=program.files,
        platform=program.platform,
    )
    plan = Plan(
        declarations=declarations,
        playbooks=tuple(compiled),
        event_index={k: tuple(v) for k, v in sorted(index.items())},
    )
    return (relocate(plan) if relative else plan).with_hash()


def relocate(plan: Plan) -> Plan:
    """The plan with every file path in it (each `loc`, the list of files) relative to the folder
    of its root file, so that `sopdsl compile a/x.sop`, `cd a; sopdsl compile x.sop` and an
    absolute path give one plan, one hash and the same keys. Hash it again after."""
    files = plan.declarations.files
    if not files or files[0].startswith("<"):
        return plan
    base = _resolved(files[0]).parent
    paths: dict[str, str] = {}

    def relative(path: str) -> str:
        found = paths.get(path)
        if found is None:
            if path.startswith("<"):  # text given to the API: no file, nothing to relate
                found = path
            else:
                found = os.path.relpath(_resolved(path), base).replace(os.sep, "/")
            paths[path] = found
        return found

    def loc(value: str) -> str:
        path, colon, line = value.rpartition(":")
        return f"{relative(path)}:{line}" if colon and path else value

    def walk(value: Any) -> Any:
        if isinstance(value, BaseModel):
            updates: dict[str, Any] = {}
            for name in type(value).model_fields:
                old = getattr(value, name)
                new = loc(old) if name == "loc" and isinstance(old, str) else walk(old)
                if new is not old:
                    updates[name] = new
            return value.model_copy(update=updates) if updates else value
        if isinstance(value, tuple | list):
            items = [walk(v) for v in value]
            changed = any(a is not b for a, b in zip(items, value, strict=True))
            return type(value)(items) if changed else value
        if isinstance(value, dict):
            pairs = {k: walk(v) for k, v in value.items()}
            return pairs if any(pairs[k] is not value[k] for k in value) else value
        return value

    moved: Plan = walk(plan)
    declarations = moved.declarations.model_copy(update={"files": tuple(relative(f) for f in files)})
    return moved.model_copy(update={"declarations": declarations})


def _resolved(path: str) -> Path:
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError):  # a symlink loop: keep the path as written
        return Path(path).absolute()


def _playbook(playbook: model.Playbook) -> CompiledPlaybook:
    schedule = tuple(
        CompiledEntry(
            when=entry.when,
            for_each_member=entry.for_each_member,
            cond=entry.cond,
            code=tuple(flatten(entry.steps)),
            loc=entry.loc,
        )
        for entry in playbook.schedule
    )
    return CompiledPlaybook(
        name=playbook.name,
        title=playbook.title,
        scenarios=playbook.scenarios,
        version=playbook.version,
        author=playbook.author,
        reviewers=playbook.reviewers,
        scope=playbook.scope,
        triggers=playbook.triggers,
        guard=playbook.guard,
        repeat=playbook.repeat,
        cooldown=playbook.cooldown,
        apply_to_existing=playbook.apply_to_existing,
        missed=playbook.missed,
        on_change=playbook.on_change,
        active_from=playbook.active_from,
        active_until=playbook.active_until,
        code=tuple(flatten(playbook.steps)),
        schedule=schedule,
        goals=playbook.goals,
        loc=playbook.loc,
    )


def _template(template: model.Template) -> CompiledTemplate:
    return CompiledTemplate(
        name=template.name,
        title=template.title,
        tags=template.tags,
        source=template.source,
        parts=template_parts(template.source),
        loc=template.loc,
        attachments=template.attachments,
        mentions=template.mentions,
    )


def template_parts(source: str) -> tuple[str | TemplateField, ...] | None:
    """A template that is only text and `{{ root.field }}` substitutions, as its parts; None for
    anything else (the engine renders those through the Jinja sandbox)."""
    parts = _plain_parts(source)
    return parts if parts is not None else _jinja_parts(source)


def _plain_parts(source: str) -> tuple[str | TemplateField, ...] | None:
    # Most templates are text and plain placeholders: split them without importing Jinja (start-up
    # of `sopdsl check`), where the split is certainly Jinja's own. Anything else: Jinja decides.
    if "\r" in source:
        return None  # Jinja normalises line ends in text; leave that to it
    parts: list[str | TemplateField] = []
    at = 0
    for match in _PLACEHOLDER.finditer(source):
        root, field = match.group(1), match.group(2)
        if hasattr(dict, field) or field.startswith("_"):
            return None
        parts.append(source[at : match.start()])
        parts.append(TemplateField(root=root, field=field))
        at = match.end()
    parts.append(source[at:])
    if any(isinstance(p, str) and ("{" in p or "}" in p) for p in parts):
        return None
    return tuple(p for p in parts if p != "")


_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]\w*)\.([A-Za-z_]\w*)\s*\}\}")


def _jinja_parts(source: str) -> tuple[str | TemplateField, ...] | None:
    from jinja2 import TemplateError, nodes  # only for templates beyond plain placeholders

    from sopdsl.templating import environment

    try:
        body = environment().parse(source).body
    except TemplateError:
        return None
    parts: list[str | TemplateField] = []
    for node in body:
        if not isinstance(node, nodes.Output):
            return None
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                parts.append(child.data)
            elif (
                isinstance(child, nodes.Getattr)
                and isinstance(child.node, nodes.Name)
                and not hasattr(dict, child.attr)  # Jinja would find the dict method first
                and not child.attr.startswith("_")
            ):
                parts.append(TemplateField(root=child.node.name, field=child.attr))
            else:
                return None
    return tuple(parts)


def flatten(steps: tuple[model.Step, ...]) -> list[Instr]:
    """Flatten nested steps into instructions with absolute jump targets."""
    code: list[Instr] = []
    _emit(steps, code)
    return code


def _emit(steps: tuple[model.Step, ...], code: list[Instr]) -> None:
    # Exhaustive over the model's steps: a step kind added to the model and missed here fails mypy,
    # instead of being dropped from the plan without a word.
    for step in steps:
        match step:
            case model.StopStep():
                code.append(Instr(op="stop", loc=step.loc))
            case model.WaitStep():
                code.append(Instr(op="wait", duration=step.duration, loc=step.loc))
            case model.WaitForStep() | model.AssignStep():
                _emit_wait(step, code)
            case model.IfStep():
                _emit_if(step, code)
            case model.SplitStep():
                _emit_split(step, code)
            case _:
                # Every other step is an action (`lang.ActionTypes`): mypy checks that what is
                # left here is one, so a flow step added to the model and missed above fails.
                code.append(Instr(op="act", action=step, loc=step.loc))


def _emit_wait(step: model.WaitForStep | model.AssignStep, code: list[Instr]) -> None:
    at = len(code)
    if isinstance(step, model.WaitForStep):
        code.append(Instr(op="wait_for", wait=step.wait, loc=step.loc))
    else:
        pattern = model.EventPattern(kind=model.EventKind.TASK_DONE)
        code.append(
            Instr(
                op="assign",
                duration=step.within,
                pattern=pattern,
                text=step.text,
                parts=template_parts(step.text),
                loc=step.loc,
                to="owner" if step.target == "owner" else None,
                template=step.message,
            )
        )
    _emit(step.then, code)
    skip = len(code)
    code.append(Instr(op="jump", loc=step.loc))
    code[at] = code[at].model_copy(update={"jump": len(code)})
    _emit(step.otherwise, code)
    code[skip] = code[skip].model_copy(update={"jump": len(code)})


def _emit_if(step: model.IfStep, code: list[Instr]) -> None:
    exits: list[int] = []
    for branch in step.branches:
        test = len(code)
        code.append(Instr(op="branch", cond=branch.cond, loc=step.loc))
        _emit(branch.steps, code)
        exits.append(len(code))
        code.append(Instr(op="jump", loc=step.loc))
        code[test] = code[test].model_copy(update={"jump": len(code)})
    _emit(step.otherwise, code)
    for exit_ in exits:
        code[exit_] = code[exit_].model_copy(update={"jump": len(code)})


def _emit_split(step: model.SplitStep, code: list[Instr]) -> None:
    at = len(code)
    code.append(Instr(op="split", loc=step.loc))
    arms: list[SplitArm] = []
    exits: list[int] = []
    for arm in step.arms:
        arms.append(SplitArm(name=arm.name, percent=arm.percent, pc=len(code), control=arm.control))
        _emit(arm.steps, code)
        exits.append(len(code))
        code.append(Instr(op="jump", loc=step.loc))
    code[at] = code[at].model_copy(update={"arms": tuple(arms)})
    for exit_ in exits:
        code[exit_] = code[exit_].model_copy(update={"jump": len(code)})
