"""The two parse paths agree: the private LALR driver and Lark's own parser with inline builders.

The driver is kept because it is over twice as fast (bench/frontend.py --parser driver|lark), so
every tree it builds must equal Lark's, node for node and span for span, and every diagnostic
must be the same, on every corpus file and on generated programs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from test_no_crash import PLAYBOOKS, PROGRAMS, SOUP, TEXT, _mutated, _nested

from sopdsl.errors import ParseError
from sopdsl.source import Source
from sopdsl.syntax import nodes
from sopdsl.syntax.lark_lalr import _parse_reference
from sopdsl.syntax.parser import PARSERS, default_parser, parse

ROOT = Path(__file__).resolve().parent.parent.parent
ZONE = 'timezone "Asia/Shanghai"\n'
CORPUS = sorted(
    {*ROOT.glob("playbooks/**/*.sop"), *ROOT.glob("tests/**/*.sop"), *ROOT.glob("examples/**/*.sop")}
)
SAME = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def outcome(text: str, via: str | None) -> nodes.File | list[object]:
    """The tree a path gives, or its diagnostics (code, message, span, hint)."""
    source = Source("same.sop", text)
    try:
        return parse(source, via) if via else _parse_reference(source)
    except ParseError as exc:
        return [(d.code, d.message, d.span, d.hint) for d in exc.diagnostics]


def assert_same(text: str) -> nodes.File | list[object]:
    driver = outcome(text, "driver")
    assert driver == outcome(text, "lark")
    assert driver == outcome(text, None)  # Lark's plain tree, then the transformer
    return driver


def test_the_corpus_is_all_there() -> None:
    assert len(CORPUS) > 100
    assert any(p.parent.name == "playbooks" for p in CORPUS)


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_corpus_file_gives_equal_trees(path: Path) -> None:
    assert_same(path.read_bytes().decode("utf-8", errors="replace"))


@pytest.mark.parametrize("kind", ["realistic", "dense"])
def test_the_benchmark_files_give_equal_trees(kind: str) -> None:
    sys.path.insert(0, str(ROOT))
    try:
        from bench.frontend import generate
    finally:
        sys.path.remove(str(ROOT))
    text, _ = generate(kind, 100_000)
    assert isinstance(assert_same(text), nodes.File)


@SAME
@given(PROGRAMS)
def test_grammar_shaped_programs_give_equal_trees(text: str) -> None:
    assert_same(text)


@SAME
@given(PLAYBOOKS)
def test_grammar_shaped_playbooks_give_equal_trees(text: str) -> None:
    assert_same(text)


@SAME
@given(SOUP)
def test_token_soup_gives_equal_diagnostics(text: str) -> None:
    assert_same(text)


@SAME
@given(TEXT)
def test_random_text_gives_equal_diagnostics(text: str) -> None:
    assert_same(text)


@SAME
@given(_mutated())
def test_edited_real_playbooks_give_equal_results(text: str) -> None:
    assert_same(text)


@pytest.mark.parametrize("kind", [k for k, _ in _nested(0)])
def test_nesting_too_deep_is_reported_alike(kind: str) -> None:
    body = dict(_nested(1_000))[kind]
    text = ZONE + 'template hi = "hi"\nplaybook p { on member joins ' + body + " }\n"
    result = assert_same(text)
    if kind != "parentheses":  # parentheses add no tree level: those parse
        assert isinstance(result, list)
        assert result[0][0] in {"SOP102", "SOP103"}  # type: ignore[index]


def test_nesting_just_shallow_enough_parses_alike() -> None:
    body = dict(_nested(40))["if"]
    text = ZONE + 'template hi = "hi"\nplaybook p { on member joins ' + body + " }\n"
    assert isinstance(assert_same(text), nodes.File)


def test_the_environment_chooses_the_path(monkeypatch: pytest.MonkeyPatch) -> None:
    assert PARSERS == ("driver", "lark")
    monkeypatch.delenv("SOPDSL_PARSER", raising=False)
    assert default_parser() == "driver"
    monkeypatch.setenv("SOPDSL_PARSER", "lark")
    assert default_parser() == "lark"
    monkeypatch.setenv("SOPDSL_PARSER", "nonsense")
    assert default_parser() == "driver"
