"""The engine on a real clock: stores, the outbox, executors, and the `sopdsl run` service."""
