"""Whether this machine can build the compiled modules (setup.py, mypyc): the tests that build
them skip, saying why, where no C compiler is found, unless SOPDSL_REQUIRE_COMPILER is set (as in
CI), and then they fail instead."""

from __future__ import annotations

import os
import shutil
import sysconfig

import pytest


def need_compiler() -> None:
    """Skip (or, with SOPDSL_REQUIRE_COMPILER, fail) the calling test where no C compiler is found."""
    named = str(sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(named) or shutil.which("cc") or shutil.which("gcc"):
        return
    reason = "no C compiler found: the compiled modules cannot be built here"
    if os.environ.get("SOPDSL_REQUIRE_COMPILER"):
        pytest.fail(f"{reason}, and SOPDSL_REQUIRE_COMPILER is set")
    pytest.skip(reason)
