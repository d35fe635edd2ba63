"""Verdicts of a dry run: what each expectation asked, what the run did, and the lines that say so.

Input: the actions and plan changes of a run (`sopdsl.dryrun.simulate`) and a fixture's expectations.
Output: an `Outcome` per expectation, and the one-line descriptions of actions and reloads that
`sopdsl simulate`, `test` and `why` print.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sopdsl.dryrun.fixture_times import to_epoch
from sopdsl.dryrun.fixtures import (
    Expectation,
)
from sopdsl.engine.actions import Action
from sopdsl.engine.engine import Engine
from sopdsl.engine.versions import ENDED, FINISHES, MOVED, PlanChange
from sopdsl.kinds import subject_of
from sopdsl.plan import Plan, timeutil


@dataclass
class Outcome:
    """One expectation's verdict, with what was found instead when it failed."""

    index: int
    expectation: Expectation
    passed: bool
    message: str
    nearest: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Reload:
    """Another version of the playbooks, loaded at `time` (a fixture's `reload` entry)."""

    time: int
    plan: Plan
    files: tuple[str, ...]  # as the fixture names them


@dataclass(frozen=True)
class Reloaded:
    """A reload as it happened: after how many actions of the log, and what it did to each flow."""

    time: int
    files: tuple[str, ...]
    previous: str  # the content hash of the plan running before
    plan: str  # the content hash of the plan loaded
    position: int  # actions logged before it
    changes: list[PlanChange]
    # Event kinds the loaded version counts over time windows that the running one did not
    # record: those counts start from zero at the reload.
    unrecorded: tuple[str, ...] = ()


# A plan-change expectation's words for the engine's outcomes.
PLAN_CHANGES = {"moves": MOVED, "finishes": FINISHES, "ends": ENDED}
CHANGE_NAMES = {outcome: name for name, outcome in PLAN_CHANGES.items()}


def _state_problem(engine: Engine, expectation: Expectation) -> str | None:
    member = engine.members.get(expectation.member or "")
    if member is None:
        return f"no member '{expectation.member}'"
    have = ", ".join(sorted(member.tags)) or "none"
    problems = [
        f"not tagged '{tag}' (tags: {have})" for tag in expectation.tagged or () if tag not in member.tags
    ]
    problems.extend(f"tagged '{tag}'" for tag in expectation.not_tagged or () if tag in member.tags)
    for name, value in (expectation.attributes or {}).items():
        if member.attributes.get(name) != value:
            problems.append(f"{name} is {member.attributes.get(name)!r}, not {value!r}")
    for name, value in (expectation.counters or {}).items():
        if member.counters.get(name, 0) != value:
            problems.append(f"{name} is {member.counters.get(name, 0):g}, not {value:g}")
    if expectation.in_group and expectation.in_group not in member.groups:
        problems.append(f"not in group '{expectation.in_group}'")
    if expectation.not_in_group and expectation.not_in_group in member.groups:
        problems.append(f"still in group '{expectation.not_in_group}'")
    return "; ".join(problems) or None


def _matches(action: Action, e: Expectation) -> bool:
    if action.kind != e.action or action.status != e.status:
        return False
    if e.member is not None and action.member != e.member:
        return False
    if e.group is not None and action.group != e.group:
        return False
    if e.playbook is not None and action.playbook != e.playbook:
        return False
    detail = action.detail
    if e.template is not None and detail.get("template") != e.template:
        return False
    if e.tag is not None and e.tag not in detail.get("tags", ()):
        return False
    if e.coupon is not None and detail.get("coupon") != e.coupon:
        return False
    if e.to_group is not None and detail.get("to_group") != e.to_group:
        return False
    if e.target is not None and action.target != e.target:
        return False
    if e.operator is not None and detail.get("operator") != e.operator:
        return False
    if e.assignee is not None and detail.get("assignee") != e.assignee:
        return False
    if e.call is not None and detail.get("action") != e.call:
        return False
    if e.args is not None:
        # The arguments named must match; others the call passes are not the expectation's concern.
        given = detail.get("args", {})
        if any(name not in given or given[name] != value for name, value in e.args.items()):
            return False
    if e.attachments is not None and [a.get("type") for a in detail.get("attachments", ())] != e.attachments:
        return False
    if e.mentions is not None and list(detail.get("mentions", ())) != e.mentions:
        return False
    return e.arm is None or detail.get("arm") == e.arm


