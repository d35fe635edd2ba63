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


def test_every_word_of_the_grammar_is_offered() -> None:
    """Read with Lark's own loader, independently of how `keywords` reads the parser: every
    terminal of the grammar that is a plain word, so a keyword added later cannot be missed."""
    import re

    from lark import Lark
    from lark.lexer import PatternStr

    from sopdsl.syntax.parser import grammar_text

    parser = Lark(grammar_text(), parser="lalr", lexer="contextual")
    words = {
        t.pattern.value
        for t in parser.terminals
        if isinstance(t.pattern, PatternStr) and re.fullmatch(r"[^\W\d]\w*", t.pattern.value)
    }
    assert len(words) > 100  # the grammar's words were found at all
    assert sorted(words - set(keywords())) == []


def test_every_closed_vocabulary_is_offered() -> None:
    """The words the grammar takes as a NAME and the checker holds to a closed set."""
    from sopdsl.vocabulary import WORDS

    offered = set(keywords())
    for name, vocabulary in WORDS.items():
        missing = [w for word in vocabulary for w in word.split() if w not in offered]
        assert missing == [], name


@pytest.mark.parametrize(
    "construct",
    [
        "set member.points = member.points + 10",
        "draw 3 winners from members stock 5 per week",
        'goal "下单" = member orders within 7 days',
        "split { control 20% }",
        'assign "跟进" to owner within 1 hours with message apology',
        "every monday at 20:00",
        "when messages in last 7 days >= 5",
        "wait 3 天",
        'with image "a.png" mentioning member',
        "platform { at most 1 messages per member per month counting tasks cannot kick, dissolve }",
        "apply to new members missed run latest on change migrate",
        "at most 3 sends per member per day else defer",
    ],
)
def test_the_words_of_newer_constructs_are_offered(construct: str) -> None:
    import re

    written = re.findall(r"[^\W\d]\w*", re.sub(r'"[^"]*"', "", construct))
    declared = {"member", "points", "apology", "winners"} - set(keywords())  # names, not words
    assert [w for w in written if w not in keywords() and w not in declared] == []


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
