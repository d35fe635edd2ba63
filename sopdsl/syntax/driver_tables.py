"""The driver's tables: what it reads of Lark's LALR parser, as plain data cached on disk.

Input: the grammar. Output: `Tables` (the parse table, each rule's reduction, the terminals in
the order Lark's lexers try them), for `sopdsl.syntax.driver`. Taking them from Lark means
importing Lark and loading its parser, which is most of what a check of a small file costs; so
they are also written to the user's cache folder (`parser.cache_dir`), and read back, without
Lark, by the next process. A cache file is used only if its name and its content carry the
key of everything the tables are derived from (the grammar, this module's and `lark_lalr`'s
code, Lark's own version) and its checksum matches; anything else is rebuilt from Lark and
rewritten. Nothing here depends on sopdsl's node builders: the driver joins those on load.
"""

from __future__ import annotations

import hashlib
import importlib.util
import marshal
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from sopdsl.syntax.parser import _BOUNDARY, _KEYWORD, _KEYWORD_PRIORITY, cache_dir, grammar_text

if TYPE_CHECKING:
    from lark import Lark
    from lark.lexer import TerminalDef

# Bump when the meaning of the tables changes without a change to this module's text.
_FORMAT = "1"
_MAGIC = b"sopdsl-driver-tables\n"

# What a rule's reduction is, as far as Lark's rule alone tells (the driver refines it).
INLINE = 3  # `_rule`: its children are spliced into the parent's
EXPAND1 = 4  # `?rule`: its only child stands for it, else a node
NODE = 6  # a node, from the rule's builder
START = 7  # the file

# A rule: (symbols popped, origin, INLINE/EXPAND1/NODE/START, the children it keeps as lark's
# child filter keeps them: (position, spliced, Nones inserted before), Nones after the last
# child, the name of its builder or "").
RuleShape = tuple[int, str, int, list[tuple[int, bool, int]], int, str]


class Unsupported(Exception):  # noqa: N818
    """Lark's tables are not shaped as the driver expects: always use Lark's own parser."""


class Tables(NamedTuple):
    """What the driver runs on, every part plain data (marshal writes and reads it)."""

    start: int  # the start state
    actions: list[dict[str, int]]  # per state: symbol -> next state (shift, goto) or ~rule (reduce)
    rules: list[RuleShape]
    terminals: list[tuple[str, str]]  # (name, regexp), in the order every lexer of Lark's tries them
    keywords: dict[str, str]  # keyword -> its terminal, for keywords `_word_boundary` made
    newline_types: list[str]  # terminals that may span lines
    ignore: list[str]  # terminals skipped between tokens (white space, comments)
    flags: int  # the regex flags of every terminal
    # States whose Lark lexer turns a string a regex terminal matches into the string's own
    # terminal (lark's `UnlessCallback`): the driver leaves those to Lark.
    callback_states: list[int]


def tables() -> Tables | None:
    """The driver's tables: from the cache file if it is current, else from Lark (then cached);
    None if Lark's parser is not shaped as the driver expects."""
    key = _key()
    path = _cache_file(key)
    if path is not None:
        cached = read(path, key)
        if cached is not None:
            return cached
    try:
        built = from_lark()
    except (Unsupported, AttributeError, KeyError, TypeError, ValueError):
        return None  # a Lark whose insides moved: its own parser still parses everything
    if path is not None and key is not None:
        write(path, key, built)
    return built


def _key() -> str | None:
    """The digest of everything the tables derive from; None if some of it cannot be read."""
    spec = importlib.util.find_spec("lark")  # without importing it
    here = Path(__file__)
    try:
        if spec is None or spec.origin is None:
            return None
        parts = [
            _FORMAT.encode(),
            sys.version.encode(),
            str(marshal.version).encode(),
            grammar_text().encode("utf-8"),
            here.read_bytes(),
            here.with_name("lark_lalr.py").read_bytes(),  # the options and `_word_boundary`
            Path(spec.origin).read_bytes(),  # Lark's `__version__`
        ]
    except OSError:
        return None
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _cache_file(key: str | None) -> Path | None:
    folder = cache_dir()
    if folder is None or key is None:
        return None
    return folder / f"driver-{key[:32]}.marshal"


