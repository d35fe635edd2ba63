"""Every dispatch of the checker over a closed set (a node union or an enum) is exhaustive.

Each dispatch is a `match` ending in `case _: assert_never(x)`, so mypy rejects a dispatch that
lets a member through. This test proves that the mechanism holds: it runs mypy (the project's
strict configuration) on the package with a shadow copy of `sopdsl/syntax/nodes.py` and
`sopdsl/enums.py` in which every union alias of the syntax tree and every enum gains one member,
and asserts that mypy reports every `assert_never` of the checker, including the dispatches
listed in REQUIRED. A dispatch that falls through (an isinstance chain with a catch-all last
branch, a parameter typed `Any`) is not reported and fails the test, as does a required dispatch
that loses its `assert_never`.
"""

from __future__ import annotations

import ast
from pathlib import Path

from exhaustiveness import assert_never_sites, reported_with_shadows

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "sopdsl"
CHECKER = PACKAGE / "checker"
WIDENED = (PACKAGE / "syntax" / "nodes.py", PACKAGE / "enums.py")

# The dispatches over node kinds (and kind enums) the checker must keep exhaustive: (module, function).
REQUIRED = {
    ("playbooks", "check_playbook"),  # playbook items
    ("playbooks", "_cal_expr"),  # calendar expressions after `at`
    ("settings", "setting_word"),
    ("settings", "check_setting"),
    ("settings", "_repeat"),  # the Repeat enum
    ("triggers", "check_trigger"),
    ("triggers", "trigger_flow"),
    ("conditions", "check_cond"),
    ("conditions", "_literal"),
    ("conditions", "_shown"),
    ("conditions", "_calc_operand"),  # what arithmetic works on
    ("steps", "check_step"),
    ("flow", "excluded"),
    ("flow", "inner_blocks"),
    ("flow", "aims_at_member"),
    ("declarations", "collect"),
    ("declarations", "_declaration"),
    ("declarations", "calendar_rule"),
    ("declarations", "policy"),
    ("declarations", "_coupon"),
    ("declarations", "_group"),
    ("declarations", "scope"),
    # The formatter writes each node kind back: a new one it cannot write must fail mypy too.
    # (Its one-line node text lives in `sopdsl/syntax/unparse.py`.)
    ("unparse", "_trigger"),
    ("unparse", "_cal_expr"),
    ("unparse", "_cond"),
    ("unparse", "_simple_step"),
}


def _assert_never_sites() -> dict[tuple[str, int], tuple[str, str]]:
    """Every `assert_never(...)` call in the checker and the formatter's write-back."""
    return assert_never_sites([*sorted(CHECKER.glob("*.py")), PACKAGE / "syntax" / "unparse.py"])


def _widen(source: str) -> str:
    """The module with one more member in every union alias (a new node class) and every enum."""
    lines = source.splitlines()
    edits: list[tuple[int, int, list[str]]] = []  # (first line, last line, replacement), 1-based
    for statement in ast.parse(source).body:
        if (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.annotation, ast.Name)
            and statement.annotation.id == "TypeAlias"
            and isinstance(statement.target, ast.Name)
            and isinstance(statement.value, ast.BinOp)
        ):
            name = statement.target.id
            union = ast.get_source_segment(source, statement.value)
            added = [
                "@dataclass(frozen=True, slots=True)",
                f"class Added{name}:",
                '    """A node type the checker has not been taught."""',
                "",
                "    span: Span",
                "",
                "",
                f"{name}: TypeAlias = Added{name} | ({union})",
            ]
            assert statement.end_lineno is not None
            edits.append((statement.lineno, statement.end_lineno, added))
        elif isinstance(statement, ast.ClassDef) and any(
            ast.unparse(base) in ("enum.Enum", "Enum") for base in statement.bases
        ):
            assert statement.end_lineno is not None
            last_line = lines[statement.end_lineno - 1]
            edits.append((statement.end_lineno, statement.end_lineno, [last_line, '    ADDED = "added"']))
    assert edits, "nothing to widen"
    for first, last, replacement in sorted(edits, reverse=True):
        lines[first - 1 : last] = replacement
    return "\n".join(lines) + "\n"


def test_the_widening_covers_the_dispatched_unions() -> None:
    """The shadow nodes.py adds to the unions the checker dispatches on (a sanity check of _widen)."""
    widened = _widen(WIDENED[0].read_text(encoding="utf-8"))
    for alias in ("Step", "Trigger", "Cond", "Value", "CalExpr", "PlaybookItem", "OptionSetting"):
        assert f"{alias}: TypeAlias = Added{alias} | (" in widened
    for alias in ("Declaration", "SymbolDecl", "CalSpec", "PolicyRule"):
        assert f"{alias}: TypeAlias = Added{alias} | (" in widened
    assert widened.count('ADDED = "added"') >= 5  # Root, option kinds, ScopeKind, Comparator, ...
    compile(widened, "nodes.py", "exec")


def test_mypy_reports_every_dispatch_a_new_member_would_miss(tmp_path: Path) -> None:
    sites = _assert_never_sites()
    missing = REQUIRED - set(sites.values())
    assert not missing, f"these dispatches no longer end in assert_never: {sorted(missing)}"

    widened = {original: _widen(original.read_text(encoding="utf-8")) for original in WIDENED}
    reported, output = reported_with_shadows(widened, tmp_path)
    unreported = {site: where for site, where in sites.items() if site not in reported}
    assert not unreported, (
        "mypy let a new node type or enum member through these dispatches (each must end in "
        f"`case _: assert_never(x)` over the node union): {unreported}\n{output}"
    )
