"""The platform's limits, declared once (`platform { ... }`): located diagnostics when misused
(SOP503), templates over its attachment limit (SOP206) or WeCom's byte limits (SOP208), steps it
cannot perform warned about (SOP504), the cap analysis warning against its message limit (SOP703),
and `fmt` keeping it."""

from __future__ import annotations

import pytest
from test_staff_tasks import _without_places

import sopdsl
from sopdsl.diagnostics import Diagnostic
from sopdsl.errors import DiagnosticError
from sopdsl.plan.analysis import analyse
from sopdsl.source import Source
from sopdsl.syntax.formatter import format_source

HEAD = 'timezone "Asia/Shanghai"\n'
HEAD_GROUP = 'group hz "杭州群" { tagged "a" }\n'
PRUNE = 'playbook p {\n    in groups tagged "a"\n    on member silent for 3 days\n    do: kick member\n}\n'


def _platform(*rules: str) -> str:
    return "platform {\n" + "".join(f"    {r}\n" for r in rules) + "}\n"


def _diagnostics(text: str) -> list[tuple[str, int, int, str]]:
    with pytest.raises(DiagnosticError) as caught:
        sopdsl.check(sopdsl.load_text(HEAD + text, "a.sop"))
    return [(d.code, d.span.line, d.span.column, d.message) for d in caught.value.diagnostics]


def _warnings(text: str) -> list[Diagnostic]:
    result = sopdsl.check_program(sopdsl.load_text(HEAD + text, "a.sop"))
    assert result.program is not None
    return [*result.diagnostics, *analyse(sopdsl.compile_program(result.program))]


def test_the_message_limit_is_a_cap_of_the_policy_marked_as_the_platforms() -> None:
    text = _platform("at most 4 messages per member per month counting mass, tasks", "cannot kick") + PRUNE
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(HEAD + text, "a.sop")))
    [cap] = plan.declarations.policy.caps
    assert (cap.limit, cap.period.value, cap.channel, cap.platform, cap.tasks) == (
        4,
        "month",
        "mass",
        True,
        True,
    )
    assert (
        cap.text() == "the platform's limit of 4 messages per member per month via mass and tasks' messages"
    )
    assert plan.declarations.platform is not None and plan.declarations.platform.cannot == ("kick",)


def test_a_plan_without_a_platform_is_written_as_before() -> None:
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(HEAD + PRUNE, "a.sop")))
    assert '"platform"' not in plan.dumps() and '"tasks"' not in plan.dumps()


def test_misused_limits_are_located() -> None:
    found = _diagnostics(
        _platform(
            "at most 4 mesages per member per month",
            "at most 4 messages per member per mnth",
            "at most 0 attachments",
            "cannot kik, tag",
        )
    )
    assert [(code, line, column) for code, line, column, _ in found] == [
        ("SOP503", 3, 15),
        ("SOP503", 4, 39),
        ("SOP503", 5, 13),
        ("SOP503", 6, 12),
        ("SOP503", 6, 17),
    ]
    assert "'mesages'" in found[0][3] and "'kik'" in found[3][3]


def test_one_channel_counts_and_a_platform_is_declared_once() -> None:
    found = _diagnostics(
        _platform("at most 4 messages per member per week counting mass, promo")
        + _platform("at most 9 attachments")
    )
    assert [(code, line) for code, line, _, _ in found] == [("SOP503", 3), ("SOP114", 5)]
    assert [(c, line) for c, line, _, _ in _diagnostics(_platform("at most 12 attachments"))] == [
        ("SOP503", 3)
    ]


def test_a_template_over_the_attachment_limit_is_an_error_at_the_template() -> None:
    links = "".join(f' with link "{i}" to "https://example.com/{i}"' for i in range(3))
    found = _diagnostics(_platform("at most 2 attachments") + f'template t = "看"{links}\n')
    assert found == [("SOP206", 5, 10, "template 't' has 3 attachments; the platform allows 2")]


def test_a_kick_the_platform_cannot_do_is_warned_about_where_it_is_written() -> None:
    [warning] = _warnings(_platform("cannot kick, dissolve") + PRUNE)
    assert (warning.code, warning.span.line, warning.span.column) == ("SOP504", 8, 9)
    assert "becomes a task for the group's operator" in warning.message
    assert _warnings(PRUNE) == []


def test_the_cap_analysis_warns_against_the_platforms_limit() -> None:
    text = (
        _platform("at most 1 messages per member per week")
        + 'template t = "周报"\n'
        + 'playbook w {\n    in groups tagged "a"\n    at every monday, friday at 10:00 for each member: send t to member\n}\n'
    )
    [warning] = _warnings(text)
    assert (warning.code, warning.span.line) == ("SOP703", 3)
    assert "the platform allows 1 per week" in warning.message and "admin console" in (warning.hint or "")


def test_fmt_keeps_the_platform() -> None:
    text = HEAD + 'platform "企业微信" { at most 4 messages per member per month counting mass, tasks\n'
    text += "at most 9 attachments cannot kick, dissolve }\n" + PRUNE
    out = format_source(Source("a.sop", text))
    assert out.splitlines()[2:7] == [
        'platform "企业微信" {',
        "    at most 4 messages per member per month counting mass, tasks",
        "    at most 9 attachments",
        "    cannot kick, dissolve",
        "}",
    ]
    assert format_source(Source("a.sop", out)) == out
    plans = [sopdsl.compile_program(sopdsl.check(sopdsl.load_text(t, "a.sop"))) for t in (text, out)]
    assert _without_places(plans[0].dumps()) == _without_places(plans[1].dumps())


SEND = "playbook greet {\n    on member joins\n    do: send t to member\n}\n"


