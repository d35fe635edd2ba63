"""What the admin API shows of an engine: a group, a member's live state, the task inbox.

Input: an `Engine` (the live runtime's, or the one inside a shard's Temporal workflow) and the
name of a view with its argument; for the inbox, the task actions decided and staff's marks
(claims, done). Output: plain JSON values. Imported by the admin API (`admin.py`) and by the
Temporal workflow (its `look` and `tasks` updates), so it imports nothing from the web stack:
both modes answer from the same reading of the engine and the same inbox rules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, assert_never

from sopdsl.engine.engine import Engine
from sopdsl.engine.state import Wait, WaitDelivery, WaitEvent, WaitTask
from sopdsl.engine.timers import Resume, Timeout
from sopdsl.live.store_tasks import STAFF_KINDS
from sopdsl.plan import timeutil

__all__ = [
    "STAFF_KINDS",
    "VIEWS",
    "TaskInbox",
    "inbox_tasks",
    "look",
    "open_tasks",
    "report_view",
    "still_shown",
]


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
        if who != member_id or (
            isinstance(timer, Resume | Timeout) and (timer.flow, timer.token) not in live
        ):
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
                "waiting": waiting_view(f.waiting),
            }
            for f in sorted(flows, key=lambda f: f.id)
        ],
        "timers": timers,
    }


def waiting_view(wait: Wait | None) -> dict[str, str] | None:
    """What a flow waits for, as the admin API shows it (None: nothing, or only the clock)."""
    match wait:
        case None:
            return None
        case WaitEvent():
            return {"for": "event", "event": wait.key}
        case WaitTask():
            return {"for": "task", "task": wait.key}
        case WaitDelivery():  # an action the policy holds back (quiet hours, a cap)
            return {"for": "delivery"}
        case _:
            assert_never(wait)


def open_tasks(engine: Engine, key: str = "") -> list[dict[str, Any]]:
    """The open tasks (only the one keyed `key`, when given): flows waiting in an `assign`, with
    the deadline of their `within`."""
    waiting = sorted(
        (
            f
            for f in engine.flows.values()
            if isinstance(f.waiting, WaitTask) and (not key or f.waiting.key == key)
        ),
        key=lambda f: f.id,
    )
    if not waiting:
        return []  # the timer heap, the largest thing read here, is left alone
    deadlines = {(e[5].flow, e[5].token): e[0] for e in engine.heap if isinstance(e[5], Timeout)}
    return [
        {
            "key": flow.waiting.key,
            "playbook": engine.compiled[flow.playbook].playbook.name,
            "member": flow.member,
            "group": flow.group,
            "deadline": _when(engine, deadlines.get((flow.id, flow.token))),
        }
        for flow in waiting
        if isinstance(flow.waiting, WaitTask)
    ]


# What the inbox shows of a task's `task` (or `escalate`) action: whom it is for, the message
# staff are asked to send, its attachments.
_SHOWN = ("text", "to", "assignee", "operator", "template", "message", "attachments", "instead_of", "because")

Rows = Mapping[tuple[str, str], Mapping[str, Any]]  # (kind, key) -> the task action, in order decided
Marks = Mapping[str, Mapping[str, Any]]  # task key -> {"claimed_by": NAME | None, "done": bool}


class TaskInbox(Protocol):
    """Where the admin API reads and marks staff tasks (a store's, or a Temporal shard's)."""

    def tasks(self) -> list[dict[str, Any]]:
        """The inbox, as `inbox_tasks` makes it."""
        ...

    def task(self, key: str) -> dict[str, Any] | None:
        """The inbox's task keyed `key` (None: not in the inbox), read without the rest of it."""
        ...

    def claim(self, key: str, who: str) -> str:
        """Claim a task for `who` unless someone holds it; who holds it now."""
        ...

    def finish(self, key: str) -> None:
        """Mark a task done."""
        ...


def inbox_tasks(open_list: list[dict[str, Any]], rows: Rows, marks: Marks) -> list[dict[str, Any]]:
    """The inbox: the open tasks (as `open_tasks` reads them from the engine), then the tasks no
    flow waits on (a step the platform cannot perform, `instead_of`; an escalation) not yet
    marked done, each with its message, its escalation and its claim."""
    tasks = []
    for task in open_list:
        row = rows.get(("task", task["key"]), {})
        detail = row.get("detail", {})
        shown = {k: detail.get(k) for k in _SHOWN} | {"status": "open", "escalated_to": None}
        tasks.append(task | shown | {"unassigned": _unassigned(row)})
    for (kind, row_key), action in rows.items():
        detail = action.get("detail", {})
        escalated = kind == "escalate"
        key = str(detail.get("task")) if escalated else row_key
        if not (escalated or detail.get("instead_of")) or marks.get(key, {}).get("done"):
            continue
        tasks.append(
            {
                "key": key,
                "playbook": action.get("playbook"),
                "member": action.get("member"),
                "group": action.get("group"),
                "deadline": detail.get("due"),
                **{k: detail.get(k) for k in _SHOWN},
                "assignee": detail.get("undone_by") if escalated else detail.get("assignee"),
                "status": "escalated" if escalated else "open",
                "escalated_to": detail.get("assignee") if escalated else None,
                "unassigned": None if escalated else _unassigned(action),
            }
        )
    for task in tasks:
        task["claimed_by"] = marks.get(task["key"], {}).get("claimed_by")
    return tasks


def _unassigned(action: Mapping[str, Any]) -> str | None:
    # Why the engine named nobody for the task (a member without an owner): staff should pick it up.
    return str(action.get("reason")) if action.get("status") == "unassigned" else None


def still_shown(key: str, action: Mapping[str, Any], open_keys: set[str], marks: Marks) -> bool:
    """Whether a task action can still be in the inbox: its task open in the engine, or (no flow
    waiting on it) not yet marked done. What keeps the rows a Temporal shard carries bounded."""
    detail = action.get("detail", {})
    if action.get("kind") == "escalate":
        return not marks.get(str(detail.get("task")), {}).get("done")
    if detail.get("instead_of"):
        return not marks.get(key, {}).get("done")
    return key in open_keys


def inbox_task(key: str, open_list: list[dict[str, Any]], rows: Rows, marks: Marks) -> dict[str, Any] | None:
    """The inbox's task keyed `key`, as `inbox_tasks` shows it, from the open tasks, rows and marks
    of that key alone (the first where a key is shown twice, as in the whole inbox)."""
    return next((t for t in inbox_tasks(open_list, rows, marks) if t["key"] == key), None)


def report_view(engine: Engine, lo: int, hi: int) -> dict[str, Any]:
    """What a report of engine times [lo, hi) reads of the engine itself (JSON): its groups
    (id, name, tags) and, by playbook, the flows running now that began in the range."""
    running: dict[str, int] = {}
    for flow in engine.flows.values():
        if lo <= flow.started < hi:
            name = engine.compiled[flow.playbook].source.name
            running[name] = running.get(name, 0) + 1
    return {
        "groups": [[g.id, g.name, sorted(g.tags)] for g in engine.groups.values()],
        "running": running,
    }


# The views by name, as `Runtime.look` and the Temporal workflow's `look` update take them.
VIEWS: dict[str, Callable[[Engine, str], Any]] = {
    "group": group_view,
    "member": member_view,
    "tasks": open_tasks,
}


def look(engine: Engine, view: str, argument: str) -> Any:
    """The view named `view` of `engine` (`KeyError` for an unknown name)."""
    return VIEWS[view](engine, argument)
