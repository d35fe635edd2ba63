"""The actions the engine decides on: the action log's records and their JSON form."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

STATUSES = ("done", "deferred", "dropped", "blocked", "failed")


@dataclass(slots=True)
class Action:
    """One action: what, to whom, when, from which playbook line, and what the policy did with it."""

    time: int
    kind: str
    playbook: str
    key: str
    member: str | None = None
    group: str | None = None
    target: str = "member"
    detail: dict[str, Any] = field(default_factory=dict)
    status: str = "done"
    reason: str | None = None
    loc: str = ""
    trigger: str = ""
    planned: int | None = None  # when it was first due, if the policy moved it

    def to_json(self, tz: ZoneInfo) -> dict[str, Any]:
        """A JSON-ready dict; times are ISO 8601 in the given zone."""
        data: dict[str, Any] = {
            "at": iso(self.time, tz),
            "kind": self.kind,
            "status": self.status,
            "playbook": self.playbook,
            "target": self.target,
            "member": self.member,
            "group": self.group,
            **self.detail,
            "key": self.key,
        }
        if self.reason:
            data["reason"] = self.reason
        if self.planned is not None and self.planned != self.time:
            data["planned"] = iso(self.planned, tz)
        return data


_LAST: list[Any] = [None, None, ""]  # actions come in bursts at one instant: the last one's text


def iso(epoch: int, tz: ZoneInfo) -> str:
    """An instant as ISO 8601 local time with its offset."""
    if _LAST[0] == epoch and _LAST[1] is tz:
        return str(_LAST[2])
    text = dt.datetime.fromtimestamp(epoch, tz).isoformat()
    _LAST[:] = (epoch, tz, text)
    return text
