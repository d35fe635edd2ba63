"""Syntax trees to the checked model, with every diagnostic at once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sopdsl.checker.program import CheckResult, check, check_program

__all__ = ["CheckResult", "check", "check_program"]


def __getattr__(name: str) -> Any:
    # Lazily, so reading `sopdsl.checker.model` (as the plan does) loads no parser.
    if name in __all__:
        from sopdsl.checker import program

        return getattr(program, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
