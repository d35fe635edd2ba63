"""Fixtures every test folder shares: a PostgreSQL database per run (see livestores.py), a
Temporal dev server per run (temporalserver.py)."""

from livestores import postgres_db
from temporalserver import temporal_server

__all__ = ["postgres_db", "temporal_server"]
