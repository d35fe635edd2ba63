"""A fixture's members and groups held to the limits the live service holds them to
(`sopdsl.limits`, field by field in `engine/record_checks.py`): an id or a tag over 256
characters, a name holding an escape, a text attribute over 4,096 characters. The dry run took
them, so a fixture passed `sopdsl test` on data the service refuses when the playbooks go live.
(Its events are held to the same limits by `fixture_events`, through the live door's own intake.)

Input: a parsed fixture. Output: a located SOP602 diagnostic per field at fault, which stops the
fixture as its other mistakes do.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sopdsl.diagnostics import Diagnostic, Severity
from sopdsl.dryrun.fixture_models import Fixture
from sopdsl.dryrun.fixtures import position_of
from sopdsl.engine.record_checks import group_problems, member_problems
from sopdsl.limits import label_problem
from sopdsl.source import Span

_HINT = "the live service refuses such a {}, so the dry run does too"


def limit_problems(fixture: Fixture, path: str) -> list[Diagnostic]:
    """A diagnostic for each field of a fixture's groups and members over a limit of the live
    service, or holding what it refuses (`path`: the fixture as shown)."""
    found: list[Diagnostic] = []
    for index, group in enumerate(fixture.groups):
        record = group.record()
        for field, problem in group_problems(record):
            found.append(_diagnostic(fixture, path, "groups", index, _place(record, field), problem))
    for index, member in enumerate(fixture.members):
        # Its times were checked before (fixture_checks) and are no id; a name left out is the
        # dry run's stand-in (the id), which a bot would not send.
        entry = dataclasses.replace(member.record(lambda _: 0), name=member.name or "")
        for field, problem in member_problems(entry, history=False):
            found.append(_diagnostic(fixture, path, "members", index, _place(entry, field), problem))
    return found


def _place(record: Any, field: str) -> tuple[Any, ...]:
    """Where in a fixture's entry `field` is written: `tags.0` at the first tag, a misnamed
    attribute at its key."""
    head, _, rest = field.partition(".")
    if head in ("tags", "groups") and rest.isdigit():
        return (head, int(rest))
    if head in ("attributes", "counters") and not rest:
        bad = [key for key in getattr(record, head) if label_problem(key, head) is not None]
        return (head, bad[0]) if bad else (head,)
    return (head, rest) if rest else (head,)


def _diagnostic(
    fixture: Fixture, path: str, section: str, index: int, place: tuple[Any, ...], problem: str
) -> Diagnostic:
    field = ".".join(str(part) for part in place)
    return Diagnostic(
        "SOP602",
        Severity.ERROR,
        f"{section}.{index}.{field}: {problem}",
        Span.point(path, *position_of(fixture, section, index, *place)),
        _HINT.format(section[:-1]),
    )