def test_a_template_over_wecoms_4000_bytes_is_an_error_at_the_template_where_a_platform_is_declared() -> None:
    over = f'template t = "{"欢" * 1334}"\n'  # 4,002 bytes in UTF-8: WeCom refuses it
    found = _diagnostics(_platform("at most 4 messages per member per month") + over + SEND)
    assert [f for f in found if f[0] != "SOP203"] == [  # SOP203: more than a phone screen, too
        (
            "SOP208",
            5,
            10,
            "template 't' is 4,002 bytes in UTF-8 (1,334 characters); WeCom takes at most 4,000",
        )
    ]
    fits = f'template t = "{"欢" * 1333}"\n'
    assert not [
        d
        for d in _warnings(_platform("at most 4 messages per member per month") + fits + SEND)
        if d.code == "SOP208"
    ]
    # Without a platform the playbooks may go out through another executor: not checked.
    assert not [d for d in _warnings(over + SEND) if d.code == "SOP208"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # A number is written in at most 24 characters: 3,984 + 24 can go over.
        ("{{ member.points }}" + "您好" * 664, "can be up to 4,008 bytes"),
        (
            "{% if member.points > 3 %}{{ member.points }}{% else %}少{% endif %}" + "您好" * 664,
            "can be up to 4,008",
        ),
        # Fixed text outside an `if` is in every rendering.
        (
            "{% if member.points > 3 %}多{% endif %}" + "您好" * 667,
            "is at least 4,002 bytes in UTF-8 before its variables",
        ),
        # A name, or a loop, has no bound: only what is sure is reported.
        ("{{ member.name }}" + "您好" * 664, None),
        ("{% for i in range(3) %}{{ i }}{% endfor %}" + "您好" * 664, None),
    ],
)
def test_a_templates_longest_rendering_is_bounded_where_its_values_are(
    body: str, expected: str | None
) -> None:
    text = _platform("at most 4 messages per member per month") + f'template t = "{body}"\n' + SEND
    result = sopdsl.check_program(sopdsl.load_text(HEAD + text, "a.sop"))
    found = [d.message for d in result.diagnostics if d.code == "SOP208"]
    if expected is None:
        assert found == []
    else:
        assert len(found) == 1 and expected in found[0] and "WeCom takes at most 4,000" in found[0]


def test_a_cards_title_over_wecoms_limit_is_an_error_at_the_template() -> None:
    card = (
        'template t = "看"\n    with miniprogram "'
        + "积分商城" * 6
        + '" appid "wx8bd80126147dfAAA" page "pages/a" cover media "MEDIA1"\n'
    )
    found = _diagnostics(_platform("at most 4 messages per member per month") + card + SEND)
    assert found == [
        ("SOP208", 5, 10, "template 't': its miniprogram title is 72 bytes in UTF-8; WeCom takes at most 64")
    ]


def _staff(text: str, platform: bool = True) -> list[tuple[str, int, int, str]]:
    rules = _platform("at most 4 messages per member per month") if platform else ""
    result = sopdsl.check_program(sopdsl.load_text(HEAD + rules + text, "a.sop"))
    assert result.program is not None, result.diagnostics
    return [(d.code, d.span.line, d.span.column, d.message) for d in result.diagnostics if d.code == "SOP208"]


def _task(text: str, message: str = "") -> str:
    return (
        'template notice = "欢迎"\n'
        f'playbook follow {{\n    on member joins\n    do: assign "{text}" to owner within 1 day{message}\n}}\n'
    )


def test_a_task_staff_would_get_cut_at_wecoms_2048_bytes_is_a_warning_at_its_text() -> None:
    # WeCom cuts an app message (message/send) at 2,048 bytes, and the task went to staff cut short
    # with "…" without a word from `sopdsl check`, which only held customer sends to 4,000.
    assert _staff(_task("请回访" * 230)) == [  # 690 characters: 2,070 bytes
        (
            "SOP208",
            8,
            16,
            "this task's text is 2,070 bytes in UTF-8; WeCom cuts an app message at 2,048, so staff get it cut short",
        )
    ]
    assert _staff(_task("请回访" * 200)) == []  # 1,800 bytes: it fits
    assert _staff(_task("请回访" * 230), platform=False) == []  # another executor may carry it
    # A number is written in at most 24 characters: the longest rendering counts.
    assert _staff(_task("{{ member.points }}" + "请" * 675)) == [
        (
            "SOP208",
            8,
            16,
            "this task's text can be up to 2,049 bytes in UTF-8 once its variables are filled in; "
            "WeCom cuts an app message at 2,048, so staff get it cut short",
        )
    ]


def test_a_task_whose_message_for_staff_makes_it_too_long_is_a_warning_at_the_message() -> None:
    text = f'template script = "{"您好" * 340}"\n' + _task("请发给客户", " with message script")
    assert _staff(text) == [
        (
            "SOP208",
            9,
            59,
            "this task's text with template 'script' is 2,055 bytes in UTF-8; WeCom cuts an app message at 2,048, so staff get it cut short",
        )
    ]


def test_a_send_to_the_operator_over_2048_bytes_is_a_warning_at_the_send_not_a_customer_send() -> None:
    long = f'template digest = "{"今日数据" * 180}"\n'  # 2,160 bytes: within 4,000, over 2,048
    to_operator = "playbook daily {\n    at every day at 21:00: send digest to operator\n}\n"
    assert _staff(HEAD_GROUP + long + to_operator) == [
        (
            "SOP208",
            8,
            33,
            "template 'digest', sent to the operator, is 2,160 bytes in UTF-8; WeCom cuts an app message at 2,048, so staff get it cut short",
        )
    ]
    assert _staff(long + SEND.replace("send t", "send digest")) == []  # to a customer: 4,000 bytes
