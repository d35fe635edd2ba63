"""Fixtures every test folder shares: a PostgreSQL database per run (see livestores.py), a
Temporal dev server per run (temporalserver.py), the wheel pip builds, built and installed once
per run (wheelbuild.py)."""

import os

import pytest
from livestores import postgres_db
from temporalserver import temporal_server
from wheelbuild import built_wheel, installed_wheel

__all__ = ["built_wheel", "installed_wheel", "postgres_db", "temporal_server"]


def pytest_sessionstart(session: pytest.Session) -> None:
    """With SOPDSL_EXPECT_COMPILED set (tests/test_compiled.py), stop unless the engine imported
    is the compiled one: a suite run on pure modules there would prove nothing."""
    if os.environ.get("SOPDSL_EXPECT_COMPILED"):
        from sopdsl.engine import engine

        if not (engine.__file__ or "").endswith(".so"):
            raise pytest.UsageError(f"SOPDSL_EXPECT_COMPILED is set, but the engine is {engine.__file__}")
