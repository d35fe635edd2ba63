"""The parser: text to syntax tree, with keyword word boundaries, Chinese names, spans on every
node, text-block dedent, string escapes and comments collected for the formatter."""

from __future__ import annotations

import pytest

from sopdsl.errors import ParseError
from sopdsl.source import Source, Span
from sopdsl.syntax import nodes
from sopdsl.syntax.parser import parse

ZONE = 'timezone "Asia/Shanghai"\n'


def parsed(text: str) -> nodes.File:
    return parse(Source("t.sop", text))


def parse_error(text: str) -> tuple[str, str, int, int]:
    with pytest.raises(ParseError) as caught:
        parsed(text)
    (diagnostic,) = caught.value.diagnostics
    return diagnostic.code, diagnostic.message, diagnostic.span.line, diagnostic.span.column


def playbook(text: str) -> nodes.PlaybookDecl:
    (decl,) = parsed(text).declarations
    assert isinstance(decl, nodes.PlaybookDecl)
    return decl


def steps(text: str) -> tuple[nodes.Step, ...]:
    do = next(i for i in playbook(text).items if isinstance(i, nodes.DoSetting))
    return do.steps


def text_at(source: str, span: Span) -> str:
    return source[span.start : span.end]


# ---- keywords and names --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tagvip", "sendx", "member_count", "onboarding", "at_home", "do2", "if_"])
def test_a_keyword_prefix_does_not_split_a_name(name: str) -> None:
    (decl,) = parsed(f'template {name} = "x"').declarations
    assert isinstance(decl, nodes.TemplateDecl)
    assert decl.name.text == name


def test_tagvip_is_one_name_where_tag_could_start_a_step() -> None:
    # In a `do` block `tag` starts a step; `tagvip` must still be one (unexpected) name.
    code, message, line, column = parse_error("playbook p { on member joins do { tagvip member } }")
    assert (code, message, line, column) == ("SOP100", "unexpected name 'tagvip'", 1, 35)


def test_keyword_glued_to_the_next_word_is_an_error() -> None:
    code, message, line, column = parse_error("playbook p { on member joins do: send x tomember }")
    assert (code, message, line, column) == ("SOP100", "unexpected name 'tomember'", 1, 41)


def hint_of(text: str) -> str | None:
    with pytest.raises(ParseError) as caught:
        parsed(text)
    (diagnostic,) = caught.value.diagnostics
    return diagnostic.hint


@pytest.mark.parametrize(
    ("step", "declare"),
    [
        ('send "欢迎！" to member', "template welcome"),
        ('send """欢迎！""" to member', "template welcome"),
        ('send  # 欢迎语\n "欢迎！" to member', "template welcome"),  # the keyword read, not the text before
        ('grant "¥50券" to member', "coupon gift_50"),
        ('assign "跟进" to owner within 1 day with message "记得回访"', "template follow_up"),
    ],
)
def test_text_where_a_declared_name_goes_says_what_to_declare(step: str, declare: str) -> None:
    # What ops write first: the text itself where the language wants the name of a declaration.
    hint = hint_of(f"playbook p {{ on member joins do {{ {step} }} }}")
    assert hint is not None and declare in hint


def test_a_bare_word_where_text_goes_is_told_to_quote_it() -> None:
    assert (
        hint_of("playbook p { on member joins do { tag member vip } }") == 'text goes in quotes here: "vip"'
    )


def test_other_unexpected_text_keeps_the_grammar_s_expectations() -> None:
    # `when` takes a condition: text there is no name of a declaration, so no such hint.
    hint = hint_of('playbook p { on member joins when "x" do: send x to member }')
    assert hint is not None and hint.startswith("expected ")


def test_keywords_are_lower_case() -> None:
    code, _, _, _ = parse_error('Template t = "x"')
    assert code == "SOP100"


