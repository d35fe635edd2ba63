"""The field types of the records a snapshot keeps (members, groups, flows, actions, waits).

The snapshot codec writes and reads each record by its fields' full types. A class compiled by
mypyc (setup.py) keeps only their outer types in `__annotations__` (`dict` for `dict[str, Any]`,
`type` for `int | None`), so the types are written out here once more, for the compiled build and
the pure one alike. tests/engine/test_record_types.py holds this table to the classes' own
annotations in the pure build: a field added, removed or retyped in a class and not here fails it.
"""

from __future__ import annotations

import typing
from collections import deque
from typing import Any
from zoneinfo import ZoneInfo

from sopdsl.engine.actions import Action
from sopdsl.engine.state import Flow, GroupState, MemberState, Wait, WaitDelivery, WaitEvent, WaitTask

RECORD_TYPES: dict[type[Any], dict[str, Any]] = {
    MemberState: {
        "id": str,
        "name": str,
        "nickname": str,
        "channel": str | None,
        "referrer": str | None,
        "joined_at": int | None,
        "owner": str | None,
        "last_message_at": int | None,
        "last_order_at": int | None,
        "last_invite_at": int | None,
        "tags": frozenset[str],
        "attributes": dict[str, Any],
        "counters": dict[str, float],
        "groups": frozenset[str],
        "windows": dict[str, deque[int]],
        "existing": bool,
        "arrived": bool,
        "group_joined_at": dict[str, int] | None,
        "group_last_message_at": dict[str, int] | None,
    },
    GroupState: {
        "id": str,
        "name": str,
        "zone": ZoneInfo,
        "tags": set[str],
        "operator": str | None,
        "owner": str | None,
        "members": set[str],
        "last_message_at": int | None,
        "dissolved": bool,
    },
    Flow: {
        "id": int,
        "playbook": int,
        "entry": int,
        "member": str | None,
        "group": str | None,
        "pc": int,
        "trigger": str,
        "started": int,
        "event": dict[str, Any],
        "coupon": dict[str, Any] | None,
        "waiting": Wait | None,
        "token": int,
        "arm": str | None,
        "origin": str,
        "acts": int,
    },
    Action: {
        "time": int,
        "kind": str,
        "playbook": str,
        "key": str,
        "member": str | None,
        "group": str | None,
        "target": str,
        "detail": dict[str, Any],
        "status": str,
        "reason": str | None,
        "loc": str,
        "trigger": str,
        "planned": int | None,
    },
    WaitEvent: {"key": str, "same": tuple[tuple[str, str | float | bool | None], ...]},
    WaitTask: {"key": str},
    WaitDelivery: {},
}


def field_types(cls: type[Any]) -> dict[str, Any]:
    """A dataclass's fields' full types: from the table for the engine's records, else its annotations."""
    found = RECORD_TYPES.get(cls)
    return dict(found) if found is not None else typing.get_type_hints(cls)
