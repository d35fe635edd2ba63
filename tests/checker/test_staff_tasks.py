"""Staff tasks in the language: `assign … to owner|operator … with message T`, and the chief
owner declared once (`escalate tasks to`): located diagnostics when misused, the plan they make,
and `fmt` keeping them."""

from __future__ import annotations

import json
from typing import Any

import pytest

import sopdsl
from sopdsl.errors import DiagnosticError
from sopdsl.source import Source
from sopdsl.syntax.formatter import format_source

HEAD = 'timezone "Asia/Shanghai"\ntemplate sorry = "{{ member.name }}，抱歉"\n'
PRIVATE = "playbook p {{\n    in private chats\n    on member orders\n    do: {step}\n}}\n"
GROUPS = 'playbook p {{\n    in groups tagged "a"\n    on member joins\n    do: {step}\n}}\n'


def _without_places(dumped: str) -> Any:
    """A plan's JSON less where each thing was written (lines move when fmt lays a file out)."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("loc", "content_hash")}
        return [strip(v) for v in value] if isinstance(value, list) else value

    return strip(json.loads(dumped))


def _diagnostics(text: str) -> list[tuple[str, int, int, str, str | None]]:
    with pytest.raises(DiagnosticError) as caught:
        sopdsl.check(sopdsl.load_text(HEAD + text, "a.sop"))
    return [(d.code, d.span.line, d.span.column, d.message, d.hint) for d in caught.value.diagnostics]


def test_a_task_about_a_contact_goes_to_its_owner_with_its_message() -> None:
    text = PRIVATE.format(step='assign "回访" to owner within 1 day with message sorry')
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(HEAD + text, "a.sop")))
    instr = plan.playbooks[0].code[0]
    assert (instr.op, instr.to, instr.template) == ("assign", "owner", "sorry")


def test_a_plan_without_the_new_forms_is_written_as_before() -> None:
    text = GROUPS.format(step='assign "回访" to operator within 1 day')
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(HEAD + text, "a.sop")))
    dumped = plan.dumps()
    assert '"to"' not in dumped and '"template": null' not in dumped and "escalate_to" not in dumped


def test_a_private_chat_has_no_operator_to_assign_to() -> None:
    found = _diagnostics(PRIVATE.format(step='assign "回访" to operator within 1 day'))
    assert found == [
        (
            "SOP116",
            6,
            9,
            "a playbook for private chats has no group operator to assign a task to",
            "assign it `to owner`: the contact's owner (跟进人)",
        )
    ]


def test_an_owner_needs_a_member_and_takes_only_tasks() -> None:
    group_entry = 'playbook p {\n    in groups tagged "a"\n    at every monday at 09:00: assign "x" to owner within 1 day\n}\n'
    assert [d[:3] for d in _diagnostics(group_entry)] == [("SOP116", 5, 31)]
    sent = _diagnostics(GROUPS.format(step="send sorry to owner"))
    assert sent[0][:4] == ("SOP116", 6, 9, "cannot send to owner")


def test_the_message_must_be_a_declared_template_without_a_mention() -> None:
    unknown = _diagnostics(PRIVATE.format(step='assign "x" to owner within 1 day with message sory'))
    assert unknown[0][:3] == ("SOP104", 6, 55) and "sorry" in (unknown[0][4] or "")
    mention = 'template hi = "你好" mentioning member\n' + GROUPS.format(
        step='assign "x" to operator within 1 day with message hi'
    )
    assert [d[:3] for d in _diagnostics(mention)] == [("SOP207", 7, 58)]


def test_the_chief_owner_is_declared_once_and_named() -> None:
    twice = 'policy {\n    escalate tasks to "老王"\n    escalate tasks to "老李"\n}\n'
    assert _diagnostics(twice) == [
        ("SOP114", 5, 5, "the chief owner tasks escalate to is set twice", "first set at line 4")
    ]
    same = 'policy {\n    escalate tasks to "老王"\n}\npolicy {\n    escalate tasks to "老王"\n}\n'
    assert (
        sopdsl.check(sopdsl.load_text(HEAD + same, "a.sop")).policy.escalate_to == "老王"
    )  # one, said twice
    empty = 'policy {\n    escalate tasks to " "\n}\n'
    assert [d[:3] for d in _diagnostics(empty)] == [("SOP501", 4, 23)]


def test_fmt_keeps_owners_messages_and_the_chief_owner() -> None:
    text = (
        HEAD
        + 'policy { escalate tasks to "老王" }\n'
        + 'playbook p { in private chats on member orders do { assign "回访" to owner within 1 day '
        + "with message sorry then { stop } else { stop } } }\n"
    )
    out = format_source(Source("a.sop", text))
    assert format_source(Source("a.sop", out)) == out  # stable
    plans = [sopdsl.compile_program(sopdsl.check(sopdsl.load_text(t, "a.sop"))) for t in (text, out)]
    assert _without_places(plans[0].dumps()) == _without_places(plans[1].dumps())  # the same program
    assert '    escalate tasks to "老王"\n' in out
    assert 'assign "回访" to owner within 1 day with message sorry then {' in out