def moment(epoch: int, tz_name: str) -> str:
    """An instant as tables show it: local to the minute, with its UTC offset, so the hour a
    clock goes back is not ambiguous (`2026-11-01T01:30-04:00`, then `…01:30-05:00`)."""
    text = timeutil.iso(epoch, timeutil.zone(tz_name))
    return text[:16] + text[19:]


def describe(action: Action, tz_name: str) -> str:
    """A one-line description of an action for tables and failure messages: its time, and, when
    it did not go as planned, the time it was planned for and why (`[deferred from …: quiet
    hours]`, `[dropped: cap: …]`, `[failed: template error: 'coupon' is undefined]`)."""
    what = subject_of(action.kind, action.detail)
    who = action.member or action.group or "-"
    moved = action.planned is not None and action.planned != action.time
    planned = moment(action.planned, tz_name) if moved and action.planned is not None else ""
    why = f": {action.reason}" if action.reason else ""
    if action.status == "done":
        status = f" [deferred from {planned}{why}]" if moved else ""
    else:
        status = f" [{action.status}{why}" + (f"; planned {planned}" if moved else "") + "]"
    return f"{moment(action.time, tz_name)} {action.kind} {what} -> {who}{status}".replace("  ", " ")


def describe_reload(reload: Reloaded, tz_name: str) -> list[str]:
    """Lines for a reload, for tables and failure messages: what it loaded, then what it did to
    each flow in progress (one `plan change ...` line each)."""
    when = moment(reload.time, tz_name)
    head = f"{when} reload {', '.join(reload.files)}: plan {reload.previous[:12]} -> {reload.plan[:12]}"
    if not reload.changes:
        head += ", no flow in progress changed"
    lines = [head, *(f"{when} {change}" for change in reload.changes)]
    warning = reload_warning(reload, tz_name)
    return [*lines, warning] if warning else lines


def reload_warning(reload: Reloaded, tz_name: str) -> str | None:
    """The warning a reload deserves, if the new version counts events the old one did not record."""
    if not reload.unrecorded:
        return None
    when = moment(reload.time, tz_name)
    return (
        f"{when} warning: the new version counts {', '.join(reload.unrecorded)} events over time "
        "windows the old one did not record; those counts start from zero here"
    )


# An action or a plan change as a failure message shows it: its place in the log (an action's
# index; a plan change comes before the action logged after it), its time, and the action or
# the change's line.
_Entry = tuple[tuple[int, int, int], int, Action | str]


def _changes(reloads: list[Reloaded], e: Expectation, tz_name: str) -> list[tuple[_Entry, PlanChange]]:
    """The plan changes of the flows of the expectation's member or group (all, for neither)."""
    every = [(r, change) for r in reloads for change in r.changes]
    return [
        (((r.position, 0, n), r.time, f"{moment(r.time, tz_name)} {change}"), change)
        for n, (r, change) in enumerate(every)
        if (e.member is None or change.member == e.member) and (e.group is None or change.group == e.group)
    ]


