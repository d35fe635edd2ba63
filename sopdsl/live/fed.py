"""What feeding a batch of events did, as the service answers it: which were new, and what each caused.

Input: the bodies a caller offered, the actions the shard's engine emitted, and what the store
journaled of them (`Taken`, filled by `Shards.apply`). Output: a `Fed`, its actions as the
runtime's callers see them (`queued`, not the engine's `done`: the executors have not run yet).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sopdsl.engine.actions import Action


@dataclass
class Taken:
    """What the store journaled of a batch: the new entries, and how many actions each one caused."""

    bodies: list[dict[str, Any]] | None = None  # None: another worker applies the shard
    caused: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Fed:
    """What feeding a batch did: the actions it caused (in order), the places of events not stored
    again, and how many of the actions each event caused (0 for a duplicate). Among the actions,
    one the policy held back appears as a copy with status "deferred" and the time it will go."""

    actions: list[Action]
    duplicates: list[int]  # indexes of events whose `id` the shard had already taken
    caused: list[int] = field(default_factory=list)


# The status the runtime's callers (`feed`, `tick`, the HTTP answer) see for an action the engine
# decided to go out ("done"): stored in the outbox, its executor not called yet.
QUEUED = "queued"


def queued(actions: list[Action]) -> list[Action]:
    """The actions as the runtime hands them back: copies saying `queued` for those the engine
    marked `done`, since no executor has run yet; the others (deferred, dropped...) as they are."""
    return [Action(**{**a.fields(), "status": QUEUED}) if a.status == "done" else a for a in actions]


def without_held(actions: list[Action]) -> list[Action]:
    """The actions decided, without the copies of those the policy held back (status "deferred")."""
    return [a for a in actions if a.status != "deferred"]


def fed(bodies: list[dict[str, Any]], actions: list[Action], taken: Taken) -> Fed:
    """The `Fed` of a batch: which events were duplicates, and which actions each one caused."""
    if taken.bodies is None:
        return Fed(actions, [], [0] * len(bodies))  # applied elsewhere: nothing known here
    journaled: dict[Any, int] = {}
    for body in taken.bodies:
        if body.get("id") is not None:
            journaled[body["id"]] = journaled.get(body["id"], 0) + 1
    found, caused = [], []
    counts = iter(taken.caused)
    for index, body in enumerate(bodies):
        event_id = body.get("id")
        if event_id is not None and journaled.get(event_id, 0) == 0:
            found.append(index)
            caused.append(0)
            continue
        if event_id is not None:
            journaled[event_id] -= 1  # the first of several with one id is the one journaled
        caused.append(next(counts, 0))
    return Fed(actions, found, caused)