def test_chinese_names() -> None:
    text = (
        'template 欢迎语 "入群欢迎" = "欢迎"\n'
        "playbook 新人欢迎 { on member joins do: send 欢迎语 to member }\n"
        "calendar 周二晚课 = every 周二 at 20:00\n"
    )
    template, book, calendar = parsed(text).declarations
    assert isinstance(template, nodes.TemplateDecl) and template.name.text == "欢迎语"
    assert template.title is not None and template.title.value == "入群欢迎"
    assert isinstance(book, nodes.PlaybookDecl) and book.name.text == "新人欢迎"
    (send,) = next(i for i in book.items if isinstance(i, nodes.DoSetting)).steps
    assert isinstance(send, nodes.Send) and send.template.text == "欢迎语"
    assert isinstance(calendar, nodes.CalendarDecl)
    assert isinstance(calendar.spec, nodes.CalWeekly)
    assert [d.text for d in calendar.spec.days] == ["周二"]


def test_a_name_cannot_start_with_a_digit() -> None:
    assert parse_error('template 1st = "x"')[0] == "SOP100"


def test_member_dot_field_is_a_reference_but_a_longer_word_is_not() -> None:
    (step,) = steps("playbook p { on member joins do: set member.level = member.points }")
    assert isinstance(step, nodes.SetStep)
    assert step.attr.root is nodes.Root.MEMBER and step.attr.field.text == "level"
    assert isinstance(step.value, nodes.AttrRef) and step.value.field.text == "points"
    assert parse_error("playbook p { on member joins do: set members.level = 1 }")[0] == "SOP100"


# ---- spans ---------------------------------------------------------------------------------------


def test_spans_give_line_and_column_of_each_node() -> None:
    text = (
        ZONE + "playbook welcome {\n    on member joins\n    do {\n        send 欢迎语 to member\n    }\n}\n"
    )
    book = playbook(text.removeprefix(ZONE))
    assert (book.span.line, book.span.column, book.span.end_line, book.span.end_column) == (1, 1, 6, 2)
    assert (book.name.span.line, book.name.span.column) == (1, 10)
    (send,) = steps(text.removeprefix(ZONE))
    assert isinstance(send, nodes.Send)
    assert (send.span.line, send.span.column, send.span.end_line, send.span.end_column) == (4, 9, 4, 27)
    # Columns count characters, not bytes or terminal columns: 欢迎语 is three.
    assert (send.template.span.column, send.template.span.end_column) == (14, 17)


def test_spans_index_the_source_text() -> None:
    text = ZONE + 'template 欢迎语 "入群欢迎" = "欢迎 {{ member.name }}"\n'
    (_, template) = parsed(text).declarations
    assert isinstance(template, nodes.TemplateDecl)
    assert text_at(text, template.name.span) == "欢迎语"
    assert text_at(text, template.body.span) == '"欢迎 {{ member.name }}"'
    assert text_at(text, template.span) == text.removeprefix(ZONE).rstrip("\n")
    assert template.span.path == "t.sop"


def test_spans_after_crlf_line_endings_and_tabs() -> None:
    text = "playbook p {\r\n\ton member joins\r\n\tdo: send hi to member\r\n}\r\n"
    (send,) = steps(text)
    assert (send.span.line, send.span.column) == (3, 6)
    assert text_at(text, send.span) == "send hi to member"