def _judge(
    index: int,
    e: Expectation,
    actions: list[Action],
    states: dict[int, str | None],
    tz_name: str,
    reloads: list[Reloaded],
) -> Outcome:
    if e.action is None and e.plan_change is None:
        problem = states.get(index, "no time given for this state check")
        return Outcome(index, e, problem is None, problem or "state as expected")
    changes = _changes(reloads, e, tz_name)
    # Shown on failure: what plan changes did to this member's or group's flows (why they got
    # another version's steps); for an expectation about no one in particular, that is noise.
    named = e.member is not None or e.group is not None
    context = [entry for entry, _ in changes[:5]] if named else []
    if e.plan_change is not None:
        candidates = [entry for entry, change in changes if change.outcome == PLAN_CHANGES[e.plan_change]]
        similar = [entry for entry, _ in changes]
    else:
        logged = list(enumerate(actions))
        candidates = [((i, 1, 0), a.time, a) for i, a in logged if _matches(a, e)]
        similar = [
            ((i, 1, 0), a.time, a)
            for i, a in logged
            if a.kind == e.action
            and (e.member is None or a.member == e.member or a.group == e.group or _to_group(a, e))
        ]
    found = candidates
    if e.at is not None:
        moment = to_epoch(e.at, tz_name)
        found = [entry for entry in candidates if entry[1] == moment]
    elif e.within is not None:
        low, high = to_epoch(e.within[0], tz_name), to_epoch(e.within[1], tz_name)
        found = [entry for entry in candidates if low <= entry[1] <= high]
    title = expectation_title(e)
    if e.never:
        passed = not found
        message = title if passed else f"expected {title}, but it happened {len(found)} time(s)"
        nearest = found[:5]
    elif e.count is not None:
        passed = len(found) == e.count
        message = title if passed else f"expected {title}, got {len(found)}"
        nearest = found[:8]
    else:
        passed = bool(found)
        message = title if passed else f"expected {title}, but it did not happen"
        nearest = (candidates or similar)[:5]
    if passed:
        return Outcome(index, e, passed, message)
    shown = sorted({entry[0]: entry for entry in (*nearest, *context)}.values(), key=lambda entry: entry[0])
    lines = [item if isinstance(item, str) else describe(item, tz_name) for _, _, item in shown]
    posts = sorted(
        {str(item.group) for _, _, item in shown if isinstance(item, Action) and _to_group(item, e)}
    )
    if posts and not candidates:
        lines.append(f"(a post to the group names no member: expect it with `group: {posts[0]}`)")
    return Outcome(index, e, passed, message, lines)


def _to_group(a: Action, e: Expectation) -> bool:
    """Whether `a` is a post to a group that a member-only expectation may have meant."""
    return (
        e.member is not None
        and e.group is None
        and a.member is None
        and a.target == "group"
        and a.group is not None
        and (e.template is None or a.detail.get("template") == e.template)
    )


def expectation_title(e: Expectation) -> str:
    """What an expectation asks, the same whether it holds or not (a JUnit test case's name, and
    an action's or plan change's message when it holds)."""
    if e.action is None and e.plan_change is None:
        parts = [f"member {e.member}"]
        if e.tagged:
            parts.append("tagged " + ", ".join(e.tagged))
        if e.not_tagged:
            parts.append("not tagged " + ", ".join(e.not_tagged))
        parts.extend(
            f"{name} = {value!r}" for name, value in {**(e.attributes or {}), **(e.counters or {})}.items()
        )
        if e.in_group:
            parts.append(f"in group {e.in_group}")
        if e.not_in_group:
            parts.append(f"not in group {e.not_in_group}")
        return " ".join(parts) + (f" at {e.at}" if e.at else "")
    window = ""
    if e.at is not None:
        window = f" at {e.at}"
    elif e.within is not None:
        window = f" between {e.within[0]} and {e.within[1]}"
    if e.never:
        return f"never {_what(e)}{window}"
    if e.count is not None:
        return f"{_what(e)}{window} {e.count} time(s)"
    return f"{_what(e)}{window}"


def _what(e: Expectation) -> str:
    if e.plan_change is not None:
        who = f" for member {e.member}" if e.member else ""
        where = f" in group {e.group}" if e.group else ""
        return f"plan change '{e.plan_change}'{who}{where}"
    parts: list[Any] = [e.action]
    labels = (
        "playbook",
        "call",
        "template",
        "tag",
        "coupon",
        "to_group",
        "arm",
        "target",
        "operator",
        "assignee",
    )
    for label in labels:
        value = getattr(e, label)
        if value is not None:
            parts.append(f"{label}={value}")
    if e.args is not None:
        parts.append("args=" + json.dumps(e.args, ensure_ascii=False, sort_keys=True))
    parts.extend(
        f"{label}=[{', '.join(getattr(e, label))}]"
        for label in ("attachments", "mentions")
        if getattr(e, label) is not None
    )
    if e.member:
        parts.append(f"to member {e.member}")
    if e.group:
        parts.append(f"in group {e.group}")
    if e.status != "done":
        parts.append(f"({e.status})")
    return " ".join(str(p) for p in parts)
