"""sopdsl: community-operations SOPs as playbook files that are checked, compiled and dry-run.

The staged API, each stage callable on its own:

    loaded = sopdsl.load("playbooks/C1_prune_silent.sop")   # text -> syntax trees
    program = sopdsl.check(loaded)                          # -> checked model (CheckError)
    plan = sopdsl.compile_program(program)                  # -> executable plan
    engine = sopdsl.Engine(plan, start=...)                 # -> actions, on any clock

Names are imported lazily, so a bot that embeds only the engine and a compiled plan
(`sopdsl.engine`, `sopdsl.plan`) never imports the parser or Lark.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "parse": "sopdsl.syntax.parser",
    "load": "sopdsl.syntax.loader",
    "load_text": "sopdsl.syntax.loader",
    "check": "sopdsl.checker",
    "check_program": "sopdsl.checker",
    "CheckResult": "sopdsl.checker",
    "compile_program": "sopdsl.plan.compiler",
    "Plan": "sopdsl.plan",
    "load_plan": "sopdsl.plan",
    "Engine": "sopdsl.engine.engine",
    "Event": "sopdsl.engine.events",
    "Action": "sopdsl.engine.actions",
    "simulate": "sopdsl.dryrun.simulate",
    "Diagnostic": "sopdsl.diagnostics",
    "Severity": "sopdsl.diagnostics",
    "Source": "sopdsl.source",
    "SopdslError": "sopdsl.errors",
    "ParseError": "sopdsl.errors",
    "CheckError": "sopdsl.errors",
    "PlanError": "sopdsl.errors",
    "FixtureError": "sopdsl.errors",
    "EngineError": "sopdsl.errors",
    "Runtime": "sopdsl.live.runtime",
    "open_store": "sopdsl.live.runtime",
    "ManualClock": "sopdsl.live.clock",
    "RealClock": "sopdsl.live.clock",
}
_RENAMED = {"load_plan": "loads"}

__all__ = [
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
]

if TYPE_CHECKING:
    from sopdsl.checker import CheckResult, check, check_program
    from sopdsl.diagnostics import Diagnostic, Severity
    from sopdsl.dryrun.simulate import simulate
    from sopdsl.engine.actions import Action
    from sopdsl.engine.engine import Engine
    from sopdsl.engine.events import Event
    from sopdsl.errors import CheckError, EngineError, FixtureError, ParseError, PlanError, SopdslError
    from sopdsl.live.clock import ManualClock, RealClock
    from sopdsl.live.runtime import Runtime, open_store
    from sopdsl.plan import Plan
    from sopdsl.plan import loads as load_plan
    from sopdsl.plan.compiler import compile_program
    from sopdsl.source import Source
    from sopdsl.syntax.loader import load, load_text
    from sopdsl.syntax.parser import parse


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sopdsl' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), _RENAMED.get(name, name))
    globals()[name] = value
    return value
