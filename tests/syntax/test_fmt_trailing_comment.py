"""`sopdsl fmt` keeps a comment at the end of a one-line block (`if … { stop }  # 注释`) on the
line it was on, the line that opens the block, not after the `}` it puts on a line of its own;
the output is stable, keeps its meaning and every comment (held as `test_formatter.py` holds
every input)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from click.testing import CliRunner

from sopdsl.cli import main
from sopdsl.source import Source
from sopdsl.syntax.formatter import format_file, format_source
from sopdsl.syntax.parser import parse

HEAD = 'timezone "Asia/Shanghai"\ntemplate hi = "欢迎"\n'


def fmt(text: str) -> str:
    """Format `text`, hold it to fmt's properties (stable, comments kept), and return it."""
    out = format_source(Source("case.sop", text))
    assert format_source(Source("case.sop", out)) == out  # fmt twice = fmt once
    assert Counter(c.text for c in parse(Source("case.sop", out)).comments) == Counter(
        c.text for c in parse(Source("case.sop", text)).comments
    )
    return out


def steps(body: str) -> str:
    """`body` as the steps of a playbook's `do`, formatted, with the text around them cut off."""
    out = fmt(HEAD + "playbook p {\n    on member joins\n    do {\n" + body + "    }\n}\n")
    return out.split("    do {\n", 1)[1].rsplit("    }\n}\n", 1)[0]


def test_a_comment_after_a_one_line_block_stays_on_the_line_that_opens_it() -> None:
    assert steps('        if member tagged "vip" { stop }  # 注释\n        send hi to member\n') == (
        '        if member tagged "vip" {  # 注释\n            stop\n        }\n        send hi to member\n'
    )


def test_a_one_line_if_else_keeps_its_comment_on_its_first_line() -> None:
    assert steps('        if member tagged "a" { send hi to member } else { stop }  # 二\n') == (
        '        if member tagged "a" {  # 二\n'
        "            send hi to member\n"
        "        } else {\n"
        "            stop\n"
        "        }\n"
    )
    # Only the `else` on one line: the comment stays on the `} else {` line.
    assert steps('        if member tagged "a" {\n            stop\n        } else { stop }  # 三\n') == (
        '        if member tagged "a" {\n'
        "            stop\n"
        "        } else {  # 三\n"
        "            stop\n"
        "        }\n"
    )


def test_waits_splits_and_arms_on_one_line_keep_their_comments() -> None:
    body = (
        "        wait 1 day for member posts then { stop } else { send hi to member }  # 等\n"
        "        split {\n"
        "            red 50% { stop }  # 红\n"
        "            blue 50%: stop\n"
        "        }\n"
    )
    out = steps(body)
    assert "        wait 1 day for member posts then {  # 等\n" in out
    assert "            red 50% {  # 红\n" in out
    assert out.count("}  #") == 0  # no comment after a closing brace


def test_declarations_and_entries_on_one_line_keep_their_comments() -> None:
    text = (
        HEAD + "policy { quiet hours 22:00 - 08:00 }  # 策略\n"
        "playbook p { on member joins do: send hi to member }  # 剧本\n"
        "playbook q {\n"
        '    at every day at 11:00: if member tagged "a" { stop }  # 日历\n'
        "    do { send hi to member }  # 做\n"
        "}\n"
    )
    out = fmt(text)
    assert "policy {  # 策略\n" in out
    assert "playbook p {  # 剧本\n" in out
    assert '    at every day at 11:00: if member tagged "a" {  # 日历\n' in out
    assert "    do {  # 做\n" in out
    assert "}  #" not in out


def test_a_comment_after_a_closing_brace_on_its_own_line_stays_there() -> None:
    # The `}` opened on another line: the line the comment was on is the `}`'s.
    body = '        if member tagged "a" {\n            stop\n        }  # 结束\n'
    assert steps(body) == body
    # A comment after a field on the line a block opens on stays with the field.
    assert (
        fmt("event e { a: text, # 金额\n b: text }\n") == "event e {\n    a: text,  # 金额\n    b: text\n}\n"
    )


def test_without_the_source_text_the_comment_stays_on_its_line_too() -> None:
    text = (
        HEAD
        + 'playbook p {\n    on member joins\n    do {\n        if member tagged "v" { stop }  # 注\n    }\n}\n'
    )
    assert '        if member tagged "v" {  # 注\n' in format_file(parse(Source("case.sop", text)))


def test_fmt_on_a_file_then_check_says_nothing_is_left(tmp_path: Path) -> None:
    path = tmp_path / "p.sop"
    path.write_text(
        HEAD + 'playbook p { on member joins do { if member tagged "v" { stop }  # 注\n} }\n', "utf-8"
    )
    runner = CliRunner()
    assert runner.invoke(main, ["fmt", str(path)]).exit_code == 0
    assert '        if member tagged "v" {  # 注\n' in path.read_text("utf-8")
    assert runner.invoke(main, ["fmt", "--check", str(path)]).exit_code == 0
