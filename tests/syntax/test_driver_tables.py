"""The driver's tables, cached on disk: a valid file parses without Lark, and a cache file that
is stale, damaged or unwritable never gives a wrong parse (sopdsl/syntax/driver_tables.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_parser_paths import CORPUS, assert_same

from sopdsl.errors import ParseError
from sopdsl.source import Source
from sopdsl.syntax import driver_tables, lark_lalr
from sopdsl.syntax.driver import Fallback, FastParser
from sopdsl.syntax.driver_tables import Tables, from_lark, tables
from sopdsl.syntax.parser import grammar_text, parse_lark

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("SOPDSL_CACHE_DIR", str(folder))
    return folder


def cached_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("driver-*.marshal")) if folder.exists() else []


def test_tables_written_are_the_tables_read(cache: Path) -> None:
    built = tables()
    assert built == from_lark()
    (written,) = cached_files(cache)
    before = written.read_bytes()
    assert tables() == built  # read back, not rebuilt
    assert cached_files(cache) == [written]
    assert written.read_bytes() == before


def test_tables_of_a_freshly_built_lark_can_be_cached(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A Lark built from the grammar (not loaded from its own cache) names things with its tokens.
    monkeypatch.setenv("SOPDSL_CACHE_DIR", "")
    fresh = from_lark(lark_lalr._build_lark())
    path = cache / "driver-fresh.marshal"
    driver_tables.write(path, "k" * 64, fresh)
    assert driver_tables.read(path, "k" * 64) == fresh
    # Its states may be numbered otherwise (Lark's analysis walks sets), its trees are the same.
    text = (ROOT / "playbooks" / "J1_welcome_ritual.sop").read_text(encoding="utf-8")
    assert FastParser(fresh).parse("J1.sop", text) == FastParser(from_lark()).parse("J1.sop", text)


def test_another_grammar_does_not_read_the_tables_of_this_one(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tables()
    key = driver_tables._key()
    assert key is not None
    (written,) = cached_files(cache)
    text = grammar_text()
    monkeypatch.setattr(driver_tables, "grammar_text", lambda: text + "\n// changed\n")
    changed = driver_tables._key()
    assert changed is not None and changed != key
    assert driver_tables._cache_file(changed) != written
    assert driver_tables.read(written, changed) is None  # even under the other key's name


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[:-100],  # torn
        lambda data: data[:-1] + bytes([data[-1] ^ 1]),  # one bit off in the tables
        lambda data: b"",
        lambda data: b"\x00garbage" * 100,
    ],
    ids=["torn", "bit", "empty", "garbage"],
)
def test_a_damaged_cache_file_is_rebuilt(cache: Path, damage: object) -> None:
    good = tables()
    (written,) = cached_files(cache)
    intact = written.read_bytes()
    written.write_bytes(damage(intact))  # type: ignore[operator]
    assert driver_tables.read(written, driver_tables._key()) is None
    assert tables() == good
    assert written.read_bytes() == intact  # and rewritten


def test_no_cache_folder_or_one_that_cannot_be_written_still_parses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = from_lark()
    monkeypatch.setenv("SOPDSL_CACHE_DIR", "")  # no cache at all
    assert tables() == good
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder", encoding="utf-8")
    monkeypatch.setenv("SOPDSL_CACHE_DIR", str(blocker / "cache"))  # cannot be made
    assert tables() == good
    assert blocker.read_text(encoding="utf-8") == "not a folder"


def test_a_valid_file_parses_without_lark_once_the_tables_are_cached(tmp_path: Path) -> None:
    code = (
        "import sys; from sopdsl.source import Source; from sopdsl.syntax.parser import parse; "
        "parse(Source('x.sop', open(sys.argv[1], encoding='utf-8').read())); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('lark', 'interegular')))"
    )
    env = {**os.environ, "SOPDSL_CACHE_DIR": str(tmp_path)}
    path = str(ROOT / "playbooks" / "J1_welcome_ritual.sop")
    runs = [
        subprocess.run(
            [sys.executable, "-c", code, path], env=env, check=True, capture_output=True, text=True
        )
        for _ in range(2)
    ]
    assert runs[0].stdout.strip() != "[]"  # the first builds the tables from Lark
    assert runs[1].stdout.strip() == "[]"


def test_the_driver_itself_parses_every_valid_corpus_file() -> None:
    """No valid file is left to Lark: a cached table that made the driver give up would hide."""
    fast = FastParser(from_lark())
    valid = 0
    for path in CORPUS:
        text = path.read_bytes().decode("utf-8", errors="replace")
        try:
            expected = parse_lark(Source(str(path), text))
        except ParseError:
            with pytest.raises(Fallback):
                fast.parse(str(path), text)
            continue
        assert fast.parse(str(path), text) == expected, path
        valid += 1
    assert valid > 100


def test_a_keyword_where_only_a_name_fits_is_a_name() -> None:
    # The driver's scanner of every terminal reads `send` as the keyword; the state after
    # `template` accepts only a name, so its own lexer must be asked, as Lark's would be.
    text = 'timezone "Asia/Shanghai"\ntemplate send = "hi"\nplaybook tag { on member joins do { send send to member } }\n'
    tree = FastParser(from_lark()).parse("same.sop", text)  # the path assert_same gives
    assert tree == assert_same(text)
    assert "TemplateDecl(name=Name(text='send'" in repr(tree)


def test_tables_are_plain_data() -> None:
    built = from_lark()
    assert isinstance(built, Tables)
    assert all(type(name) is str and type(regexp) is str for name, regexp in built.terminals)
    assert all(type(symbol) is str for row in built.actions for symbol in row)
