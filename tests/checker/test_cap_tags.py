"""The checker on caps scoped by what is sent: `at most 3 sends of templates tagged "promo" ...`."""

from __future__ import annotations

import pytest

import sopdsl
from sopdsl.checker import CheckResult, check_program
from sopdsl.source import Source
from sopdsl.syntax.formatter import format_source

HEAD = 'timezone "Asia/Shanghai"\ntemplate deal tagged "promo" = "秒杀"\ntemplate hi = "欢迎"\n'


def _check(policy: str) -> CheckResult:
    return check_program(sopdsl.load_text(HEAD + f"policy {{\n    {policy}\n}}\n", "c.sop"))


def _diagnostics(policy: str) -> list[tuple[str, str, int, int, str, str | None]]:
    found = _check(policy).diagnostics
    return [(d.code, d.severity.value, d.span.line, d.span.column, d.message, d.hint) for d in found]


def test_the_tags_reach_the_policy() -> None:
    result = _check('at most 3 sends of templates tagged "promo" per group per day else drop')
    assert result.program is not None
    (cap,) = result.program.policy.caps
    assert cap.tags == ("promo",) and cap.counts(("activity", "promo")) and not cap.counts(())


def test_only_sends_can_be_counted_by_template_tags() -> None:
    found = _diagnostics('at most 3 kicks of templates tagged "promo" per day')
    assert [(code, sev, line, col) for code, sev, line, col, _, _ in found] == [("SOP501", "error", 5, 41)]
    assert "only sends have templates" in found[0][4]


def test_a_tag_no_template_has_is_a_warning_with_the_closest_tag() -> None:
    found = _diagnostics('at most 3 sends of templates tagged "prom" per group per day')
    assert found == [
        (
            "SOP501",
            "warning",
            5,
            41,
            'no template is tagged "prom", so this cap never counts its sends',
            "did you mean 'promo'?",
        )
    ]


@pytest.mark.parametrize("spacing", ['of  templates tagged   "promo"', 'of templates tagged "promo"'])
def test_the_formatter_writes_the_scope_back(spacing: str) -> None:
    text = HEAD + f"policy {{\n  at most 3 sends {spacing}  per group per day else drop\n}}\n"
    out = format_source(Source("c.sop", text))
    assert '    at most 3 sends of templates tagged "promo" per group per day else drop\n' in out
    assert format_source(Source("c.sop", out)) == out