def read(path: Path, key: str | None) -> Tables | None:
    """The tables in a cache file, if it holds them for `key`, whole; else None."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    header = _MAGIC + (key or "").encode() + b"\n"
    if key is None or not data.startswith(header):
        return None
    checksum, payload = data[len(header) : len(header) + 32], data[len(header) + 32 :]
    if hashlib.sha256(payload).digest() != checksum:
        return None
    try:
        loaded = marshal.loads(payload)
        if not isinstance(loaded, tuple) or len(loaded) != len(Tables._fields):
            return None
        return Tables(*loaded)
    except (EOFError, ValueError, TypeError):
        return None


def write(path: Path, key: str, built: Tables) -> None:
    """Save the tables for `key`, atomically (readers see the old file or the new one, whole);
    nothing is written where the folder cannot be."""
    try:
        payload = marshal.dumps(tuple(built))
    except ValueError:  # not plain data after all: no cache, rather than a wrong one
        return
    data = _MAGIC + key.encode() + b"\n" + hashlib.sha256(payload).digest() + payload
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    except OSError:
        return  # a read-only or missing cache folder: the next process builds them again
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(temporary, 0o644)  # as Lark's own cache file: readable by whoever shares the folder
        os.replace(temporary, path)
    except OSError:
        Path(temporary).unlink(missing_ok=True)


def from_lark(parser: Lark | None = None) -> Tables:
    """The tables read from Lark's LALR parser (by default the playbook grammar's)."""
    from lark.parsers.lalr_analysis import Shift

    from sopdsl.syntax.lark_lalr import lark_parser

    parser = parser or lark_parser()
    options = parser.options
    if (
        options.parser != "lalr"
        or options.lexer != "contextual"
        or options.postlex is not None
        or options.transformer is not None
        or options.lexer_callbacks
        or options.propagate_positions is not True
        or not options.maybe_placeholders
    ):
        raise Unsupported("options")
    frontend: Any = parser.parser
    table = frontend.parser.parser.parse_table
    lexer = frontend.lexer
    if set(parser.lexer_conf.ignore) != {"WS", "COMMENT"}:
        raise Unsupported("ignored terminals")
    # Names are made plain `str` throughout: a freshly built Lark names things with its tokens.
    index: dict[Any, int] = {rule: i for i, rule in enumerate(parser.rules)}
    rules = [_shape(rule) for rule in parser.rules]
    actions: list[dict[str, int]] = [{} for _ in range(max(table.states) + 1)]
    for state, row in table.states.items():
        actions[state] = {
            str(symbol): (int(arg) if action is Shift else ~index[arg])
            for symbol, (action, arg) in row.items()
        }
    # Every lexer of Lark's sorts its terminals by one key, so each state's order is this
    # order with the terminals it does not accept left out.
    root = lexer.root_lexer
    ordered: list[TerminalDef] = list(root.terminals)
    for state_lexer in {id(x): x for x in lexer.lexers.values()}.values():
        names = {t.name for t in state_lexer.terminals}
        if [t.name for t in state_lexer.terminals] != [t.name for t in ordered if t.name in names]:
            raise Unsupported("terminal order")
    root.scanner  # noqa: B018 - building the scanner fills in its callbacks
    unless = {name: {t.name for t in cb.scanner.terminals} for name, cb in root.callback.items()}
    callback_states = []
    for state, state_lexer in lexer.lexers.items():
        names = {t.name for t in state_lexer.terminals}
        if any(r in names and names & strings for r, strings in unless.items()):
            callback_states.append(state)
    keywords = {str(word): str(t.name) for t in ordered if (word := keyword_of(t)) is not None}
    return Tables(
        start=int(table.start_states["start"]),
        actions=actions,
        rules=rules,
        terminals=[(str(t.name), str(t.pattern.to_regexp())) for t in ordered],
        keywords=keywords,
        newline_types=sorted(map(str, root.newline_types)),
        ignore=sorted(map(str, parser.lexer_conf.ignore)),
        flags=int(parser.lexer_conf.g_regex_flags),
        callback_states=sorted(map(int, callback_states)),
    )


def keyword_of(terminal: TerminalDef) -> str | None:
    """The word of a keyword terminal as `_word_boundary` left it, else None."""
    from lark.lexer import PatternRE

    pattern = terminal.pattern
    if (
        terminal.priority == _KEYWORD_PRIORITY
        and isinstance(pattern, PatternRE)
        and not pattern.flags
        and pattern.value.endswith(_BOUNDARY)
    ):
        word = pattern.value[: -len(_BOUNDARY)]
        if _KEYWORD.fullmatch(word) and re.escape(word) == word:
            return word
    return None


def _shape(rule: Any) -> RuleShape:
    """The reduction of one Lark rule, mirroring lark's `ParseTreeBuilder` for it."""
    options = rule.options
    if options.template_source is not None:
        raise Unsupported("templates")
    expansion = rule.expansion
    origin = str(rule.origin.name)
    if origin.startswith("_"):
        if rule.alias or options.expand1:
            raise Unsupported("inlined rule with alias")
        how = INLINE
    elif origin == "start":
        how = START
    elif options.expand1 and not rule.alias:
        # An expanded child carries its own meta only if it is a tree, never a token.
        if any(s.is_term and not s.filter_out for s in expansion):
            raise Unsupported("expanded terminal")
        how = EXPAND1
    else:
        how = NODE
    if not expansion and how in (NODE, EXPAND1):
        raise Unsupported("empty rule")
    # As lark's maybe_create_child_filter, with maybe_placeholders.
    empty = options.empty_indices
    if empty:
        counts = [len(ones) for ones in "".join(str(int(b)) for b in empty).split("0")]
    else:
        counts = [0] * (len(expansion) + 1)
    spec: list[tuple[int, bool, int]] = []
    nones = 0
    for i, symbol in enumerate(expansion):
        nones += counts[i]
        if options.keep_all_tokens or not (symbol.is_term and symbol.filter_out):
            spec.append((i, not symbol.is_term and symbol.name.startswith("_"), nones))
            nones = 0
    trailing = nones + counts[len(expansion)]
    name = str(rule.alias or origin) if how in (NODE, EXPAND1) else ""
    return (len(expansion), origin, how, spec, trailing, name)
