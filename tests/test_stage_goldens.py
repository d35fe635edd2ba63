"""Golden files for each stage's output: the syntax tree, the checked model and the plan.

Diagnostics have goldens of their own (tests/checker/test_diagnostics_golden.py); these pin what
each stage hands the next for a few corpus and engine-case playbooks, so a change of shape shows
in review as a diff of the stage it belongs to. `SOPDSL_UPDATE_GOLDENS=1` rewrites them.
"""

from __future__ import annotations

import dataclasses
import enum
import os
from pathlib import Path
from typing import Any

import pytest

import sopdsl
from sopdsl.source import Source
from sopdsl.syntax.node_base import _Node
from sopdsl.syntax.parser import parse

ROOT = Path(__file__).resolve().parent.parent
GOLDENS = Path(__file__).parent / "goldens" / "stages"
UPDATE = os.environ.get("SOPDSL_UPDATE_GOLDENS") == "1"
CASES = {
    "J1_welcome_ritual": ROOT / "playbooks" / "J1_welcome_ritual.sop",
    "K1_tuesday_class": ROOT / "playbooks" / "K1_tuesday_class.sop",
    "G5_ab_poster": ROOT / "playbooks" / "G5_ab_poster.sop",
    "draw": ROOT / "tests" / "engine_cases" / "draw.sop",
    "team_wait": ROOT / "tests" / "engine_cases" / "team_wait.sop",
    "attachments": ROOT / "tests" / "engine_cases" / "attachments.sop",
}


def _leaf(value: Any) -> str | None:
    """A value written on one line: scalars, enums, and nodes of scalars only (names, strings)."""
    if value is None or isinstance(value, str | int | float | bool):
        return repr(value)
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, _Node):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value) if f.name != "span"}  # type: ignore[arg-type]
        parts = [_leaf(v) for v in fields.values()]
        if all(p is not None for p in parts):
            return (
                f"{type(value).__name__}("
                + ", ".join(f"{k}={p}" for k, p in zip(fields, parts, strict=True))
                + ")"
            )
    return None


def _tree(value: Any, indent: str = "") -> list[str]:
    """A syntax tree as indented lines, without spans (they are pinned by the diagnostics' goldens)."""
    one = _leaf(value)
    if one is not None:
        return [indent + one]
    if isinstance(value, tuple | list):
        if not value:
            return [indent + "()"]
        lines: list[str] = []
        for item in value:
            inner = _tree(item, indent + "  ")
            lines.append(indent + "- " + inner[0][len(indent) + 2 :])
            lines.extend(inner[1:])
        return lines
    assert isinstance(value, _Node), type(value)
    lines = [indent + type(value).__name__]
    for f in dataclasses.fields(value):  # type: ignore[arg-type]
        if f.name == "span":
            continue
        child = getattr(value, f.name)
        leaf = _leaf(child)
        if leaf is not None:
            lines.append(f"{indent}  {f.name}: {leaf}")
        else:
            lines.append(f"{indent}  {f.name}:")
            lines.extend(_tree(child, indent + "    "))
    return lines


def _outputs(path: Path) -> dict[str, str]:
    text = path.read_text(encoding="utf-8")
    shown = path.relative_to(ROOT).as_posix()
    tree = parse(Source(shown, text))
    program = sopdsl.check(sopdsl.load(shown))  # from the repository root: locations as shown
    plan = sopdsl.compile_program(program)
    return {
        "tree": "\n".join(_tree(tree)) + "\n",
        "model": program.model_dump_json(indent=1, exclude={"files"}) + "\n",
        "plan": plan.model_dump_json(indent=1, exclude={"content_hash"}) + "\n",
    }


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("stage", ["tree", "model", "plan"])
def test_each_stage_gives_its_golden_output(name: str, stage: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    got = _outputs(CASES[name])[stage]
    golden = GOLDENS / f"{name}.{stage}.txt"
    if UPDATE or not golden.exists():
        golden.write_text(got, encoding="utf-8", newline="\n")
        if not UPDATE:
            pytest.fail(f"wrote missing {golden.name}; read it, then run again")
    assert got == golden.read_text(encoding="utf-8")


def test_the_plan_golden_holds_no_model_record() -> None:
    # The plan is its own stage: none of the model's own records (nested steps, the program) in it.
    plan = (GOLDENS / "G5_ab_poster.plan.txt").read_text(encoding="utf-8")
    assert '"program"' not in plan and '"steps"' not in plan and '"declarations"' in plan
