"""A fixture's events checked as the live service checks each event it is sent (`live.intake`):
a custom event the playbooks do not declare, a declared field missing, misspelt or of the wrong
type, an order's amount given as text. The dry run used to replay such events, so a fixture
could pass on events the service refuses (and a misspelt field made a template fail only at run
time, in Jinja's words).

Input: a parsed fixture and the plans it runs (the first, and any it reloads: an event that one of
them takes is taken). Output: a located SOP602 diagnostic per event refused, which stops the
fixture as its other mistakes do.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sopdsl.diagnostics import Diagnostic, Severity, did_you_mean
from sopdsl.dryrun.fixture_models import Fixture
from sopdsl.dryrun.fixtures import position_of
from sopdsl.live.intake import EventError, intake
from sopdsl.plan import Plan
from sopdsl.source import Span


def event_problems(fixture: Fixture, plans: Sequence[Plan], path: str) -> list[Diagnostic]:
    """A diagnostic for each event of `fixture` that none of `plans` would take live (`path`: the
    fixture as shown)."""
    found: list[Diagnostic] = []
    for index, event in enumerate(fixture.events):
        if event.kind is None:
            continue  # a reload
        raw: dict[str, Any] = {"kind": event.kind, "data": dict(event.data), "time": 0}
        for key in ("member", "group", "name"):
            value = getattr(event, key)
            if value is not None:
                raw[key] = value
        refusal: EventError | None = None
        for plan in plans:
            try:
                intake(raw, plan.declarations, 0)
            except EventError as exc:
                refusal = refusal or exc
            else:
                refusal = None
                break
        if refusal is None:
            continue
        field = refusal.field or "kind"
        where = position_of(fixture, "events", index, *field.split("."))
        found.append(
            Diagnostic(
                "SOP602",
                Severity.ERROR,
                f"events.{index}.{field}: {refusal.reason}",
                Span.point(path, *where),
                "the live service refuses such an event, so the dry run does too",
            )
        )
    return found


def unknown_groups(fixture: Fixture, plans: Sequence[Plan], path: str) -> list[Diagnostic]:
    """A warning for each group an event or a member names that neither the fixture's `groups`
    nor the playbooks declare: the run makes it on the spot, without tags, so a playbook scoped
    to tagged groups never runs in it (a typo, `g2` for `g1`, went unnoticed)."""
    declared = {group.id for group in fixture.groups}
    for plan in plans:
        declared.update(plan.declarations.groups)
    found: list[Diagnostic] = []
    told: set[str] = set()
    places = [
        (group, ("members", index, "groups"), f"members.{index}.groups")
        for index, member in enumerate(fixture.members)
        for group in member.group_ids
    ] + [
        (event.group, ("events", index, "group"), f"events.{index}.group")
        for index, event in enumerate(fixture.events)
        if event.kind is not None and event.group is not None
    ]
    for group, where, field in places:
        if group in declared or group in told:
            continue
        told.add(group)
        found.append(
            Diagnostic(
                "SOP602",
                Severity.WARNING,
                f"{field}: group '{group}' is not in the fixture's groups or the playbooks': the run "
                "makes it without tags, so playbooks for tagged groups never run in it",
                Span.point(path, *position_of(fixture, *where)),
                did_you_mean(group, declared) or "list it under `groups:` with its tags",
            )
        )
    return found


def unknown_timeline_groups(
    path: Path, shown: str, named: Iterable[str], declared: set[str]
) -> list[Diagnostic]:
    """A warning for each group a JSONL timeline's members or events `named` that neither its
    header nor the playbooks declare (as `unknown_groups` for a YAML fixture), located at the
    first line naming it: found after the run, so the stream is read again only when one is."""
    unknown = [group for group in named if group not in declared]
    if not unknown:
        return []
    spelt = {group: (json.dumps(group), json.dumps(group, ensure_ascii=False)) for group in unknown}
    first: dict[str, int] = {}
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            for group, forms in spelt.items():
                if group not in first and any(form in line for form in forms):
                    first[group] = number
            if len(first) == len(spelt):
                break
    return [
        Diagnostic(
            "SOP602",
            Severity.WARNING,
            f"group '{group}' is not in the header's groups or the playbooks': the run makes it "
            "without tags, so playbooks for tagged groups never run in it",
            Span.point(shown, first.get(group, 1), 1),
            did_you_mean(group, declared) or 'list it in the header\'s "groups" with its tags',
        )
        for group in unknown
    ]
