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

from collections.abc import Sequence
from typing import Any

from sopdsl.diagnostics import Diagnostic, Severity
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
