"""Names in a fixture's expectations, resolved against the plan and the fixture.

Input: a validated `Fixture` and the plans it runs (its own and those its `reload` entries load).
Output: a located `SOP604` diagnostic for each name nothing could ever produce: a template, tag,
coupon, member, group, playbook, action kind, split arm or custom action that no version of the
playbooks and nothing in the fixture knows. An expectation that something never happens, over a
name that does not exist, proves nothing, so it is an error; elsewhere the expectation fails
anyway, and the diagnostic (a warning) says why with a `did you mean`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from sopdsl import lang
from sopdsl.diagnostics import Diagnostic, Severity, did_you_mean
from sopdsl.dryrun.fixture_models import Expectation, Fixture
from sopdsl.dryrun.fixtures import position_of
from sopdsl.kinds import BUILTIN_COUNTERS
from sopdsl.plan import Instr, Plan
from sopdsl.source import Span


@dataclass
class Known:
    """Every name an expectation may use, by what it names."""

    templates: set[str] = field(default_factory=set)
    coupons: set[str] = field(default_factory=set)
    playbooks: set[str] = field(default_factory=set)
    actions: set[str] = field(default_factory=set)  # the action kinds some step produces
    calls: set[str] = field(default_factory=set)  # custom actions
    arms: set[str] = field(default_factory=set)
    written_tags: set[str] = field(default_factory=set)  # what tag and untag steps write
    tags: set[str] = field(default_factory=set)  # any tag a member may carry
    members: set[str] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)
    attributes: set[str] = field(default_factory=set)
    counters: set[str] = field(default_factory=set)


def known_names(fixture: Fixture, plans: Sequence[Plan]) -> Known:
    """The names the plans (every version a fixture runs) and the fixture itself define."""
    known = Known(counters=set(BUILTIN_COUNTERS))
    for plan in plans:
        program = plan.declarations
        known.templates.update(program.templates)
        known.coupons.update(program.coupons)
        known.calls.update(program.actions)
        known.groups.update(program.groups)
        known.attributes.update(program.attributes)
        known.counters.update(program.counters)
        for declared in program.groups.values():
            known.tags.update(declared.tags)
        for compiled in plan.playbooks:
            known.playbooks.add(compiled.name)
            for instr in _instructions(compiled.code, (entry.code for entry in compiled.schedule)):
                _learn(known, instr)
                if instr.op == "assign" and program.policy.escalate_to is not None:
                    known.actions.add("escalate")
    for group in fixture.groups:
        known.groups.add(group.id)
        known.tags.update(group.tags)
    for member in fixture.members:
        known.members.add(member.id)
        known.tags.update(member.tags)
        known.groups.update(member.group_ids)
        if member.referrer:
            known.members.add(member.referrer)
        known.attributes.update(member.attributes)
        known.counters.update(member.counters)
    for event in fixture.events:
        if event.member:
            known.members.add(event.member)
        if event.group:
            known.groups.add(event.group)
        if event.kind in ("tag", "untag") and event.name:
            known.tags.add(event.name)
        for name in ("inviter", "invitee", "referrer"):
            if isinstance(event.data.get(name), str):
                known.members.add(event.data[name])
    known.tags.update(known.written_tags)
    return known


def _instructions(code: Iterable[Instr], schedule: Iterable[Iterable[Instr]]) -> Iterator[Instr]:
    yield from code
    for entry in schedule:
        yield from entry


def _learn(known: Known, instr: Instr) -> None:
    """What one instruction can produce."""
    if instr.op == "assign":
        known.actions.add("task")
    for arm in instr.arms:
        known.arms.add(arm.name)
    step = instr.action
    match step:
        case None:
            return
        case lang.TagStep():
            known.actions.add("untag" if step.remove else "tag")
            known.written_tags.update(step.tags)
        case lang.InviteStep():
            known.actions.add("invite")
            known.groups.add(step.group)
        case lang.AddStep() | lang.SetStep():
            return  # change a member's record: no action
        case _:
            known.actions.add(step.kind)


@dataclass(frozen=True)
class NameProblem:
    """An unknown name: its diagnostic, and the expectation it is in. `stops`: the fixture is
    wrong and cannot run (a misspelt name under `never`); otherwise the expectation fails."""

    index: int
    diagnostic: Diagnostic
    stops: bool


def name_problems(fixture: Fixture, plans: Sequence[Plan], path: str) -> list[NameProblem]:
    """A located diagnostic per unknown name in the fixture's expectations (`path`: the fixture
    as shown). Under `never`, an error: a misspelt name stops the fixture; an action kind no
    step makes fails the expectation (the playbook may have lost the step: a real failure)."""
    known = known_names(fixture, plans)
    found: list[NameProblem] = []
    for index, expectation in enumerate(fixture.expect):
        vacuous = expectation.never or expectation.count == 0
        for field_name, value, names, what in _names(expectation, known):
            if value in names:
                continue
            severity = Severity.ERROR if vacuous else Severity.WARNING
            if field_name == "action":
                message = f"expect.{index}.action: no step of the playbooks makes '{value}' actions"
            else:
                message = (
                    f"expect.{index}.{field_name}: {what} '{value}' is not in the playbooks or the fixture"
                )
            if vacuous:
                message += f", so this `{_written(expectation)}` holds whatever happens"
            hint = did_you_mean(value, names) or _nothing(what, names)
            place = [int(p) if p.isdigit() else p for p in field_name.split(".")]
            where = position_of(fixture, "expect", index, *place)
            diagnostic = Diagnostic("SOP604", severity, message, Span.point(path, *where), hint)
            found.append(NameProblem(index, diagnostic, vacuous and field_name != "action"))
        found.extend(_uncarried(fixture, index, expectation, path, vacuous))
    return found


def _written(e: Expectation) -> str:
    """How the fixture wrote "no such action": the message names what the operator typed."""
    return "never" if e.never else "count: 0"


# The action kinds whose records carry each field an expectation matches on (`engine/acting.py`,
# `tasks.py`, `drawing.py`): a grant has no template, a send no coupon, so `{action: grant,
# template: gift_note, never: true}` held whatever happened. `tests/dryrun/test_fixture_names.py`
# holds the table to what the corpus's runs record.
CARRIED: dict[str, frozenset[str]] = {
    "template": frozenset({"send", "task", "escalate"}),
    "attachments": frozenset({"send", "task", "escalate"}),
    "operator": frozenset({"send", "task", "escalate"}),
    "assignee": frozenset({"task", "escalate"}),
    "mentions": frozenset({"send"}),
    "arm": frozenset({"send"}),
    "coupon": frozenset({"grant"}),
    "tag": frozenset({"tag", "untag", "draw"}),
    "to_group": frozenset({"invite"}),
    "call": frozenset({"call"}),
    "args": frozenset({"call"}),
}


def _uncarried(
    fixture: Fixture, index: int, e: Expectation, path: str, vacuous: bool
) -> Iterator[NameProblem]:
    """A problem per field the expectation's action kind never carries: it can never match."""
    if e.action is None:
        return
    for name, kinds in CARRIED.items():
        if getattr(e, name) is None or e.action in kinds:
            continue
        message = f"expect.{index}.{name}: a {e.action} action carries no {name}, so no action matches this"
        if vacuous:
            message += f", and this `{_written(e)}` holds whatever happens"
        where = position_of(fixture, "expect", index, name)
        hint = f"`{name}` goes with {', '.join(sorted(kinds))} actions; leave it out, or check `action`"
        severity = Severity.ERROR if vacuous else Severity.WARNING
        yield NameProblem(
            index, Diagnostic("SOP604", severity, message, Span.point(path, *where), hint), vacuous
        )


