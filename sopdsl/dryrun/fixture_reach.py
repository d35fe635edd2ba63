"""Expectations a dry run cannot see: an action expected after the run stops, or a `never` (or
`count: 0`) of a fixture without `end`, whose run stops at its last event. Such a `never` held
whatever the playbooks did (the nudge a day after the last event never came, since the run had
stopped). And a check of member state that checks nothing, or cannot be made: one without `at`,
without anything to check, or with an action's fields and no `action` (`{template: d0, never:
true}` was read as a state check). Input: a parsed fixture; output: located problems, reported
with the fixture's others."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from sopdsl.dryrun.fixture_models import Expectation, Fixture
from sopdsl.dryrun.fixture_times import earlier, order_key, parse_time


def past_the_run(
    fixture: Fixture,
    tz: str | None,
    end: tuple[bool, float] | None,
    start: tuple[bool, float],
    latest: dict[bool, tuple[tuple[bool, float], str]],
    numbered: Callable[[str, list[Any]], list[tuple[int, Any]]],
    value_at: Callable[..., tuple[int, int]],
) -> list[tuple[str, tuple[int, int], str]]:
    """Expectations of actions the run cannot see, since it stops before them: a `never` there
    holds whatever the playbooks do. Without `end` the run stops at its last event or state check."""
    stops = dict(latest) if end is None else {end[0]: (end, fixture.end or "")}
    if end is None:
        stops.setdefault(start[0], (start, fixture.start))
        for expectation in fixture.expect:
            if expectation.action is None and expectation.plan_change is None and expectation.at:
                with contextlib.suppress(ValueError):  # a bad time is reported where it is read
                    key = order_key(parse_time(expectation.at), tz)
                    if key[0] in stops and earlier(stops[key[0]][0], key):
                        stops[key[0]] = (key, expectation.at)
    if len(stops) != 1:
        return []  # wall times and instants, without a zone to compare them in
    ((stop, shown),) = stops.values()
    ends = (
        f"the run ends at {shown}"
        if end is not None
        else f"the fixture gives no `end`, so the run stops at its last event or state check, {shown}"
    )
    hint = "give the run an `end:` after the last thing it should see (a wait's timeout, a calendar's send)"

    def after(value: str | None) -> bool:
        try:
            key = order_key(parse_time(value), tz) if value else None
        except ValueError:
            return False
        return key is not None and earlier(stop, key)

    found: list[tuple[str, tuple[int, int], str]] = []
    for index, expectation in numbered("expect", fixture.expect):
        if expectation.action is None and expectation.plan_change is None:
            continue  # a state check runs the clock to its time
        within = expectation.within
        if after(expectation.at):
            found.append(
                (
                    f"expect.{index}.at: {expectation.at} is past the run: {ends}",
                    value_at("expect", index, "at"),
                    hint,
                )
            )
        elif within is not None and after(within[0]):
            found.append(
                (
                    f"expect.{index}.within: it begins ({within[0]}) past the run: {ends}",
                    value_at("expect", index, "within"),
                    hint,
                )
            )
        elif end is None and expectation.action is not None and (expectation.never or expectation.count == 0):
            # (A plan change happens at a reload, an entry of the run's own events: never past it.)
            if expectation.at or (within is not None and not after(within[1])):
                continue  # its time lies inside the run
            field = "count" if expectation.count == 0 else "never"
            found.append(
                (
                    f"expect.{index}.{field}: {ends}; whatever the playbooks would do later is never seen, "
                    "so this holds whatever they do",
                    value_at("expect", index, field),
                    hint,
                )
            )
    return found


# Fields matched on actions only, and those of a check of member state.
_ACTION_FIELDS = (
    *("template", "tag", "coupon", "to_group", "arm", "target", "operator", "assignee", "call"),
    *("args", "attachments", "mentions", "status", "within", "count", "never", "playbook"),
)
_STATE_FIELDS = ("tagged", "not_tagged", "attributes", "counters", "in_group", "not_in_group")


def state_check_problems(expectation: Expectation, index: int) -> list[tuple[str, str]]:
    """What is wrong with an expectation of neither an action nor a plan change: it is a check of
    a member's state, which needs something to check and a moment to look (`at`)."""
    given = expectation.model_fields_set
    stray = [name for name in _ACTION_FIELDS if name in given]
    if stray:
        # `{template: d0, never: true}`: the action's kind left out, read as a state check.
        return [
            (
                f"expect.{index}: no `action`, but `{stray[0]}` is matched on actions",
                f"say which action it expects, like {{action: send, {stray[0]}: ...}}",
            )
        ]
    if not given & set(_STATE_FIELDS):
        return [
            (
                f"expect.{index}: nothing to check: no `action`, `plan_change` or member state",
                "give `action` for what must happen, or what the member must be at `at`: "
                + ", ".join(_STATE_FIELDS),
            )
        ]
    if expectation.at is None:
        return [
            (
                f"expect.{index}: a check of a member's state needs `at`, the moment to look",
                f"like {{member: {expectation.member or 'm1'}, at: 2026-03-10 00:00, ...}}",
            )
        ]
    return []
