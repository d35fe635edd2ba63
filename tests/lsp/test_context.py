"""Reading what kind of name a line wants at its end (`sopdsl.lsp.context`)."""

from __future__ import annotations

import pytest

from sopdsl.lsp.context import Wanted, in_text, keywords, wanted


@pytest.mark.parametrize(
    ("line", "partial", "kind"),
    [
        ("        send ", "", "template"),
        ("        send ", "欢", "template"),
        ("    do: send ", "we", "template"),
        ("        grant ", "n", "coupon"),
        ("    when coupon ", "", "coupon"),
        ("    at ", "", "calendar"),
        ("    on event ", "", "event"),
        ("        call ", "", "action"),
        ("        invite member to ", "", "group"),
        ("    in groups ", "", "group"),
        ("    in groups a, b, ", "骑", "group"),
        ('    in groups tagged "', "", "tag"),
        ('    when member not tagged "core", "', "k", "tag"),
        ('        tag member "', "vi", "tag"),
        ('    on member is untagged "', "", "tag"),
        ('    when group tagged any of "a", "', "", "tag"),
        ('group g { tagged "', "", "tag"),
        ("        ", "", "keyword"),
        ("        ", "se", "keyword"),
        ("    when member.", "", "member field"),
        ("    when referrer.", "po", "member field"),
        ("        add 1 to member.", "", "member field"),
        ("    when group.", "si", "group field"),
    ],
)
def test_the_kind_of_name_a_place_wants(line: str, partial: str, kind: str) -> None:
    # What is typed so far (`partial`) is what a completion replaces.
    assert wanted(line + partial) == Wanted(kind, len(line))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "before",
    [
        "coupon ",  # declaring a new coupon: no name to offer
        "template we",
        "calendar ",
        "    # send ",  # a comment
        '        send x to member because "太吵了 ',  # a string that is no tag
        '    version "1.',
        "    every monday at ",
    ],
)
def test_places_that_want_no_name(before: str) -> None:
    found = wanted(before)
    assert found is None or found.kind == "keyword"
    if before.startswith(("coupon", "template", "calendar")) or "#" in before or '"' in before:
        assert found is None


def test_a_quote_inside_a_string_does_not_confuse_the_reading() -> None:
    line = r'        kick member because "说了 \"广告\" 和 #号" '
    assert wanted(line) == Wanted("keyword", len(line))
    line = r'    when member tagged "a\"b", "'
    assert wanted(line) == Wanted("tag", len(line))


def test_keywords_are_the_languages_words() -> None:
    words = keywords()
    assert {"playbook", "send", "tagged", "wait", "timezone", "include"} <= set(words)
    assert "NAME" not in words and "" not in words


def test_text_blocks_and_comments_over_several_lines() -> None:
    block = 'template t = """\n    欢迎加入，请 se'
    assert wanted(block) is None
    assert in_text(block)
    closed = 'template t = """\n    "引号" 和 # 井号\n    """\nplaybook p { on member joins do { send '
    assert wanted(closed) == Wanted("template", len(closed.splitlines()[-1]))
    assert not in_text(closed)
    commented = '# 注释里的 """ 不开文本块\nplaybook p { on member joins do { send '
    assert wanted(commented) == Wanted("template", len(commented.splitlines()[-1]))
    tags = 'group g {\n    tagged "a",\n        "'
    assert wanted(tags) == Wanted("tag", 9)
