"""The one Jinja2 environment templates are checked and rendered with: sandboxed, strict.

Shared by the checker (syntax and variables) and the engine (rendering), so a template that
checks is rendered by exactly the same rules. Member-supplied text is passed as data, never
compiled as template code.
"""

from __future__ import annotations

from functools import cache

from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment


@cache
def environment() -> ImmutableSandboxedEnvironment:
    """The sandboxed environment: undefined variables are errors, no autoescaping (chat text)."""
    return ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
    )
