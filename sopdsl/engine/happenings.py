"""Events as they change members and groups, and the playbooks they start or resume."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any, Final, TypeVar, cast
from zoneinfo import ZoneInfo

import msgspec

from sopdsl import lang
from sopdsl.engine import trace
from sopdsl.engine.arming import _Arming
from sopdsl.engine.events import Event, validate
from sopdsl.engine.parts import _MEMBER_ONLY, _Compiled, membership
from sopdsl.engine.state import Flow, GroupState, MemberState, WaitEvent, WaitTask
from sopdsl.engine.trigger_absence import ABSENCE
from sopdsl.engine.trigger_counts import GROUP_SIZE, THRESHOLD
from sopdsl.engine.trigger_event import EVENT
from sopdsl.plan import CompiledPlaybook, timeutil

# Bound once by mypyc (a class from a module it leaves out is otherwise looked up per use): what
# `feed_all` tests every item it is given against.
_EVENT: Final = Event
# An event's fields in order, as one tuple: `feed_all` and `_event` read them by place.
_FIELDS: Final = msgspec.structs.astuple
assert Event.__struct_fields__[:5] == ("kind", "time", "member", "group", "data"), (
    "feed_all and _event read them by place"
)
_NAMED: Final = frozenset(("tag", "untag", "custom"))  # the kinds whose key has their name (see `_key`)
_T = TypeVar("_T")


class _Happenings(_Arming):
    """Events as they change members and groups, and the playbooks they start or resume."""

    __slots__ = ()  # the engine's state is in `_Parts`'s slots

    def feed_all(
        self, events: Iterable[Event | _T], number: int = 0, numbers: list[int] | None = None
    ) -> _T | None:
        """Process events in order, each as `Engine.feed` does one (`number`: the first one's, if
        not the next; `numbers`: each one's, for a sharded dry run's part of a timeline); stop at
        the first item that is not an `Event` (a dry run's plan reload, for the caller to apply
        before feeding on) and return it, else None once all are fed.

        A message, the common event, is taken in here, written out in the loop: it moves times and
        one counter, and starts or resumes only what listens to messages (the same steps as any
        event's, in the same order). Two calls a message saved (`feed`, then the message's own),
        and the member and group tables looked up once a loop: 2% of a 10k x 90 dry run.
        """
        members, groups = self.members, self.groups  # filled, never replaced, while this runs
        place = 0
        # An event's class checked once: a dry run's events are a subclass of `Event`, whose
        # `isinstance` test takes the metaclass's slow path (600 instructions, 2% of a dry run).
        known: type = _EVENT
        for item in events:
            if type(item) is not known:
                if not isinstance(item, _EVENT):
                    return item
                known = type(item)
            event = cast(Event, item)
            # Its fields at once: compiled code reads a struct's field through the generic
            # attribute lookup, several times what one `astuple` call costs for all of them.
            fields = _FIELDS(event)
            kind: str = fields[0]
            member_id: str | None = fields[2]
            data = fields[4]
            # A message first, by comparing its text: a set's test hashes a kind decoded anew each line.
            if not ((kind == "message" or kind in _MEMBER_ONLY) and member_id and type(data) is dict):
                validate(event)  # the common kinds are checked inline above
            if not self._started:
                self.start()
            now: int = fields[1]
            heap = self.heap
            # Timers due before it run first; the check is inline, since most events find none.
            if heap and heap[0][0] < now:
                self._run_due(now)
            if now > self.now:
                self.now = now
            if numbers is None:
                self._fed = number or self._fed + 1
                number = 0
            else:
                self._fed = numbers[place]
                place += 1
            self._cause = event  # its text, "e:ID" or "#N", is written when a flow needs it (_origin)
            tally = self.tally  # figures: counted here, where the fields are read already
            if kind != "message":
                if tally is not None:
                    tally.took(kind, fields[3], member_id, data, now)
                self._event(event)
                continue
            assert member_id  # a message needs a member (checked above)
            # The time as the event holds it, an object already: stored as it is, where `now`
            # (a native integer) would make a new one for each place it is stored.
            at: Any = fields[1]
            # Subscripts, not `get` calls: the member and group are almost always known.
            try:
                member = members[member_id]
            except KeyError:
                member = MemberState(id=str(member_id), name=str(data.get("name") or member_id))
                members[member.id] = member
            group_id: str | None = fields[3]
            group = None
            if group_id:
                try:
                    group = groups[group_id]
                except KeyError:
                    group = self.add_group(group_id)
            if tally is not None:  # the engine's own ids: long-lived, their hashes kept, found by identity
                tally.posted(group.id if group is not None else None, member.id, now)
            member.last_message_at = at
            if self._message_absence:
                ABSENCE.posted(self, member, now)
            if group is not None:
                group.last_message_at = at
                silences = self._silence_in_group
                if silences:
                    # The common case written out (a dict lookup and a store): the member's silence in
                    # this group is counting, and its pending timer re-checks from this message.
                    key = membership(member_id, group.id)
                    for _, _, table in silences:
                        if key in table:
                            table[key] = at
                        else:  # not counting there: `posted_in` arms it (and moves the others again)
                            ABSENCE.posted_in(self, member, group, now)
                            break
            windowed, watched, starts = self._message_plan
            if windowed:
                self._window(member, "message", now)
            counters = member.counters
            if watched:
                before = counters.get("messages", 0.0)
                counters["messages"] = before + 1
                self._threshold(member, "messages", before, before + 1)
            else:  # a subscript, not a `get` call: every message pays this
                try:
                    counters["messages"] += 1
                except KeyError:
                    counters["messages"] = 0.0 + 1  # what `_count` makes of an unset counter
            if member_id in self.waits:
                self._resume_waiting(member_id, "message", event)
            if starts:
                EVENT.started_by(self, starts, event, member, group_id, now)
        return None

    def _event(self, event: Event) -> None:
        fields = _FIELDS(event)  # read at once, as `feed_all` does
        kind: str = fields[0]  # any but a message (`feed_all` takes those in)
        if kind == "task_done":
            self._resume_waiting(None, "task_done", event)
            return
        member_id: str | None = fields[2]
        data = fields[4]
        member = self.members.get(member_id or "")
        if member is None:
            member = MemberState(id=str(member_id), name=str(data.get("name") or member_id))
            self.members[member.id] = member
        group_id: str | None = fields[3]
        group = None
        if group_id:
            group = self.groups.get(group_id)
            if group is None:
                group = self.add_group(group_id)
        now: int = fields[1]
        if kind == "join" and group is None:
            self._contact_added(member, data, now)
        elif kind == "join":
            assert group is not None  # the branch above took joins without a group
            new = member.id not in group.members
            size_before = len(group.members)
            # Absence playbooks whose scope the member enters with this join (not merely
            # another group of the same scope): their silence starts counting now.
            entering = (
                ABSENCE.entering(self, member)
                if new and member.arrived  # a first arrival arms everything below anyway
                else []
            )
            self._joined(member, data, now)
            member.groups = self.sets.share(member.groups | {group.id})
            group.members.add(member.id)
            if new and not member.arrived:
                member.arrived = True
                self._arm_member(member, now)
            elif new:
                ABSENCE.joined(self, member, group, entering, now)
            GROUP_SIZE.joined(self, group, size_before, now)
            if kind in self.windows:
                self._window(member, kind, now)
        else:
            self._other_event(event, member, group, now)
        key = self._key(event) if kind in _NAMED else kind  # `_key`, called only where a name counts
        if member.id in self.waits:
            self._resume_waiting(member.id, key, event)
        starts = self._event_index.get(key)
        if starts:
            EVENT.started_by(self, starts, event, member, group_id, now)

    def _joined(self, member: MemberState, data: dict[str, Any], now: int) -> None:
        """What a join tells of the member (name, nickname, channel, who invited them) and when."""
        if data:
            if data.get("name"):
                member.name = str(data["name"])
            if data.get("nickname"):
                member.nickname = str(data["nickname"])
            if data.get("channel"):
                member.channel = str(data["channel"])
            if data.get("inviter") and not member.referrer:
                member.referrer = str(data["inviter"])
        if member.joined_at is None:
            member.joined_at = now

    def _contact_added(self, member: MemberState, data: dict[str, Any], now: int) -> None:
        """A join without a group: the member became a contact (a WeCom friend) in private chats."""
        self._joined(member, data, now)
        self.contacts.add(member.id)
        if not member.arrived:
            member.arrived = True
            self._arm_member(member, now)

    def _held_back(self, pb: CompiledPlaybook, last: int | None, now: int, tz: ZoneInfo) -> str | None:
        """Why `active` or `repeat` keeps a playbook from starting again (None: nothing does)."""
        if not self._active(pb, now, tz):
            return trace.INACTIVE
        if last is None:
            return None
        if pb.repeat is lang.Repeat.ONCE:
            return trace.RAN_ONCE
        if (
            pb.repeat is lang.Repeat.COOLDOWN
            and pb.cooldown is not None
            and now < timeutil.add(last, pb.cooldown, tz)
        ):
            return trace.COOLING_DOWN
        return None

    def _start_group_flow(self, c: _Compiled, group: GroupState, trigger: str, now: int) -> None:
        """A group-level trigger fired: `active`, `repeat` and `when` apply per group, as per member."""
        pb = c.playbook
        tz = group.zone
        key = "\x00group:" + group.id  # cannot clash with a member id from a bot
        entered = self.entered.get(c.index)
        if self._held_back(pb, entered.get(key) if entered is not None else None, now, tz) is not None:
            return
        if c.guard is not None and not self._holds(c.guard, c, "when", None, group, {}, now, tz, trigger):
            return
        if entered is None:
            entered = self.entered[c.index] = {}
        entered[key] = now
        self._begin(c, -1, None, group, trigger, {}, now)

    def _other_event(self, event: Event, member: MemberState, group: GroupState | None, now: int) -> None:
        """State changes of the rarer event kinds (everything but messages and joins)."""
        kind = event.kind
        changed: list[tuple[str, float]] = []
        if kind == "leave":
            if group is None:
                self.contacts.discard(member.id)
                self._end_flows(member.id, None)
            else:
                group.members.discard(member.id)
                member.groups = self.sets.share(member.groups - {group.id})
                self._end_flows(member.id, group.id)
        elif kind == "order":
            member.last_order_at = now
            changed.append(("orders", 1))
            amount = event.data.get("amount")
            if isinstance(amount, int | float):
                changed.append(("spent", float(amount)))
            ABSENCE.rearm(self, member, self._absence_on.get("order", ()))
        elif kind == "invite":
            member.last_invite_at = now
            changed.append(("invites", 1))
            ABSENCE.rearm(self, member, self._absence_on.get("invite", ()))
        elif kind == "report":
            changed.append(("violations", 1))
        elif kind == "tag":
            member.tags = self.sets.share(member.tags | {str(event.name)})
        elif kind == "untag":
            member.tags = self.sets.share(member.tags - {str(event.name)})
        elif kind == "rename":  # the member changed their group nickname (WeCom reports it)
            member.nickname = str(event.data.get("nickname") or "")
        window = self._key(event) if kind == "custom" else kind  # `checkins in last 7 days`
        if window in self.windows:
            self._window(member, window, now)
        for counter, amount in changed:
            self._count(member, counter, amount)

    def _window(self, member: MemberState, kind: str, now: int) -> None:
        times = member.windows.setdefault(kind, deque())
        times.append(now)
        while times and now - times[0] > self.window_span:
            times.popleft()

    def _count(self, member: MemberState, counter: str, amount: float) -> None:
        counters = member.counters
        before = counters.get(counter, 0.0)
        counters[counter] = before + amount
        if counter in self._watched:
            self._threshold(member, counter, before, before + amount)

    def _key(self, event: Event) -> str:
        kind = event.kind
        if kind == "tag":
            return f"tagged:{event.name}"
        if kind == "untag":
            return f"untagged:{event.name}"
        if kind == "custom":
            return f"custom:{event.name}"
        return kind

    def _resume_waiting(self, member_id: str | None, key: str, event: Event) -> None:
        """Resume the flows a `task_done` (member_id None) or a member's event with this key ends the wait of."""
        if member_id is None:
            task = f"{event.data.get('task')}"  # the key as text, as the task's own key is
            candidates = [
                f for f in self.flows.values() if isinstance(w := f.waiting, WaitTask) and w.key == task
            ]
        else:
            ids = self.waits.get(member_id)
            if not ids:
                return
            # Only flows in a `wait … for` are in `waits`: one type test and a string compare each.
            candidates = [
                f
                for f in map(self.flows.__getitem__, sorted(ids))
                if isinstance(w := f.waiting, WaitEvent) and w.accepts(key, event.data)
            ]
        for flow in candidates:
            self._unwait(flow)
            flow.token += 1
            if member_id is not None:
                flow.event = dict(event.data)
            flow.pc += 1
            self._run(flow)

    def _unwait(self, flow: Flow) -> None:
        if flow.member is not None:
            waiting = self.waits.get(flow.member)
            if waiting is not None:
                waiting.discard(flow.id)
                if not waiting:
                    del self.waits[flow.member]  # an empty set per member that ever waited adds up
        flow.waiting = None

    def _end_flows(self, member_id: str, group_id: str | None, keep: int | None = None) -> None:
        ids = self.member_flows.get(member_id)
        if not ids:
            return
        ended = [flow for flow in (self.flows[i] for i in ids) if flow.group == group_id and flow.id != keep]
        for flow in ended:
            self._unwait(flow)
            self._drop(flow)

    def _drop(self, flow: Flow) -> None:
        """Forget a flow that has ended."""
        if self.flows.pop(flow.id, None) is not None and flow.member is not None:
            ids = self.member_flows.get(flow.member)
            if ids is not None:
                ids.remove(flow.id)
                if not ids:
                    del self.member_flows[flow.member]

    def _threshold(self, member: MemberState, counter: str, before: float, after: float) -> None:
        THRESHOLD.counted(self, member, counter, before, after)
