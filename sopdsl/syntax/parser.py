"""Text to syntax tree: where both parse paths start.

Input: a `Source`. Output: a `nodes.File`, or a `ParseError` carrying diagnostics. Nothing
downstream ever sees `lark` types.

Two paths give the same result (`PARSERS`). The private driver (`sopdsl.syntax.driver`) runs
Lark's LALR tables and contextual lexer in one loop; it is the default because it is over twice
as fast on large files, and because it reads its tables from a cache file, a valid file parses
without importing Lark at all (start-up: bench/startup.py). It stops at the first thing out of
the ordinary (a syntax error, a tree nested too deep), and Lark's own LALR parser
(`sopdsl.syntax.lark_lalr`, imported only then) parses the same text, so every diagnostic comes
from Lark.
"""

from __future__ import annotations

import functools
import os
import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from sopdsl.gcpause import paused_gc

if TYPE_CHECKING:
    from lark import Lark

    from sopdsl.source import Source
    from sopdsl.syntax import nodes as n

# Deeper nesting than this is surely a mistake, and later stages recurse over the tree.
MAX_DEPTH = 120

# Keywords are made to end at a word boundary (`lark_lalr._word_boundary`); the driver reads
# them back by the same marks.
_KEYWORD = re.compile(r"[a-z_]+")
_BOUNDARY = r"(?!\w)"
_KEYWORD_PRIORITY = 2

# The two ways to parse: the private driver over Lark's tables ("driver", the default, over
# twice as fast on large files: see bench/frontend.py --parser) and Lark's own LALR parser with
# the node builders run inline ("lark"). `SOPDSL_PARSER` chooses; both give equal trees and
# diagnostics (tests/syntax/test_parser_paths.py).
PARSERS = ("driver", "lark")


def default_parser() -> str:
    """The path `parse` takes when not told: $SOPDSL_PARSER if it names one, else the driver."""
    chosen = os.environ.get("SOPDSL_PARSER", "")
    return chosen if chosen in PARSERS else "driver"


@paused_gc
def parse(source: Source, via: str | None = None) -> n.File:
    """Parse one source into a syntax tree; raise `ParseError` with located diagnostics.

    `via` picks the path ("driver" or "lark", see `PARSERS`); by default `default_parser()`.
    """
    if (via or default_parser()) == "driver":
        from sopdsl.syntax.driver import Fallback, fast_parser

        fast = fast_parser()
        if fast is not None:
            try:
                return fast.parse(source.path, source.text)
            except Fallback:
                pass
    return parse_lark(source)


def parse_lark(source: Source) -> n.File:
    """Parse with Lark's own LALR parser, the node builders run inline as Lark reduces each rule."""
    from sopdsl.syntax import lark_lalr

    return lark_lalr.parse_lark(source)


def lark_parser() -> Lark:
    """The Lark LALR parser for the playbook grammar (building trees), built once per process."""
    from sopdsl.syntax import lark_lalr

    return lark_lalr.lark_parser()


def inline_parser() -> Lark:
    """Lark's LALR parser with the node builders as its transformer (see `lark_lalr`)."""
    from sopdsl.syntax import lark_lalr

    return lark_lalr.inline_parser()


@functools.cache
def grammar_text() -> str:
    """The playbook grammar, as shipped in the `sopdsl.grammar` package."""
    return resources.files("sopdsl.grammar").joinpath("sopdsl.lark").read_text(encoding="utf-8")


def cache_dir() -> Path | None:
    """Where built parsers are kept: $SOPDSL_CACHE_DIR (empty: no cache), else the user cache."""
    configured = os.environ.get("SOPDSL_CACHE_DIR")
    if configured is not None:
        return Path(configured) if configured else None
    base = os.environ.get("XDG_CACHE_HOME")
    try:
        root = Path(base) if base else Path.home() / ".cache"
    except RuntimeError:  # no home folder to speak of
        return None
    return root / "sopdsl"
