"""The public API: pinned exports, the staged pipeline, and an engine that needs no parser."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

import sopdsl

EXPECTED = {
    "Action",
    "CheckError",
    "CheckResult",
    "Diagnostic",
    "Engine",
    "EngineError",
    "Event",
    "FixtureError",
    "ManualClock",
    "ParseError",
    "Plan",
    "PlanError",
    "RealClock",
    "Runtime",
    "Severity",
    "SopdslError",
    "Source",
    "__version__",
    "check",
    "check_program",
    "compile_program",
    "load",
    "load_plan",
    "load_text",
    "open_store",
    "parse",
    "simulate",
}


def test_exports_are_pinned() -> None:
    assert set(sopdsl.__all__) == EXPECTED
    for name in sopdsl.__all__:
        assert getattr(sopdsl, name) is not None


def test_staged_pipeline_round_trips_a_plan() -> None:
    loaded = sopdsl.load_text(
        textwrap.dedent(
            """
            timezone "Asia/Shanghai"
            template hi = "欢迎 {{ member.name }}"
            playbook welcome { on member joins do { send hi to member } }
            """
        ),
        "inline.sop",
    )
    plan = sopdsl.compile_program(sopdsl.check(loaded))
    again = sopdsl.load_plan(plan.dumps())
    assert again.content_hash == plan.content_hash
    engine = sopdsl.Engine(again, start=1_700_000_000)
    engine.feed(sopdsl.Event("join", 1_700_000_100, member="m1", group="g1", data={"name": "{{ 7*7 }}"}))
    [action] = engine.log
    # Member-supplied text is data, never template code.
    assert action.detail["text"] == "欢迎 {{ 7*7 }}"


def test_engine_and_plan_load_without_lark() -> None:
    code = "import sys, sopdsl.engine.engine, sopdsl.plan; print('lark' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_engine_never_imports_the_front_end() -> None:
    code = (
        "import sys, sopdsl.engine.engine, sopdsl.dryrun.simulate; "
        "bad = [m for m in sys.modules if m in ('sopdsl.syntax.parser', 'sopdsl.syntax.transformer', 'sopdsl.syntax.nodes', 'sopdsl.checker.program', 'sopdsl.checker.playbooks')]; "
        "print(bad)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_engine_and_the_runtime_import_the_plan_never_the_checker_or_the_syntax() -> None:
    # The plan is its own stage: what runs a plan (the engine, the dry run, the live runtime and
    # its store) needs neither the checked model nor the syntax tree, so neither can drift into it.
    code = (
        "import sys, sopdsl.engine.engine, sopdsl.dryrun.simulate, sopdsl.live.runtime, sopdsl.live.store_sqlite; "
        "print(sorted(m for m in sys.modules if m.startswith(('sopdsl.checker', 'sopdsl.syntax'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def _welcome_plan() -> str:
    text = 'timezone "Asia/Shanghai"\ntemplate hi = "欢迎"\nplaybook welcome { on member joins do { send hi to member } }\n'
    return sopdsl.compile_program(sopdsl.check(sopdsl.load_text(text, "inline.sop"))).dumps()


def test_a_plan_edited_after_compiling_is_refused() -> None:
    dumped = _welcome_plan()
    assert "欢迎" in dumped  # Chinese text stays readable in the file
    with pytest.raises(sopdsl.PlanError, match="changed after compiling"):
        sopdsl.load_plan(dumped.replace("欢迎", "再见"))


def test_a_plan_of_another_format_version_is_refused() -> None:
    data = json.loads(_welcome_plan())
    data["format_version"] += 1
    with pytest.raises(sopdsl.PlanError, match="format version"):
        sopdsl.load_plan(json.dumps(data))


def test_a_plan_that_is_not_a_plan_is_refused() -> None:
    for text in ("", "[]", '{"format_version": 1}', "\x00\x01"):
        with pytest.raises(sopdsl.PlanError):
            sopdsl.load_plan(text)
