"""The engine: a plan, events and time in, actions out, on any clock."""
