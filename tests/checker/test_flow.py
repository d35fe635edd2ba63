"""The flow analysis in step order: a template that reads `{{ coupon.* }}` is sent only where a
coupon has been granted on every path before it (the engine knows a coupon once it is granted)."""

from __future__ import annotations

import textwrap

import pytest

import sopdsl
from sopdsl.errors import CheckError

HEAD = """\
timezone "Asia/Shanghai"
coupon gift "礼物券" worth 30
template note "券" = "「{{ coupon.title }}」价值{{ coupon.worth }}元"
template hello "你好" = "你好"
"""


def coupon_errors(body: str) -> list[int]:
    """The lines of the SOP202 errors about the coupon for a playbook with this `do` body."""
    text = (
        HEAD
        + "playbook p {\n    on member orders\n    do {\n"
        + textwrap.indent(body, "        ")
        + "    }\n}\n"
    )
    try:
        sopdsl.check(sopdsl.load_text(text, "case.sop"))
    except CheckError as exc:
        found = [d for d in exc.diagnostics if d.code == "SOP202" and "coupon" in d.message]
        assert len(found) == len(exc.diagnostics), [d.message for d in exc.diagnostics]
        return [d.span.line - 7 for d in found]  # lines of the body, from 1
    return []


@pytest.mark.parametrize(
    ("body", "lines"),
    [
        ("grant gift to member\nsend note to member\n", []),
        ("send note to member\ngrant gift to member\n", [1]),
        ("grant gift to member\nwait 3 days\nsend note to member\n", []),
        ("if event.amount > 100 {\n    grant gift to member\n}\nsend note to member\n", [4]),
        (
            "if event.amount > 100 {\n    grant gift to member\n} else {\n    grant gift to member\n}\n"
            "send note to member\n",
            [],
        ),
        ("if event.amount > 100 {\n    grant gift to member\n    send note to member\n}\n", []),
        ("grant gift to member\nif event.amount > 100 {\n    send note to member\n}\n", []),
        (
            "wait 3 days for member posts then {\n    grant gift to member\n} else {\n    grant gift to member\n}\n"
            "send note to member\n",
            [],
        ),
        ("wait 3 days for member posts then {\n    grant gift to member\n}\nsend note to member\n", [4]),
        (
            "split {\n    a 50% {\n        grant gift to member\n    }\n    b 50% {\n        send hello to member\n    }\n}\n"
            "send note to member\n",
            [9],
        ),
    ],
)
def test_a_coupon_is_read_only_after_its_grant_on_every_path(body: str, lines: list[int]) -> None:
    assert coupon_errors(body) == lines


def test_a_calendar_entry_does_not_see_a_grant_in_another_flow() -> None:
    text = HEAD + textwrap.dedent(
        """\
        group g1 "群" { tagged "normal" }
        playbook p {
            on member joins
            do: grant gift to member
            at 2026-03-10 09:00 for each member: send note to member
        }
        """
    )
    with pytest.raises(CheckError) as caught:
        sopdsl.check(sopdsl.load_text(text, "case.sop"))
    [problem] = caught.value.diagnostics
    assert problem.span.line == 9
    assert "no coupon is granted before this step" in problem.message
    assert "{{ coupon.title }}, {{ coupon.worth }}" in problem.message  # one error for the step
