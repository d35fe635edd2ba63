"""The engine's state a snapshot keeps, with each piece's type, and the shape hash of it all.

`snapshot.py` writes and reads the state by these types alone (a member, group, flow or action by
its dataclass fields); `Engine.snapshot` and `Engine.restore` use them.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

from sopdsl.engine import snapshot as snapshot_codec
from sopdsl.engine import timers
from sopdsl.engine.actions import Action
from sopdsl.engine.record_types import field_types
from sopdsl.engine.state import WAIT_TYPES, Flow, GroupState, MemberState
from sopdsl.engine.timers import TIMERS, Timer

# The engine's state a snapshot keeps, with each piece's type: `snapshot.py` writes and
# reads it by these types alone (a member, group, flow or action by its dataclass fields).
_SNAPSHOT_STATE: dict[str, Any] = {
    "now": int,
    "start_time": int,
    "seed": int,
    "task_delay": int | None,
    "members": dict[str, MemberState],
    "groups": dict[str, GroupState],
    "flows": dict[int, Flow],
    "waits": dict[str, set[int]],
    "entered": dict[tuple[int, str], int],
    "fired": set[tuple[snapshot_codec.Scalar, ...]],
    # Each timer kind's fields (see `timers.py`), as the positional timers before them were written.
    "heap": snapshot_codec.Heap(
        {
            Timer.RESUME: tuple[int, int],  # flow id, token
            Timer.TIMEOUT: tuple[int, int],
            Timer.ABSENCE: tuple[int],  # trigger index
            Timer.SILENCE_IN: tuple[int, str],  # trigger index, group id
            Timer.DATE: tuple[int],
            Timer.CAL: tuple[int, str],  # calendar entry, group id (or _PRIVATE)
            Timer.GROUP_SILENT: tuple[int, str],  # trigger index, group id
            Timer.DELIVER: tuple[Action, tuple[int, int]],  # the action held, (flow id, token)
            Timer.TASK_DONE: tuple[str],  # the task's key
        },
        lambda timer: (int(timer.KIND), timers.fields_of(timer)),
        lambda kind, fields: timers.from_fields(TIMERS[kind], fields),
    ),
    "member_flows": dict[str, list[int]],
    "contacts": set[str],
    "window_span": int,
    "_seq": int,
    "_flow_ids": int,
    "_started": bool,
    "_instant": int,
    "_started_now": dict[tuple[int, str], str],
    "_fed": int,
}
# Kept beside it: tables the plan's install rebuilds and the snapshot fills in place, and the plans.
_SNAPSHOT_TABLES: dict[str, Any] = {
    "armed": dict[tuple[int, int], dict[str, int]],
    "counts": dict[tuple[int, str, str], int],
    "stock_used": dict[str, int],
    "plan": str,
    "retired": list[tuple[str, int]],
}
_SNAPSHOT_SCHEMA = {**_SNAPSHOT_STATE, **_SNAPSHOT_TABLES}


def _snapshot_format() -> str:
    """The shape of a snapshot: the state kept, its types and the fields of the records in it.

    A field added to a member, group, flow, action or wait, or one whose type changed, changes it,
    so a snapshot written before is replayed from the journal instead of restored into records it
    does not fit.
    """
    records = []
    for cls in (MemberState, GroupState, Flow, Action, *WAIT_TYPES):
        hints = field_types(cls)
        fields = ",".join(
            f"{f.name}:{snapshot_codec.describe_type(hints.get(f.name))}" for f in dataclasses.fields(cls)
        )
        records.append(f"{cls.__name__}({fields})")
    state = snapshot_codec.describe(_SNAPSHOT_SCHEMA)
    return hashlib.sha256("|".join(["2", *state, *records]).encode()).hexdigest()[:16]


SNAPSHOT_FORMAT = _snapshot_format()
