"""A deliberately simple engine for bench/reference.sop: the rules written out by hand.

It ticks hour by hour and, every hour, scans every member and every group for what falls due in
that hour (a silence deadline, the end of a warning's three days, a year without an order, a
class reminder). It shares nothing with `sopdsl.engine` but the timeline reader and Jinja, so
its action log is an independent check of the engine's, and its speed is the baseline: work
that grows with members × hours, where the engine's grows with events and firings.

Same-instant order, as the engine defines it: the events at an instant in timeline order, then
what falls due at that instant by playbook order, member id, group id.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from jinja2 import Environment, StrictUndefined

from sopdsl.dryrun.timeline import Member, Timeline
from sopdsl.engine.events import Event
from sopdsl.plan import Plan

# Playbook order in bench/reference.sop.
WELCOME, KICK_SPAM, PRUNE, CADENCE, REACTIVATE = range(5)
NAMES = ["welcome", "kick_spam", "prune_silent", "class_cadence", "reactivate"]
PROTECTED = {"core", "staff"}
PRUNE_SCOPE = {"normal", "edu"}
# (weekday, hour, minute, template) of the Tuesday-class reminders, in entry order.
CLASS = [(0, 20, 0, "class_preview"), (1, 18, 0, "class_countdown"), (2, 10, 0, "class_replay")]

Row = tuple[Any, ...]


@dataclass
class _Member:
    name: str
    groups: set[str] = field(default_factory=set)
    tags: set[str] = field(default_factory=set)
    last_message: int | None = None
    last_order: int | None = None
    prune_since: int | None = None  # silence counted from here (None: not counting)
    react_since: int | None = None
    wait_until: int | None = None  # a warned member's last chance to post
    wait_group: str = ""
    prune_due: int | None = None  # when the silence count runs out (kept up to date)
    react_due: int | None = None
    welcomed: bool = False
    reactivated: bool = False
    arrived: bool = False


class SimpleEngine:
    """The reference playbooks over one timeline, by brute force."""

    def __init__(self, plan: Plan, zone: str) -> None:
        self.tz = ZoneInfo(zone)
        jinja = Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
        self.templates = {n: jinja.from_string(t.source) for n, t in plan.declarations.templates.items()}
        self.members: dict[str, _Member] = {}
        self.groups: dict[str, tuple[set[str], set[str]]] = {}  # id -> (tags, member ids)
        self.log: list[Row] = []

    def _days(self, epoch: int, days: int) -> int:
        moment = dt.datetime.fromtimestamp(epoch, self.tz) + dt.timedelta(days=days)
        return int(moment.timestamp())

    def _dues(self, m: _Member) -> None:
        """Recompute a member's deadlines after their counts or last times changed."""
        m.prune_due = (
            None
            if m.prune_since is None
            else self._days(max(m.prune_since, m.last_message or m.prune_since), 28)
        )
        m.react_due = (
            None
            if m.react_since is None
            else self._days(max(m.react_since, m.last_order or m.react_since), 365)
        )

    def _prune_applies(self, m: _Member) -> bool:
        return any(self.groups[g][0] & PRUNE_SCOPE for g in m.groups)

    def _send(self, now: int, pb: int, member: str | None, group: str, template: str) -> None:
        data = {"member": {"name": self.members[member].name}} if member else {}
        text = self.templates[template].render(data).strip()
        self.log.append((now, "send", NAMES[pb], member, group, template, text, "done"))

    def _kick(self, now: int, pb: int, member: str, group: str, reason: str) -> None:
        m = self.members[member]
        if m.tags & PROTECTED:
            self.log.append((now, "kick", NAMES[pb], member, group, reason, None, "blocked"))
            return
        self.log.append((now, "kick", NAMES[pb], member, group, reason, None, "done"))
        m.groups.discard(group)
        self.groups[group][1].discard(member)
        if m.wait_group == group:
            m.wait_until = None

    # ---- events --------------------------------------------------------------------------------

    def _event(self, e: Event) -> None:
        now, member_id = e.time, str(e.member)
        m = self.members.get(member_id)
        if m is None:
            m = self.members[member_id] = _Member(name=str(e.data.get("name") or member_id))
        if e.kind == "join":
            group = str(e.group)
            tags, people = self.groups[group]
            new = member_id not in people
            prune_before, react_before = self._prune_applies(m), bool(m.groups)
            if e.data.get("name"):
                m.name = str(e.data["name"])
            m.groups.add(group)
            people.add(member_id)
            if new and not m.arrived:
                m.arrived = True
                if self._prune_applies(m):
                    m.prune_since = now
                m.react_since = now
            elif new:
                # Entering a playbook's scope anew restarts its silence count (as the engine does).
                if not prune_before and self._prune_applies(m):
                    m.prune_since = now
                if not react_before:
                    m.react_since = now
            if "normal" in tags and not m.welcomed and not m.name.startswith("AAA"):
                m.welcomed = True
                self._send(now, WELCOME, member_id, group, "welcome")
                self.log.append((now, "grant", "welcome", member_id, group, "new50", None, "done"))
                m.tags.add("newcomer")
                self.log.append((now, "tag", "welcome", member_id, group, "newcomer", None, "done"))
            if m.name.startswith("AAA") and not m.tags & PROTECTED:
                self._kick(now, KICK_SPAM, member_id, group, "广告号")
        elif e.kind == "message":
            m.last_message = now
            if m.prune_since is None and self._prune_applies(m):
                m.prune_since = now
            m.wait_until = None  # a warned member who posts is kept
        elif e.kind == "order":
            m.last_order = now
            if m.react_since is None and m.groups:
                m.react_since = now
        elif e.kind == "leave":
            group = str(e.group)
            m.groups.discard(group)
            self.groups[group][1].discard(member_id)
            if m.wait_group == group:
                m.wait_until = None
        if e.kind != "leave":
            self._dues(m)

    # ---- what falls due ------------------------------------------------------------------------

    def _due(self, low: int, high: int) -> list[tuple[int, int, str, str, str]]:
        """Everything due in [low, high): a scan of every member and every group."""
        found = []
        for member_id, m in self.members.items():
            due = m.prune_due
            if due is not None and low <= due < high:
                found.append((due, PRUNE, member_id, "", "prune"))
            due = m.wait_until
            if due is not None and low <= due < high:
                found.append((due, PRUNE, member_id, m.wait_group, "timeout"))
            due = m.react_due
            if due is not None and low <= due < high:
                found.append((due, REACTIVATE, member_id, "", "react"))
        wall = dt.datetime.fromtimestamp(low, self.tz)
        for weekday, hour, minute, template in CLASS:
            if wall.weekday() == weekday and wall.hour == hour:
                moment = int(wall.replace(minute=minute, second=0).timestamp())
                if low <= moment < high:
                    for group_id, (tags, _) in self.groups.items():
                        if "edu" in tags:
                            found.append((moment, CADENCE, "", group_id, template))
        return found

    def _fire(self, due: int, pb: int, member_id: str, group_id: str, what: str) -> None:
        if pb == CADENCE:
            self._send(due, CADENCE, None, group_id, what)
            return
        m = self.members[member_id]
        if what == "timeout":
            if m.wait_until == due:
                m.wait_until = None
                self._kick(due, PRUNE, member_id, m.wait_group, "潜水超过四周")
            return
        if what == "prune":
            if m.prune_since is None:
                return
            if m.prune_due != due:
                return  # moved by a message since the scan
            m.prune_since = m.prune_due = None
            if not self._prune_applies(m) or m.tags & PROTECTED:
                return
            group = min(g for g in m.groups if self.groups[g][0] & PRUNE_SCOPE)
            self._send(due, PRUNE, member_id, group, "we_miss_you")
            m.wait_until, m.wait_group = self._days(due, 3), group
            return
        if m.react_since is None or m.react_due != due:
            return
        m.react_since = m.react_due = None
        if not m.groups or m.reactivated:
            return
        m.reactivated = True
        group = min(m.groups)
        m.tags.add("dormant")
        self.log.append((due, "tag", "reactivate", member_id, group, "dormant", None, "done"))
        self._send(due, REACTIVATE, member_id, group, "come_back")

    # ---- the clock -----------------------------------------------------------------------------

    def run(self, timeline: Timeline) -> list[Row]:
        """Run the whole timeline; the log as comparable rows."""
        header = timeline.header
        for group in header.groups:
            self.groups[group.id] = (set(group.tags), set())
        start, end = header.start, header.end or header.start
        events = iter(timeline.records())
        pending: Event | None = None
        for record in events:
            if isinstance(record, Member):
                m = self.members[record.id] = _Member(name=record.name or record.id, arrived=True)
                m.tags = set(record.tags)
                m.groups = set(record.groups)
                for g in record.groups:
                    self.groups[g][1].add(record.id)
            else:
                pending = record
                break
        for m in self.members.values():
            if self._prune_applies(m):
                m.prune_since = start
            if m.groups:
                m.react_since = start
            self._dues(m)
        hour = start
        while hour <= end:
            high = min(hour + 3600, end + 1)
            batch: list[Event] = []
            while pending is not None and pending.time < high:
                batch.append(pending)
                pending = next(events, None)  # type: ignore[arg-type]
            due = sorted(self._due(hour, high))
            # An instant's events first, then what is due at it; earlier instants first.
            instants = sorted({e.time for e in batch} | {d[0] for d in due})
            for instant in instants:
                for event in batch:
                    if event.time == instant:
                        self._event(event)
                for item in due:
                    if item[0] == instant:
                        self._fire(*item)
            hour = high
        return self.log


def engine_rows(actions: list[Any]) -> list[Row]:
    """The engine's actions as the same rows the simple engine logs."""
    rows = []
    for a in actions:
        d = a.detail
        what = d.get("template") or d.get("coupon") or ",".join(d.get("tags", ())) or d.get("because")
        rows.append((a.time, a.kind, a.playbook, a.member, a.group, what, d.get("text"), a.status))
    return rows


def log_rows(path: Path) -> list[Row]:
    """The rows of an action log as `sopdsl simulate --format jsonl` writes it (the bench's engine
    runs write theirs so); a kick's text is its `because` (its `reason`, when blocked, is the policy's)."""
    decode = msgspec.json.Decoder().decode
    rows = []
    with path.open("rb") as stream:
        for line in stream:
            a = decode(line)
            what = a.get("template") or a.get("coupon") or ",".join(a.get("tags", ())) or a.get("because")
            at = int(dt.datetime.fromisoformat(a["at"]).timestamp())
            rows.append(
                (at, a["kind"], a["playbook"], a["member"], a["group"], what, a.get("text"), a["status"])
            )
    return rows
