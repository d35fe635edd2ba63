"""The checker on a template's attachments and mentions: what each type takes, addresses, the
limit of nine, and where a mention may be sent (SOP206, SOP207)."""

from __future__ import annotations

from pathlib import Path

import pytest

import sopdsl
from sopdsl.errors import DiagnosticError

HEAD = 'timezone "Asia/Shanghai"\n'
JOINS = "playbook p {{\n    on member joins\n    do: send t to {target}\n}}\n"


def _diagnostics(text: str) -> list[tuple[str, int, int, str]]:
    with pytest.raises(DiagnosticError) as caught:
        sopdsl.check(sopdsl.load_text(HEAD + text, "a.sop"))
    return [(d.code, d.span.line, d.span.column, d.message) for d in caught.value.diagnostics]


def _template(text: str) -> sopdsl.Plan:
    return sopdsl.compile_program(
        sopdsl.check(sopdsl.load_text(HEAD + text + JOINS.format(target="group"), "a.sop"))
    )


def test_each_type_reaches_the_plan_with_what_it_says() -> None:
    plan = _template(
        'template t = "看这里"\n'
        '    with image media "M1"\n'
        '    with file media "F1"\n'
        '    with link "标题" to "http://example.com/a"\n'
        '    with miniprogram "商城" appid "wx1" page "pages/a" cover media "C1"\n'
        "    mentioning member\n"
    )
    template = plan.declarations.templates["t"]
    assert [a.detail() for a in template.attachments] == [
        {"type": "image", "media_id": "M1"},
        {"type": "file", "media_id": "F1"},
        {"type": "link", "title": "标题", "url": "http://example.com/a"},  # no desc nor picurl unless given
        {"type": "miniprogram", "pic_media_id": "C1", "title": "商城", "appid": "wx1", "page": "pages/a"},
    ]
    assert template.mentions == ("member",)


def test_nine_attachments_are_allowed() -> None:
    images = "".join(f'    with image media "M{i}"\n' for i in range(9))
    assert len(_template('template t = "九图"\n' + images).declarations.templates["t"].attachments) == 9


@pytest.mark.parametrize(
    ("extra", "column", "message"),
    [
        ('with image "ftp://x/a.png"', 12, "the attachment 'ftp://x/a.png' does not exist"),
        ('with link "t" to "https://"', 18, "'https://' is not an http(s) address"),
        ('with link "t" to "https://a b"', 18, "'https://a b' is not an http(s) address"),
        (
            'with link "t" to "https://a" cover media "M"',
            36,
            "a link card's cover is a picture's address, not a media id",
        ),
        ('with link "t" to "https://a" to "https://b"', 30, "`to` is given twice"),
        ('with link "" to "https://a"', 11, "the link card's title is empty"),
        ('with file media "F" cover "x"', 21, "a file attachment takes no `cover`"),
        ('with miniprogram "t" appid "wx1" page "p"', 1, "a miniprogram attachment needs `cover`"),
        ("mentioning group", 12, "cannot mention 'group'"),
    ],
)
def test_a_mistake_in_an_attachment_is_located(extra: str, column: int, message: str) -> None:
    found = _diagnostics(f'template t = "x"\n{extra}\n' + JOINS.format(target="group"))
    assert [(code, line, col) for code, line, col, _ in found] == [
        ("SOP206" if "exist" not in message else "SOP001", 3, column)
    ]
    assert found[0][3] == message


def test_a_template_with_a_broken_attachment_is_not_reported_again_where_it_is_sent() -> None:
    found = _diagnostics('template t = "x" with imag media "M"\n' + JOINS.format(target="member"))
    assert [code for code, *_ in found] == ["SOP206"]


def test_a_mention_goes_only_to_a_group_from_a_place_with_a_member() -> None:
    template = 'template t = "欢迎" mentioning member\n'
    assert _diagnostics(template + JOINS.format(target="operator"))[0][:3] == ("SOP207", 5, 9)
    sopdsl.check(sopdsl.load_text(HEAD + template + JOINS.format(target="group"), "a.sop"))
    each = "calendar c = every monday at 10:00\nplaybook q {\n    at c for each member: send t to group\n}\n"
    sopdsl.check(sopdsl.load_text(HEAD + template + each, "a.sop"))


def test_fmt_keeps_what_the_checker_reads(tmp_path: Path) -> None:
    from sopdsl.source import Source
    from sopdsl.syntax.formatter import format_source

    (tmp_path / "a.png").write_bytes(b"PNG")
    text = (
        HEAD
        + 'template t = "x" with image "a.png" with link "t" to "https://a" description "d" mentioning member\n'
    )
    formatted = format_source(Source(str(tmp_path / "a.sop"), text + JOINS.format(target="group")))
    before = sopdsl.compile_program(
        sopdsl.check(sopdsl.load_text(text + JOINS.format(target="group"), str(tmp_path / "a.sop")))
    )
    after = sopdsl.compile_program(sopdsl.check(sopdsl.load_text(formatted, str(tmp_path / "a.sop"))))
    assert after.declarations.templates["t"].attachments == before.declarations.templates["t"].attachments
    assert after.declarations.templates["t"].mentions == ("member",)


def test_the_checker_knows_every_attachment_type_and_no_other() -> None:
    from sopdsl.checker.attachments import _EXAMPLES, _TAKES
    from sopdsl.enums import ATTACHMENT_FILE_MEDIA, ATTACHMENT_TYPES

    assert set(_TAKES) == set(_EXAMPLES) == set(ATTACHMENT_TYPES)
    assert set(ATTACHMENT_FILE_MEDIA) <= set(ATTACHMENT_TYPES)


@pytest.mark.parametrize("given", [{}, {"path": "a.png", "media_id": "M1"}])
def test_an_attachment_has_a_path_or_a_media_id_not_both_nor_neither(given: dict[str, str]) -> None:
    from pydantic import ValidationError

    from sopdsl.lang import ImageAttachment

    with pytest.raises(ValidationError, match="exactly one"):
        ImageAttachment(**given)  # type: ignore[arg-type]  # deliberately no or both sources: refused
