"""A shard workflow's journal entries applied to its engine, through the engine's public calls only.

Input: entries as the client sends them (the live runtime's journal bodies: `event`, `group`,
`member`, `plan`, and `advance` for a signalled clock), the engine, and plans by hash. Output:
the engine moved on (by `live.shards.play_entry`, the one place an entry becomes engine calls),
and what a plan change did to flows in progress. Also here: which entry
ids a shard has taken (bounded, to fit continue-as-new's payload), plans parsed once per
process, and the snapshot's compression. Deterministic: a workflow replays it.
"""

from __future__ import annotations

import dataclasses
import json
import zlib
from collections.abc import Callable
from typing import Any

from sopdsl.engine.engine import Engine
from sopdsl.engine.versions import PlanChange
from sopdsl.errors import EngineError
from sopdsl.live.shards import play_entry
from sopdsl.plan import Plan, loads

# Entry ids kept for deduplication across continue-as-new: those within this many seconds of the
# engine's clock, at most this many (about 40 bytes each in the payload). A bot's resend after a
# timeout comes within minutes; the live runtime refuses events more than 300 s late anyway.
SEEN_WINDOW = 3600
SEEN_MAX = 10_000

# What one run may hand the next: Temporal refuses payloads over 2 MB (its default
# `limit.blobSize.error`); a margin is kept for the SDK's own framing.
PAYLOAD_LIMIT = 1_900_000

_PLANS: dict[str, Plan] = {}  # parsed plans by hash, shared by the workflows of this process


def apply(engine: Engine, body: dict[str, Any], plans: Callable[[str], Plan]) -> list[PlanChange]:
    """Apply one entry to the engine, as the live runtime plays its journal; what a `plan` entry did
    to flows in progress. `advance` moves a signalled clock."""
    return play_entry(engine, body, plans)


def entry_time(body: dict[str, Any]) -> int:
    """The time an entry carries (0 when it carries none)."""
    return int(body.get("time", body.get("until", 0)))


def trim_seen(seen: dict[str, int], now: int) -> dict[str, int]:
    """The entry ids worth carrying into the next run: recent ones, the newest `SEEN_MAX` at most."""
    recent = [(t, i) for i, t in seen.items() if t >= now - SEEN_WINDOW]
    recent.sort(reverse=True)
    return {i: t for t, i in sorted(recent[:SEEN_MAX])}


def plan_of(plan_hash: str, texts: dict[str, str]) -> Plan:
    """The plan with this hash, parsed once per process (`loads` checks the text against its hash)."""
    plan = _PLANS.get(plan_hash)
    if plan is None:
        text = texts.get(plan_hash)
        if text is None:
            raise EngineError(f"the shard was not given plan {plan_hash[:12]}, which its state names")
        plan = loads(text)
        if plan.content_hash != plan_hash:
            raise EngineError(f"plan text given for {plan_hash[:12]} has hash {plan.content_hash[:12]}")
        if len(_PLANS) > 64:
            _PLANS.clear()
        _PLANS[plan_hash] = plan
    return plan


def payload_size(handover: Any) -> int:
    """About how many bytes a run's handover takes as JSON (the converter's encoding)."""
    return len(json.dumps(dataclasses.asdict(handover), ensure_ascii=False, separators=(",", ":")))


def pack(snapshot: bytes) -> bytes:
    """The engine's snapshot compressed for the workflow's input (msgpack of ids and times shrinks 3-5x)."""
    return zlib.compress(snapshot, 1)


def unpack(blob: bytes) -> bytes:
    """The snapshot `pack` compressed."""
    return zlib.decompress(blob)
