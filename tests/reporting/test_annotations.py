"""GitHub workflow commands: one per diagnostic, escaped so the runner reads back exactly the
message and properties (its toolkit unescapes `%25`, `%0D`, `%0A`, and in properties `%3A`, `%2C`)."""

from __future__ import annotations

import re
from pathlib import Path

from sopdsl.diagnostics import Diagnostic, Severity
from sopdsl.reporting.annotations import escape_data, escape_property, workflow_commands
from sopdsl.source import Span

# How the Actions runner splits a command line: `::name props::message`, props split on commas,
# each `key=value` split on its first `=`.
_COMMAND = re.compile(r"^::(?P<name>[a-z]+) (?P<props>[^:]*)::(?P<data>.*)$")


def unescape(text: str, *, property: bool = False) -> str:
    """The runner's unescaping (actions/runner ActionCommand.Unescape), in its order."""
    pairs = (
        [("%0D", "\r"), ("%0A", "\n")] + ([("%3A", ":"), ("%2C", ",")] if property else []) + [("%25", "%")]
    )
    for escaped, plain in pairs:
        text = text.replace(escaped, plain)
    return text


def parse(line: str) -> tuple[str, dict[str, str], str]:
    match = _COMMAND.match(line)
    assert match, line
    props = dict(item.split("=", 1) for item in match["props"].split(","))
    return match["name"], {k: unescape(v, property=True) for k, v in props.items()}, unescape(match["data"])


def test_a_message_and_a_path_with_every_special_character_read_back_exactly(tmp_path: Path) -> None:
    path = tmp_path / "50%, a:b" / "欢迎.sop"
    message = "100% sure:\r\nline two, with %0A literally"
    span = Span(str(path), 0, 3, 2, 4, 2, 7)
    [line] = workflow_commands([Diagnostic("SOP104", Severity.ERROR, message, span, "fix it")], tmp_path)
    assert "\n" not in line and "\r" not in line
    name, props, data = parse(line)
    assert name == "error"
    assert props == {
        "file": "50%, a:b/欢迎.sop",
        "line": "2",
        "col": "4",
        "endColumn": "7",
        "title": "SOP104",
    }
    assert data == message + "\nhint: fix it"


def test_a_warning_over_several_lines_ends_by_line_not_column(tmp_path: Path) -> None:
    span = Span(str(tmp_path / "a.sop"), 0, 40, 3, 5, 6, 2)
    [line] = workflow_commands([Diagnostic("SOP501", Severity.WARNING, "w", span)], tmp_path)
    name, props, data = parse(line)
    assert (name, data) == ("warning", "w")
    assert props == {"file": "a.sop", "line": "3", "col": "5", "endLine": "6", "title": "SOP501"}


def test_escapes() -> None:
    assert escape_data("a%b\r\nc:d,e") == "a%25b%0D%0Ac:d,e"
    assert escape_property("a%b\r\nc:d,e") == "a%25b%0D%0Ac%3Ad%2Ce"
