"""sopdsl: community-operations SOPs as playbook files that are checked, compiled and dry-run.

The staged API, each stage callable on its own:

    loaded = sopdsl.load("playbooks/C1_prune_silent.sop")   # text -> syntax trees
    program = sopdsl.check(loaded)                          # -> checked model (CheckError)
    plan = sopdsl.compile_program(program)                  # -> executable plan
    engine = sopdsl.Engine(plan, start=...)                 # -> actions, on any clock

Names are imported lazily, so a bot that embeds only the engine and a compiled plan
(`sopdsl.runtime`, `sopdsl.plan`) never imports the parser or Lark.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "parse": "sopdsl.parser",
    "load": "sopdsl.loader",
    "load_text": "sopdsl.loader",
    "check": "sopdsl.checker",
    "check_program": "sopdsl.checker",
    "CheckResult": "sopdsl.checker",
    "compile_program": "sopdsl.compiler",
    "Plan": "sopdsl.plan",
    "load_plan": "sopdsl.plan",
    "Engine": "sopdsl.runtime.engine",
    "Event": "sopdsl.runtime.events",
    "Action": "sopdsl.runtime.actions",
    "simulate": "sopdsl.simulate",
    "Diagnostic": "sopdsl.diagnostics",
    "Severity": "sopdsl.diagnostics",
    "Source": "sopdsl.source",
    "SopdslError": "sopdsl.errors",
    "ParseError": "sopdsl.errors",
    "CheckError": "sopdsl.errors",
    "PlanError": "sopdsl.errors",
    "FixtureError": "sopdsl.errors",
    "EngineError": "sopdsl.errors",
    "Runtime": "sopdsl.runtime.live",
    "open_store": "sopdsl.runtime.live",
    "ManualClock": "sopdsl.runtime.clock",
    "RealClock": "sopdsl.runtime.clock",
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
    from sopdsl.compiler import compile_program
    from sopdsl.diagnostics import Diagnostic, Severity
    from sopdsl.errors import CheckError, EngineError, FixtureError, ParseError, PlanError, SopdslError
    from sopdsl.loader import load, load_text
    from sopdsl.parser import parse
    from sopdsl.plan import Plan
    from sopdsl.plan import loads as load_plan
    from sopdsl.runtime.actions import Action
    from sopdsl.runtime.clock import ManualClock, RealClock
    from sopdsl.runtime.engine import Engine
    from sopdsl.runtime.events import Event
    from sopdsl.runtime.live import Runtime, open_store
    from sopdsl.simulate import simulate
    from sopdsl.source import Source


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sopdsl' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), _RENAMED.get(name, name))
    globals()[name] = value
    return value