def test_every_node_has_a_span_inside_the_source() -> None:
    text = (
        ZONE
        + 'coupon new50 "新人券" worth 50 valid for 7 days stock 100\n'
        + "calendar c = every monday, 周三 at 20:00, 21:30 from 2026-01-01 until 2026-12-31\n"
        + 'playbook p "标题" {\n  scenario J1, J2\n  in groups tagged "a"\n  on member joins\n'
        + '  when not (member.level >= 3 or member tagged "vip") and member.region in ["华东", "华南"]\n'
        + '  do {\n    wait 3 days for member posts then { tag member "x" } else { kick member }\n'
        + '    if member.name starts with "A" { stop } else if group tagged "b" { add 1 to member.points }\n'
        + "    split { a 50% { grant new50 to member } b 50%: call crm(level = -1) }\n  }\n"
        + '  at c - 1 day at 10:00 for each member when member tagged "x": send hi to member\n}\n'
    )
    file = parsed(text)
    count = 0
    stack: list[object] = [file]
    while stack:
        node = stack.pop()
        if isinstance(node, tuple):
            stack.extend(node)
            continue
        span = getattr(node, "span", None)
        if isinstance(span, Span):
            count += 1
            assert 0 <= span.start <= span.end <= len(text), node
            assert (span.line, span.column) <= (span.end_line, span.end_column), node
        if hasattr(node, "__slots__"):
            stack.extend(getattr(node, slot) for slot in node.__slots__ if slot != "span")
    assert count > 60


# ---- strings -------------------------------------------------------------------------------------


def template_body(text: str) -> nodes.Str:
    (decl,) = parsed(text).declarations
    assert isinstance(decl, nodes.TemplateDecl)
    return decl.body


def test_a_text_block_loses_its_first_newline_and_common_indentation() -> None:
    body = template_body(
        'template t = """\n    {{ member.name }}，欢迎！\n      群规：\n    - 不发广告\n    """'
    )
    assert body.long
    assert body.value == "{{ member.name }}，欢迎！\n  群规：\n- 不发广告"


def test_a_text_block_keeps_blank_lines_inside_it() -> None:
    assert template_body('template t = """\n    a\n\n    b\n    """').value == "a\n\nb"


def test_a_text_block_on_one_line() -> None:
    assert template_body('template t = """欢迎"""').value == "欢迎"


def test_a_text_block_may_hold_quotes_and_hashes() -> None:
    assert template_body('template t = """\n  "引号" # 不是注释\n  """').value == '"引号" # 不是注释'


def test_string_escapes() -> None:
    assert template_body(r'template t = "a\"b\\c\nd"').value == 'a"b\\c\nd'


def test_a_string_cannot_span_lines() -> None:
    code, message, line, column = parse_error('template t = "a\nb"')
    assert (code, message, line, column) == ("SOP101", "unterminated string", 1, 14)


# ---- comments ------------------------------------------------------------------------------------


def test_comments_are_collected_with_their_spans() -> None:
    text = '# 文件说明\ntimezone "Asia/Shanghai"  # 时区\n\n# 最后一行'
    comments = parsed(text).comments
    assert [c.text for c in comments] == ["# 文件说明", "# 时区", "# 最后一行"]
    assert [(c.span.line, c.span.column) for c in comments] == [(1, 1), (2, 27), (4, 1)]
    assert all(text_at(text, c.span) == c.text for c in comments)


def test_a_hash_inside_a_string_is_not_a_comment() -> None:
    text = 'template t = "第 #1 名" # real\ntemplate u = """\n  # 标题\n  """\n'
    assert [c.text for c in parsed(text).comments] == ["# real"]


def test_a_file_of_only_comments_parses_to_no_declarations() -> None:
    file = parsed("# 一\n# 二\n")
    assert file.declarations == ()
    assert len(file.comments) == 2


def test_an_empty_file_parses() -> None:
    assert parsed("").declarations == ()


# ---- errors are diagnostics ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code", "line", "column"),
    [
        # A missing `}` points at the `{` left open (the playbook's), not at the end of the file.
        ('template t = "x"\nplaybook p { on member joins do { send t to member }', "SOP102", 2, 12),
        ("playbook p { scenario J1，J2 }", "SOP101", 1, 25),
        ("template t = “x”", "SOP101", 1, 14),
        ("playbook p { on member joins do: send t member }", "SOP100", 1, 41),
        ("timezone", "SOP102", 1, 9),
        ("@", "SOP101", 1, 1),
    ],
)
def test_parse_errors_are_located_diagnostics(text: str, code: str, line: int, column: int) -> None:
    found, _, found_line, found_column = parse_error(text)
    assert (found, found_line, found_column) == (code, line, column)


