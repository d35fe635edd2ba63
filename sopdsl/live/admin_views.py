"""What the admin API shows of an engine: a group, a member's live state, the open tasks.

Input: an `Engine` (the live runtime's, or the one inside a shard's Temporal workflow) and the
name of a view with its argument. Output: plain JSON values. Imported by the admin API
(`admin.py`) and by the Temporal workflow (its `look` update), so it imports nothing from the
web stack: both modes answer from the same reading of the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sopdsl.engine.engine import Engine
from sopdsl.engine.state import WaitTask
from sopdsl.engine.timers import Resume, Timeout
from sopdsl.plan import timeutil


def _when(engine: Engine, epoch: int | None) -> str | None:
    return None if epoch is None else timeutil.aware(epoch, engine.zone).isoformat()


def group_view(engine: Engine, group_id: str) -> dict[str, Any] | None:
    """A group as the engine has it, or None when it has no such group."""
    group = engine.groups.get(group_id)
    if group is None:
        return None
    return {
        "id": group.id,
        "name": group.name,
        "tags": sorted(group.tags),
        "timezone": str(group.zone.key),
        "operator": group.operator,
        "owner": group.owner,
        "members": len(group.members),
    }


def member_view(engine: Engine, member_id: str) -> dict[str, Any] | None:
    """A member's state, the flows they are in (and what each waits for), and their pending timers."""
    member = engine.members.get(member_id)
    if member is None:
        return None
    flows = [f for f in engine.flows.values() if f.member == member_id]
    live = {(f.id, f.token) for f in flows}
    timers = []
    for entry in sorted(engine.heap):
        due, playbook, who, group, _seq, timer = entry
        waited = isinstance(timer, Resume | Timeout)
        if who != member_id or (waited and (timer.flow, timer.token) not in live):
            continue  # another member's, or a wait already over (its timer is dropped when due)
        timers.append(
            {
                "due": _when(engine, due),
                "timer": timer.KIND.name.lower(),
                "playbook": engine.compiled[playbook].playbook.name,
                "group": group or None,
            }
        )
    return {
        "member": {
            "id": member.id,
            "name": member.name,
            "nickname": member.nickname,
            "tags": sorted(member.tags),
            "attributes": member.attributes,
            "counters": member.counters,
            "groups": sorted(member.groups),
            "joined_at": _when(engine, member.joined_at),
            "last_message_at": _when(engine, member.last_message_at),
            "channel": member.channel,
            "referrer": member.referrer,
            "owner": member.owner,
        },
        "flows": [
            {
                "playbook": engine.compiled[f.playbook].playbook.name,
                "group": f.group,
                "started": _when(engine, f.started),
                "waiting": type(f.waiting).__name__ if f.waiting is not None else None,
            }
            for f in sorted(flows, key=lambda f: f.id)
        ],
        "timers": timers,
    }


def open_tasks(engine: Engine, _: str = "") -> list[dict[str, Any]]:
    """The open tasks: flows waiting in an `assign`, with the deadline of their `within`."""
    deadlines = {(e[5].flow, e[5].token): e[0] for e in engine.heap if isinstance(e[5], Timeout)}
    return [
        {
            "key": flow.waiting.key,
            "playbook": engine.compiled[flow.playbook].playbook.name,
            "member": flow.member,
            "group": flow.group,
            "deadline": _when(engine, deadlines.get((flow.id, flow.token))),
        }
        for flow in sorted(engine.flows.values(), key=lambda f: f.id)
        if isinstance(flow.waiting, WaitTask)
    ]


# The views by name, as `Runtime.look` and the Temporal workflow's `look` update take them.
VIEWS: dict[str, Callable[[Engine, str], Any]] = {
    "group": group_view,
    "member": member_view,
    "tasks": open_tasks,
}


def look(engine: Engine, view: str, argument: str) -> Any:
    """The view named `view` of `engine` (`KeyError` for an unknown name)."""
    return VIEWS[view](engine, argument)
