"""The checker on `set member.X = coupon.F`: allowed where a template may read `coupon.*` (a
grant on every path before it), into an attribute of the field's type; each misuse is one
located diagnostic with a hint (SOP202 not granted, SOP108 no such field, SOP406 wrong type)."""

from __future__ import annotations

import pytest

import sopdsl
from sopdsl import lang
from sopdsl.errors import DiagnosticError

HEAD = """timezone "Asia/Shanghai"
attribute coupon_due: date
attribute coupon_note: text
counter coupon_worth
coupon new50 "新人券" worth 50 valid for 7 days
calendar daily = every day at 10:00
"""


def _diagnostics(text: str) -> list[tuple[str, int, int, str, str | None]]:
    with pytest.raises(DiagnosticError) as caught:
        sopdsl.check(sopdsl.load_text(HEAD + text, "a.sop"))
    return [(d.code, d.span.line, d.span.column, d.message, d.hint) for d in caught.value.diagnostics]


def _sets(text: str) -> list[lang.SetStep]:
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(HEAD + text, "a.sop")))
    return [i.action for pb in plan.playbooks for i in pb.code if isinstance(i.action, lang.SetStep)]


def test_after_a_grant_each_field_goes_into_an_attribute_or_counter_of_its_type() -> None:
    sets = _sets(
        """
playbook p {
    on member joins
    do {
        grant new50 to member
        set member.coupon_due = coupon.expires_at
        set member.coupon_note = coupon.code
        set member.coupon_worth = coupon.worth
    }
}
"""
    )
    assert [(s.attribute, s.value) for s in sets] == [
        ("coupon_due", lang.CouponField(field="expires_at", type=lang.ValueType.DATETIME)),
        ("coupon_note", lang.CouponField(field="code", type=lang.ValueType.TEXT)),
        ("coupon_worth", lang.CouponField(field="worth", type=lang.ValueType.NUMBER)),
    ]


def test_a_grant_on_every_path_counts_as_for_templates() -> None:
    sets = _sets(
        """
playbook p {
    on member joins
    do {
        if member.name starts with "A" { grant new50 to member } else { grant new50 to member }
        set member.coupon_due = coupon.expires_at
    }
}
"""
    )
    assert len(sets) == 1


def test_a_grant_on_one_path_only_is_located_at_the_coupon_with_the_templates_hint() -> None:
    assert _diagnostics(
        """
playbook p {
    on member joins
    do {
        if member.name starts with "A" { grant new50 to member }
        set member.coupon_due = coupon.expires_at
    }
}
"""
    ) == [
        (
            "SOP202",
            12,
            33,
            "this step reads coupon.expires_at, but no coupon is granted before this step on every "
            "path to it, so the engine would have no coupon to read it from",
            "move the `grant` above this step (in this block, or before the block it is in)",
        )
    ]


def test_a_playbook_that_grants_nothing_says_so() -> None:
    assert _diagnostics(
        "playbook p {\n    on member orders\n    do: set member.coupon_due = coupon.expires_at\n}\n"
    ) == [
        (
            "SOP202",
            9,
            33,
            "this step reads coupon.expires_at, but this playbook grants no coupon",
            "grant the coupon before this `set`",
        )
    ]


def test_a_calendar_entry_is_a_flow_of_its_own_for_a_set_too() -> None:
    ((code, line, _, _, hint),) = _diagnostics(
        """
playbook p {
    on member joins
    do: grant new50 to member
    at daily for each member: set member.coupon_due = coupon.expires_at
}
"""
    )
    assert (code, line) == ("SOP202", 11)
    assert hint is not None and hint.endswith("grant in this entry before this `set`")


def test_an_unknown_field_gets_a_did_you_mean_at_the_field() -> None:
    assert _diagnostics(
        "playbook p {\n    on member joins\n"
        "    do { grant new50 to member  set member.coupon_due = coupon.expire_at }\n}\n"
    ) == [("SOP108", 9, 64, "coupons have no field 'expire_at'", "did you mean 'expires_at'?")]


def test_an_attribute_of_another_type_says_which_to_declare() -> None:
    assert _diagnostics(
        "playbook p {\n    on member joins\n"
        "    do { grant new50 to member  set member.coupon_note = coupon.expires_at }\n}\n"
    ) == [
        (
            "SOP406",
            9,
            58,
            "member.coupon_note is text, but coupon.expires_at is a date and time",
            "set an attribute declared `: date`, e.g. `attribute coupon_due: date`",
        )
    ]


def test_coupon_fields_are_read_by_set_only() -> None:
    # The grammar takes `coupon.F` where `set` takes a value, nowhere else: a condition is a
    # syntax error, not a reference the engine would have to resolve against a flow.
    with pytest.raises(DiagnosticError) as caught:
        sopdsl.check(
            sopdsl.load_text(
                HEAD
                + "playbook p {\n    on member joins\n    when coupon.worth > 10\n    do: grant new50 to member\n}\n",
                "a.sop",
            )
        )
    assert [d.code for d in caught.value.diagnostics] == ["SOP100"]
