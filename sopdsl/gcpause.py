"""Pausing Python's cyclic garbage collector while a front-end stage builds its result.

Parsing, checking and compiling a large playbook set allocate hundreds of thousands of
long-lived objects and make no reference cycles worth collecting, yet each allocation burst
sets off full collections that scan everything built so far: a third of the time on a 1 MB file.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def paused_gc(fn: Callable[P, R]) -> Callable[P, R]:
    """Run `fn` with the cyclic collector off (re-enabled afterwards, also on error; nests)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if not gc.isenabled():
            return fn(*args, **kwargs)
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            gc.enable()

    return wrapper
