"""Fixtures every test folder shares: a PostgreSQL database per run (see livestores.py)."""

from livestores import postgres_db

__all__ = ["postgres_db"]
