"""Dry runs: fixtures and timelines through the engine, expectations, explanations."""
