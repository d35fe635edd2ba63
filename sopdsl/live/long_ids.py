"""Ids a store took before ids were limited (`intake.MAX_ID`): kept, and kept out of its indexes.

Input: a member's or a group's id as the engine acts on it, or a shard's engine as it is loaded.
Output: the id as a store's indexed columns hold it (the id itself, or for one over `MAX_ID` a
shorter stand-in unique to it), a warning naming the shard's over-long ids, once, and their
number, which `Runtime.stats` reports as `ids_over_limit` (`sopdsl_ids_over_limit`).

A member id of 3,000 characters journaled before the limit stayed in its shard's engine: on
PostgreSQL, which indexes at most 2,704 bytes a row, every transaction that stored an action for
it (the outbox orders rows by member) or counted it in the figures failed, and with it every later
tick and feed of the shard. The engine, its journal and the actions keep the id as it is; only
the columns an index reads (an outbox row's order, the figures' members and groups) hold the
stand-in, on every store alike.
"""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING

from sopdsl.live.intake import MAX_ID

if TYPE_CHECKING:
    from sopdsl.engine.engine import Engine

log = logging.getLogger("sopdsl.runtime")

_KEPT = 32  # characters of an over-long id its stand-in starts with, to be recognised by


def bounded(value: str) -> str:
    """`value` as an indexed column holds it: itself, or for an id over `MAX_ID` characters its
    first characters and the SHA-256 of all of it (97 characters)."""
    if len(value) <= MAX_ID:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{value[:_KEPT]}…{digest}"


def tell(shard: str, engine: Engine, told: dict[str, int]) -> None:
    """Warn once (per shard in `told`, with how many it holds) of the ids over `MAX_ID` a shard's
    engine holds."""
    if shard in told:
        return
    long = [("member", m) for m in engine.members if len(m) > MAX_ID]
    long += [("group", g) for g in engine.groups if len(g) > MAX_ID]
    # Kept for `Runtime.stats` (`sopdsl_ids_over_limit`): a log line scrolls away, a gauge stays
    # until the ids are registered anew (the door refuses any new one, so the count only falls).
    told[shard] = len(long)
    if not long:
        return
    shown = ", ".join(f"{kind} '{bounded(i)}' ({len(i)} characters)" for kind, i in long[:5])
    more = f" and {len(long) - 5} more" if len(long) > 5 else ""
    log.warning(
        "sopdsl runtime: shard '%s' holds ids longer than %d characters, journaled before ids were "
        "limited: %s%s. It runs as usual: their flows go on, and the store's outbox and figures name "
        "each by the stand-in shown. No event or registration can name them any more (refused at "
        "the door): find what sent them (no platform's ids are this long) and register the member "
        "or group under its real id",
        shard,
        MAX_ID,
        shown,
        more,
    )
