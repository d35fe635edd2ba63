"""The actions the engine decides on: the action log's records and their JSON form."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sopdsl.plan import timeutil

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
    # Why it did not go as planned, and nothing else: why it was moved (with `planned`), dropped,
    # blocked or failed. What the playbook says about an action (a kick's `because`) is in `detail`.
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
# By zone and local day: the day's text before the time ("2026-03-01T") and the offset after it
# ("+08:00"), for days in a stretch of one UTC offset (see `timeutil.stable_offset`).
_DAYS: dict[tuple[ZoneInfo, int], tuple[str, str]] = {}
# "HH:MM:" by minute of the day and "SS" by second: joined, not formatted, per action logged.
_CLOCK = [f"{minute // 60:02d}:{minute % 60:02d}:" for minute in range(1440)]
_SECONDS = [f"{second:02d}" for second in range(60)]
# The local day of the last text written on the arithmetic path: zone, its first and last instant
# (end excluded), and the parts around the time of day.
_WINDOW: list[tuple[ZoneInfo | None, int, int, str, str]] = [(None, 0, 0, "", "")]


def iso(epoch: int, tz: ZoneInfo) -> str:
    """An instant as ISO 8601 local time with its offset."""
    zone, start, end, before, after = _WINDOW[0]
    if zone is tz and start <= epoch < end:
        # The local day of the last text (one offset all day): only the time of day to write.
        minute, second = divmod(epoch - start, 60)
        return before + _CLOCK[minute] + _SECONDS[second] + after
    if _LAST[0] == epoch and _LAST[1] is tz:
        return str(_LAST[2])
    offset = timeutil.stable_offset(epoch, tz)
    if offset is None or offset % 60:
        text = dt.datetime.fromtimestamp(epoch, tz).isoformat()
    else:
        # One offset all day: the day's text once, then the time of day in plain arithmetic.
        day, second = divmod(epoch + offset, 86400)
        parts = _DAYS.get((tz, day))
        if parts is None:
            whole = dt.datetime.fromtimestamp(day * 86400 - offset, tz).isoformat()
            if len(_DAYS) > 10_000:
                _DAYS.clear()
            parts = _DAYS[(tz, day)] = (whole[:11], whole[19:])
        minute, second = divmod(second, 60)
        text = parts[0] + _CLOCK[minute] + _SECONDS[second] + parts[1]
        # The offset holds from a UTC day before to a day after `epoch` (`stable_offset`), so
        # over the whole local day around it.
        start = day * 86400 - offset
        _WINDOW[0] = (tz, start, start + 86400, parts[0], parts[1])
    _LAST[:] = (epoch, tz, text)
    return text