def _nothing(what: str, names: set[str]) -> str:
    if not names:
        return f"no {what} is defined anywhere; check the expectation is about this playbook"
    shown = ", ".join(sorted(names)[:8]) + (", ..." if len(names) > 8 else "")
    return f"known: {shown}"


def _names(e: Expectation, known: Known) -> Iterator[tuple[str, str, set[str], str]]:
    """Each name an expectation gives: (its field, the name, the names it must be one of, what it is)."""
    if e.action is not None:
        yield "action", e.action, known.actions, "action kind"
    singles: tuple[tuple[str, set[str], str], ...] = (
        ("template", known.templates, "template"),
        ("coupon", known.coupons, "coupon"),
        ("call", known.calls, "custom action"),
        ("playbook", known.playbooks, "playbook"),
        ("arm", known.arms, "split arm"),
        ("member", known.members, "member"),
        ("group", known.groups, "group"),
        ("to_group", known.groups, "group"),
        ("in_group", known.groups, "group"),
        ("not_in_group", known.groups, "group"),
    )
    for name, names, what in singles:
        value = getattr(e, name)
        if value is not None:
            yield name, str(value), names, what
    if e.tag is not None:
        yield "tag", e.tag, known.written_tags, "tag written by a step"
    for name in ("tagged", "not_tagged"):
        for i, tag in enumerate(getattr(e, name) or ()):
            yield f"{name}.{i}", tag, known.tags, "tag"
    for attribute in e.attributes or {}:
        yield f"attributes.{attribute}", attribute, known.attributes, "attribute"
    for counter in e.counters or {}:
        yield f"counters.{counter}", counter, known.counters, "counter"