@pytest.mark.parametrize("opening", ["do {", "do: {"])
def test_a_block_may_follow_a_colon_too(opening: str) -> None:
    """`at X: send ...` has a one-step form, so `at X: { ... }` and `do: { ... }` read naturally."""
    text = f"playbook p {{\n    on member joins\n    {opening}\n        send a to member\n        kick member\n    }}\n}}\n"
    assert [type(s).__name__ for s in steps(text)] == ["Send", "Kick"]


def test_every_rule_of_the_grammar_has_a_builder() -> None:
    # A rule added to the grammar (a new action, say) whose node forgets to register its builder
    # would crash the transformer on the first file that uses it; this names it at once instead.
    from sopdsl.syntax.parser import lark_parser
    from sopdsl.syntax.transformer import RULES

    named = {str(rule.alias or rule.origin.name) for rule in lark_parser().rules}
    inlined = {name for name in named if name.startswith("_") or name == "start"}  # Lark's, or `file_node`
    assert named - inlined - set(RULES) == set()
    assert "draw" in RULES and "dissolve" in RULES  # the action nodes' own builders are merged in


@pytest.mark.parametrize(
    ("text", "char", "column"),
    [
        ("policy { quiet hours 22：00 - 08:00 }", "：", 24),  # the lexer took 22 as a number first
        ('playbook p { in groups tagged "a"、"b" on member joins do: send t to member }', "、", 34),
        ("policy { quiet hours 22:00 — 08:00 }", "—", 28),
        ("policy { quiet hours 22:00 － 08:00 }", "－", 28),
    ],
)
def test_a_full_width_character_an_input_method_typed_is_named(text: str, char: str, column: int) -> None:
    code, message, line, found = parse_error(text)
    assert (code, line, found) == ("SOP101", 1, column)
    assert message.startswith(f"full-width character '{char}' where the language expects")


@pytest.mark.parametrize(
    ("text", "column", "message", "hint"),
    [
        # A Chinese input method in full-width mode types U+3000 for the space bar.
        (
            "policy {\u3000at most 3 sends per member per day }",
            9,
            "full-width space (U+3000) where the language expects an ordinary space",
            "switch the input method to half-width",
        ),
        (
            "policy { at most 3\u3000sends per member per day }",
            19,
            "full-width space (U+3000) where the language expects an ordinary space",
            "switch the input method to half-width",
        ),
        # Pasted from a web page or a chat.
        (
            "policy { at most 3\u00a0sends per member per day }",
            19,
            "no-break space (U+00A0) where the language expects an ordinary space",
            "type an ordinary space instead",
        ),
        (
            "policy { at most 3\u2003sends per member per day }",
            19,
            "space of another kind (U+2003) where the language expects an ordinary space",
            "type an ordinary space instead",
        ),
        (
            "policy {\u200b at most 3 sends per member per day }",
            9,
            "invisible zero-width space (U+200B)",
            "delete it",
        ),
        ("policy {\x07 at most 3 sends per member per day }", 9, "invisible character (U+0007)", "delete it"),
    ],
)
def test_a_space_that_is_not_an_ordinary_one_is_named_in_words(
    text: str, column: int, message: str, hint: str
) -> None:
    with pytest.raises(ParseError) as caught:
        parsed(text)
    (diagnostic,) = caught.value.diagnostics
    assert (diagnostic.code, diagnostic.span.line, diagnostic.span.column) == ("SOP101", 1, column)
    assert diagnostic.message.startswith(message)
    assert (
        "\\u" not in diagnostic.message and "\\x" not in diagnostic.message and "''" not in diagnostic.message
    )
    assert hint in (diagnostic.hint or "")
