"""`set member.coupon_due = coupon.expires_at` as syntax: both parse paths give the same tree, the
formatter writes it back as written (and stably), and a `coupon` with no field is a syntax error
that says what may follow it."""

from __future__ import annotations

import pytest
from test_formatter import assert_formats_well, fmt
from test_parser_paths import ZONE, assert_same

from sopdsl.errors import ParseError
from sopdsl.source import Source
from sopdsl.syntax import nodes
from sopdsl.syntax.parser import parse

GRANT_THEN_SET = """coupon new50 "新人券" worth 50 valid for 7 days
playbook grant_new {
    on member joins
    do {
        grant new50 to member
        set member.coupon_due = coupon.expires_at
    }
}
"""


def test_both_parse_paths_read_the_coupon_field_alike() -> None:
    tree = assert_same(ZONE + GRANT_THEN_SET)
    assert isinstance(tree, nodes.File)
    (playbook,) = [d for d in tree.declarations if isinstance(d, nodes.PlaybookDecl)]
    (do,) = [i for i in playbook.items if isinstance(i, nodes.DoSetting)]
    step = do.steps[1]
    assert isinstance(step, nodes.SetStep) and isinstance(step.value, nodes.CouponField)
    assert step.value.field.text == "expires_at"
    assert step.text() == "set member.coupon_due = coupon.expires_at"


def test_the_formatter_writes_it_back_and_stays_stable() -> None:
    squeezed = ZONE + GRANT_THEN_SET.replace("= coupon.expires_at", "=   coupon.expires_at")
    out = assert_formats_well(squeezed)
    assert out == fmt(ZONE + GRANT_THEN_SET)
    assert "set member.coupon_due = coupon.expires_at\n" in out


@pytest.mark.parametrize(
    ("value", "line", "hint"),
    [
        ("coupon", 8, "expected '.'"),
        ("coupon.", 8, "expected a name"),
        ("coupon expires_at", 7, "expected '.'"),
    ],
)
def test_a_coupon_without_its_field_is_a_syntax_error_saying_what_follows(
    value: str, line: int, hint: str
) -> None:
    text = ZONE + GRANT_THEN_SET.replace("coupon.expires_at", value)
    assert isinstance(assert_same(text), list)  # the same diagnostics on both paths
    with pytest.raises(ParseError) as caught:
        parse(Source("a.sop", text))
    ((code, at, said),) = [(d.code, d.span.line, d.hint) for d in caught.value.diagnostics]
    assert (code, at, said) == ("SOP100", line, hint)
