"""The source line a diagnostic quotes is the whole line, however many tabs its marked part holds
(a tab is four characters once printed: the rest of the line was cut by as many)."""

from __future__ import annotations

from sopdsl.diagnostics import Diagnostic, Severity, render
from sopdsl.source import Source


def test_a_marked_tab_keeps_the_rest_of_the_quoted_line() -> None:
    source = Source("f.yaml", "  - {at:\t2026-03-02 10:00, kind: join}\n")
    start = source.text.index("\t")
    span = source.span(start, start + 1)
    shown = render(Diagnostic("SOP602", Severity.ERROR, "a tab", span), source)
    quoted = shown.splitlines()[1]
    assert quoted.endswith("  - {at:    2026-03-02 10:00, kind: join}"), quoted
    caret = shown.splitlines()[2]
    assert caret.index("^") - quoted.index("{at:") == 4 and caret.count("^") == 4
