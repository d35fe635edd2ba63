"""Start-up: each command imports only what it uses (bench/startup.py measures the time).

`sopdsl --version` and `--help` load no parser, `sopdsl check` no engine, and Jinja2 only when a
template has more than plain text and `{{ member.name }}` placeholders to check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest

from sopdsl.cli import COMMANDS, LazyGroup, load_command, main

ROOT = Path(__file__).resolve().parent.parent.parent
MARK = "@@modules@@"


def modules_after(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> set[str]:
    """The modules loaded by `sopdsl ARGS` in a fresh process."""
    code = textwrap.dedent(
        f"""
        import json, sys
        sys.argv = ["sopdsl", *{list(args)!r}]
        from sopdsl.cli import main
        try:
            main()
        except SystemExit:
            pass
        print({MARK!r} + json.dumps(sorted(sys.modules)))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    )
    assert MARK in done.stdout, done.stderr
    return set(json.loads(done.stdout.rpartition(MARK)[2]))


def loaded(modules: set[str], *roots: str) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in roots or m.startswith(roots))


TEMPLATE_FREE = """\
timezone "Asia/Shanghai"
attribute region: text "地区"
group g1 "一群" { tagged "core" }
playbook tidy "整理" {
    on member joins
    when member.region is set
    do {
        tag member "new"
        wait 3 days
        untag member "new"
    }
}
"""

WITH_TEMPLATES = """\
timezone "Asia/Shanghai"
template hi = "{{ member.name }}，欢迎！{% if member.region %}（{{ member.region }}）{% endif %}"
playbook welcome { on member joins do { send hi to member } }
"""


def test_version_imports_click_and_nothing_heavy() -> None:
    modules = modules_after("--version")
    assert loaded(modules, "sopdsl.engine", "jinja2", "psycopg", "pydantic", "lark", "sopdsl.syntax") == []
    assert loaded(modules, "pygls", "lsprotocol") == []
    assert loaded(modules, "sopdsl") == ["sopdsl", "sopdsl.cli"]


def test_help_imports_no_command() -> None:
    modules = modules_after("--help")
    assert loaded(modules, "sopdsl") == ["sopdsl", "sopdsl.cli"]


def test_check_of_a_template_free_file_imports_no_engine_jinja_or_psycopg(tmp_path: Path) -> None:
    (tmp_path / "small.sop").write_text(TEMPLATE_FREE, encoding="utf-8")
    modules = modules_after("check", "small.sop", cwd=tmp_path, env={"PYTHONPATH": str(ROOT)})
    assert "sopdsl.checker.program" in modules  # it did check
    assert (
        loaded(modules, "sopdsl.engine", "jinja2", "psycopg", "sopdsl.templating", "sopdsl.live", "pygls")
        == []
    )


def test_check_of_a_file_with_templates_imports_no_engine_or_psycopg(tmp_path: Path) -> None:
    (tmp_path / "small.sop").write_text(WITH_TEMPLATES, encoding="utf-8")
    modules = modules_after("check", "small.sop", cwd=tmp_path, env={"PYTHONPATH": str(ROOT)})
    assert "jinja2" in modules  # the template's `{% if %}` was checked with Jinja's parser
    assert loaded(modules, "sopdsl.engine", "psycopg", "sopdsl.live", "sopdsl.dryrun") == []


def test_check_of_simple_placeholders_imports_no_jinja() -> None:
    # J1's templates hold only `{{ member.name }}`-style placeholders: read without Jinja.
    modules = modules_after("check", "playbooks/J1_welcome_ritual.sop")
    assert "sopdsl.checker.program" in modules
    assert loaded(modules, "sopdsl.engine", "jinja2", "psycopg", "sopdsl.live", "sopdsl.dryrun") == []


def test_check_of_a_valid_file_imports_no_lark_once_the_driver_tables_are_cached(tmp_path: Path) -> None:
    env = {"SOPDSL_CACHE_DIR": str(tmp_path)}
    first = modules_after("check", "playbooks/J1_welcome_ritual.sop", env=env)
    assert "lark" in first  # the driver's tables came from Lark, and were cached
    again = modules_after("check", "playbooks/J1_welcome_ritual.sop", env=env)
    assert "sopdsl.checker.program" in again
    assert loaded(again, "lark", "interegular", "sopdsl.syntax.lark_lalr", "sopdsl.syntax.lark_errors") == []
    # An error still gets Lark's diagnostics.
    (tmp_path / "bad.sop").write_text('timezone "Asia/Shanghai"\nplaybook {\n', encoding="utf-8")
    wrong = modules_after("check", str(tmp_path / "bad.sop"), env=env)
    assert "sopdsl.syntax.lark_errors" in wrong


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_lazy_table_matches_each_command(name: str) -> None:
    command = load_command(name)
    assert command.name == name
    # `--help` shows the table's line while the command is not imported: it must read the same.
    stub = click.Command(name, help=COMMANDS[name].help)
    for limit in (30, 45, 62, 120, 300):
        assert stub.get_short_help_str(limit) == command.get_short_help_str(limit)


def test_help_lists_every_command_as_the_commands_themselves_would() -> None:
    lazy = LazyGroup(name="sopdsl", help=main.help)
    eager = click.Group(name="sopdsl", help=main.help, commands={n: load_command(n) for n in COMMANDS})
    for width in (60, 80, 120):
        shown = [
            group.get_help(
                click.Context(group, info_name="sopdsl", terminal_width=width, max_content_width=width)
            )
            for group in (lazy, eager)
        ]
        assert shown[0] == shown[1]
        assert all(name in shown[0] for name in COMMANDS)


def test_an_unknown_command_is_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from sopdsl.cli import main; main()", "chekc", "x.sop"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "No such command" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_parser_cache_written_by_one_process_is_used_by_the_next(tmp_path: Path) -> None:
    """The file Lark writes is the one it reads: the next process loads it, nothing is rebuilt."""
    code = "from sopdsl.syntax.parser import lark_parser, inline_parser; lark_parser(); inline_parser()"
    env = {**os.environ, "SOPDSL_CACHE_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    (cached,) = tmp_path.glob("parser-*.lark")
    before = cached.stat().st_mtime_ns, cached.read_bytes()
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    assert (cached.stat().st_mtime_ns, cached.read_bytes()) == before
    assert [p.name for p in tmp_path.glob("parser-*.lark")] == [cached.name]


def test_the_command_line_process_freezes_what_the_command_import_made() -> None:
    """`sopdsl ...` (the group called as the process) freezes the import for the collector; a
    program running the group in-process (CliRunner calls `main.main`) keeps ordinary collection."""
    code = textwrap.dedent(
        """
        import gc, sys
        from sopdsl.cli import main
        sys.argv = ["sopdsl", "explain", "SOP104"]
        try:
            {call}
        except SystemExit:
            pass
        print("frozen", gc.get_freeze_count(), gc.isenabled())
        """
    )
    for call, frozen in (("main()", True), ("main.main()", False)):
        done = subprocess.run(
            [sys.executable, "-c", code.format(call=call)], capture_output=True, text=True, check=True
        )
        count, enabled = done.stdout.rpartition("frozen ")[2].split()
        assert (int(count) > 0) is frozen, (call, done.stdout)
        assert enabled == "True"  # the collector runs again afterwards
