"""The engine: one state machine for simulation and live use, driven by whoever owns the clock.

Input: a compiled `Plan`, initial groups and members, then events (`feed`) and the passing of
time (`advance`). Output: `Action` records, in a deterministic order. The engine never reads a
clock or an unseeded random source: the simulator advances it through a timeline, the live
runtime advances it to the wall clock. Its work grows with events and firings: timers sit in one
heap, and a message re-arms a silence deadline without touching the heap (the stale timer is
re-checked when it comes due).

Same-instant order: events in the order fed; then timers due at that instant, ordered by due
time, playbook order, member id and creation order.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import heapq
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, cast
from zoneinfo import ZoneInfo

from jinja2 import Template, TemplateError, nodes

from sopdsl.checker import model
from sopdsl.engine import snapshot as snapshot_codec
from sopdsl.engine import trace, versions
from sopdsl.engine.actions import Action
from sopdsl.engine.conditions import Stock, Test, compile_cond, playbook_windows
from sopdsl.engine.events import Event, validate
from sopdsl.engine.policy import Delivery
from sopdsl.engine.state import Flow, GroupState, MemberState
from sopdsl.engine.trace import Tracer
from sopdsl.engine.versions import PlanChange
from sopdsl.errors import EngineError
from sopdsl.plan import Instr, Plan, event_key, timeutil
from sopdsl.templating import environment
from sopdsl.templating import render as render_template
from sopdsl.vocabulary import BUILTIN_COUNTERS

# Timer kinds.
_RESUME, _TIMEOUT, _ABSENCE, _DATE, _CAL, _GROUP_SILENT, _DELIVER, _TASK_DONE = range(8)
_FLOW_TIMERS = frozenset((_RESUME, _TIMEOUT, _DELIVER, _TASK_DONE))  # kept across a plan reload
# The engine's state a snapshot keeps, with each piece's type: `runtime/snapshot.py` writes and
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
    # Each timer kind's payload (see `_fire`).
    "heap": snapshot_codec.Heap(
        {
            _RESUME: tuple[int, int],  # flow id, token
            _TIMEOUT: tuple[int, int],
            _ABSENCE: tuple[int],  # trigger index
            _DATE: tuple[int],
            _CAL: tuple[int, str],  # calendar entry, group id (or _PRIVATE)
            _GROUP_SILENT: tuple[int, str],  # trigger index, group id
            _DELIVER: tuple[Action, tuple[int, int]],  # the action held, (flow id, token)
            _TASK_DONE: tuple[str],  # the task's key
        }
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

    A field added to a member, group, flow or action changes it, so a snapshot written before is
    replayed from the journal instead of restored into records it does not fit.
    """
    records = [
        f"{cls.__name__}({','.join(f.name for f in dataclasses.fields(cls))})"
        for cls in (MemberState, GroupState, Flow, Action)
    ]
    state = snapshot_codec.describe(_SNAPSHOT_SCHEMA)
    return hashlib.sha256("|".join(["2", *state, *records]).encode()).hexdigest()[:16]


SNAPSHOT_FORMAT = _snapshot_format()
_MEMBER_ONLY = frozenset(("message", "order", "invite", "report"))  # kinds needing only a member
_MAX_CASCADE = 32  # tag events caused by tag actions: a loop of playbooks stops here
_PRIVATE = "\x00private"  # the calendar key of `in private chats` entries (no group)
_GRACE = 60  # a timer this late (seconds) was missed while the runtime was down

Sink = Callable[[Action], None]


class _Compiled:
    """A playbook of one plan version, with its conditions compiled."""

    def __init__(
        self,
        index: int,
        plan: Plan,
        position: int,
        referrer: Callable[[str], MemberState | None],
        counters: frozenset[str],
        stock: Stock,
    ) -> None:
        compiled = plan.playbooks[position]
        self.index = index
        self.source = compiled
        # The plan version it comes from (and its place there): a flow finishing on an earlier
        # version still finds the templates and coupons that version declared.
        self.plan = plan
        self.position = position
        self.program = plan.program
        self.version = plan.content_hash[:12]
        self.playbook = compiled.playbook
        self.code = compiled.code
        self.schedule = compiled.schedule
        pb = compiled.playbook
        self.guard: Test | None = (
            compile_cond(pb.guard, referrer, counters, stock) if pb.guard is not None else None
        )
        self.entry_conds: list[Test | None] = [
            compile_cond(e.cond, referrer, counters, stock) if e.cond is not None else None
            for e in pb.schedule
        ]
        self.branch_conds: dict[tuple[int, int], Test] = {}
        # Each split is named by its place among the playbook's splits and its arms, never by its
        # line: editing a comment above a running A/B test must not reassign its members.
        self.split_names: dict[tuple[int, int], str] = {}
        for entry, code in [(-1, self.code), *enumerate(self.schedule)]:
            for pc, instr in enumerate(code):
                if instr.cond is not None:
                    self.branch_conds[(entry, pc)] = compile_cond(instr.cond, referrer, counters, stock)
                if instr.arms:
                    arms = "/".join(arm.name for arm in instr.arms)
                    self.split_names[(entry, pc)] = f"split{len(self.split_names)}:{arms}"

    def code_of(self, entry: int) -> tuple[Instr, ...]:
        return self.code if entry < 0 else self.schedule[entry]


class Engine:
    """Runs a plan over members and groups; see the module docstring for its contract."""

    def __init__(
        self,
        plan: Plan,
        *,
        start: int,
        seed: int = 0,
        task_delay: int | None = None,
        keep_log: bool = True,
    ) -> None:
        self.seed = seed
        self.now = start
        self.start_time = start
        self.task_delay = task_delay  # simulation: staff finish tasks after this long; None: never
        self.members: dict[str, MemberState] = {}
        self.groups: dict[str, GroupState] = {}
        self.flows: dict[int, Flow] = {}
        self.waits: dict[str, set[int]] = {}
        self.entered: dict[tuple[int, str], int] = {}
        self.fired: set[tuple[Any, ...]] = set()
        self.heap: list[tuple[Any, ...]] = []
        self.log: list[Action] = []
        self.keep_log = keep_log  # False: actions only go to the sinks (long streamed runs)
        self.sinks: list[Sink] = []
        self.tracer: Tracer | None = None  # told of each decision to start a playbook (sopdsl why)
        self._seq = 0
        self._flow_ids = 0
        self._depth = 0
        self.delivery = Delivery(plan.program.policy, plan.program.coupons)
        self.window_span = 400 * 86400
        # Flow ids per member, so ending a member's flows in a group does not scan every flow.
        self.member_flows: dict[str, list[int]] = {}
        # Members reached in one-to-one chats (a join without a group): `in private chats` scope.
        self.contacts: set[str] = set()
        self._started = False
        # Which trigger started each (playbook, member) at the instant `_instant`: a playbook
        # whose triggers fire together runs once.
        self._instant = start
        self._started_now: dict[tuple[int, str], str] = {}
        # Events fed so far, and what is being processed now (an event, a timer, a tag action):
        # a flow started now takes it as its origin, from which its actions' keys derive.
        self._fed = 0
        self._cause = ""
        self._install(plan, [])

    def _install(self, plan: Plan, retired: list[tuple[Plan, int]]) -> None:
        """Build the tables the engine reads from a plan; `retired` playbooks (an earlier plan and
        a place in it) only finish flows."""
        program = plan.program
        self.plan = plan
        self.program = program
        self.zone = timeutil.zone(program.timezone)
        # A counter nobody has added to yet reads 0, so `member.warnings < 1` holds for a newcomer.
        counters = frozenset(BUILTIN_COUNTERS) | frozenset(program.counters)
        for earlier, _ in retired:
            counters |= frozenset(earlier.program.counters)
        # `coupon X in stock` reads the delivery counters at the moment it is tested.
        stock = self.delivery.left
        self.live = [
            _Compiled(i, plan, i, self.members.get, counters, stock) for i in range(len(plan.playbooks))
        ]
        # Playbooks of earlier versions that flows in progress finish on: after the live ones, so
        # a flow's index stays valid, and never armed or started.
        self.compiled = self.live + [
            _Compiled(len(self.live) + k, earlier, position, self.members.get, counters, stock)
            for k, (earlier, position) in enumerate(retired)
        ]
        self.windows: set[str] = set().union(*(playbook_windows(c.source) for c in self.compiled))
        self._triggers: dict[str, list[tuple[_Compiled, int, Any]]] = {}
        for c in self.live:
            for t_index, trigger in enumerate(c.playbook.triggers):
                self._triggers.setdefault(trigger.kind, []).append((c, t_index, trigger))
        # Looked up once per event, so kept out of the pydantic plan: which absence deadlines an
        # event kind re-arms, which counters a threshold watches, which playbooks an event starts.
        self._absence_on: dict[str, list[tuple[_Compiled, int, Any]]] = {}
        for c, t_index, trigger in self._triggers.get("absence", ()):
            self._absence_on.setdefault(trigger.event.value, []).append((c, t_index, trigger))
        self._watched = {trigger.counter for _, _, trigger in self._triggers.get("threshold", ())}
        # Armed absence deadlines: (playbook, trigger) -> member -> when the member came into
        # scope. Keyed by member id inside, so a message asks with a string it already hashed.
        self.armed: dict[tuple[int, int], dict[str, int]] = {
            (c.index, t_index): {} for c, t_index, _ in self._triggers.get("absence", ())
        }
        self._message_absence = [
            (c, t_index, self.armed[(c.index, t_index)])
            for c, t_index, _ in self._absence_on.get("message", ())
        ]
        self._event_index = dict(plan.event_index)
        self._referrer_steps: dict[int, bool] = {}  # by id of a plan step, which lives as long
        self._counter_names = counters

    # ---- set-up ------------------------------------------------------------------------------

    def add_group(
        self,
        group_id: str,
        *,
        name: str | None = None,
        tags: Iterable[str] = (),
        zone: str | None = None,
        operator: str | None = None,
        owner: str | None = None,
    ) -> GroupState:
        """Register a group (from a fixture or a store) before or while running."""
        declared = self.program.groups.get(group_id)
        tz = timeutil.zone(
            zone or (declared.timezone if declared and declared.timezone else self.program.timezone)
        )
        group = GroupState(
            id=group_id,
            name=name or (declared.title if declared and declared.title else group_id),
            zone=tz,
            tags=set(tags) | (set(declared.tags) if declared else set()),
            operator=operator or (declared.operator if declared else None),
            owner=owner,
        )
        self.groups[group_id] = group
        if self._started:
            self._arm_group(group)
        return group

    def add_member(
        self,
        member_id: str,
        *,
        name: str = "",
        nickname: str = "",
        tags: Iterable[str] = (),
        attributes: dict[str, Any] | None = None,
        groups: Iterable[str] = (),
        joined_at: int | None = None,
        referrer: str | None = None,
        channel: str | None = None,
        counters: dict[str, float] | None = None,
        contact: bool = False,
    ) -> MemberState:
        """Register a member present before the plan took effect (or found since: armed from now).

        Registering a member the engine knows adds what is given (tags, attributes, counters,
        groups, non-empty fields) and keeps what it knows (activity, timers).
        """
        member = self.members.get(member_id)
        if member is None:
            member = MemberState(id=member_id, name=member_id, existing=True)
            self.members[member_id] = member
        member.name = name or member.name
        member.nickname = nickname or member.nickname
        member.channel = channel or member.channel
        member.referrer = referrer or member.referrer
        member.joined_at = joined_at if joined_at is not None else member.joined_at
        member.tags |= set(tags)
        member.attributes.update(attributes or {})
        member.counters.update(counters or {})
        if contact:
            self.contacts.add(member_id)
        for group_id in groups:
            if group_id not in self.groups:
                self.add_group(group_id)
            member.groups.add(group_id)
            self.groups[group_id].members.add(member_id)
        if self._started and not member.arrived:
            # Registered late (a bot syncing its member list after the first event): their
            # silence and dates count from now, as `start` does for those registered before.
            member.arrived = True
            self._arm_member(member, self.now)
        return member

    def start(self) -> None:
        """Arm every calendar entry and every per-member deadline as of the start time."""
        if self._started:
            return
        self._started = True
        for member in self.members.values():
            member.arrived = True
        for group in sorted(self.groups.values(), key=lambda g: g.id):
            self._arm_group(group)
            for c, t_index, trigger in self._triggers.get("group_size", ()):
                if len(group.members) >= trigger.threshold:
                    # Reached before the plan took effect: "reaches" never fires for it.
                    self.fired.add(("size", c.index, t_index, group.id))
        for member in sorted(self.members.values(), key=lambda m: m.id):
            self._arm_member(member, self.start_time)
        self._arm_private()

    def _arm_private(self) -> None:
        """Arm the calendar entries of `in private chats` playbooks (one timer each, for every contact)."""
        for c in self.live:
            if c.playbook.scope.kind == "private":
                for e_index, entry in enumerate(c.playbook.schedule):
                    due = self._next_calendar(entry.when, self.zone, self.now)
                    if due is not None:
                        self._push(due, _CAL, c.index, "", e_index, _PRIVATE)

    def reload(self, plan: Plan, *, at: int | None = None) -> list[PlanChange]:
        """Switch to another version of the plan at `at`, keeping every member's and group's state.

        Timers due by `at` run first, under the version they were set by. Then calendars and
        triggers are armed from the new version, and each flow in progress goes on as the new
        version of its playbook declares (`on change finish` or `migrate`; a playbook whose steps
        did not change just goes on). Returns what happened to each flow moved, finished or ended.
        """
        if not plan.content_hash:
            plan = plan.with_hash()
        if plan.content_hash == self.plan.content_hash:
            return []
        if self._started and at is not None:
            self.advance(at)
        old_live, old_compiled, old_armed = self.live, self.compiled, self.armed
        new_index = {c.playbook.name: i for i, c in enumerate(plan.playbooks)}
        version = plan.content_hash[:12]
        changes: list[PlanChange] = []
        retired: list[tuple[Plan, int]] = []
        retired_at: dict[int, int] = {}  # old index -> index among the retired
        moves: list[tuple[Flow, int, int]] = []
        for flow in sorted(self.flows.values(), key=lambda f: f.id):
            c = old_compiled[flow.playbook]
            j = new_index.get(c.playbook.name)
            if flow.playbook >= len(old_live) and c.plan.content_hash != plan.content_hash:
                j = None  # finishing on an earlier version: it stays there (unless that one returns)
            new = plan.playbooks[j] if j is not None else None
            at_step = c.code_of(flow.entry)[flow.pc].loc
            change = functools.partial(
                PlanChange, c.playbook.name, flow.member, flow.group, old=c.version, new=version
            )
            if new is not None and versions.same_steps(c.source, new):
                moves.append((flow, cast(int, j), flow.pc))
            elif new is not None and new.playbook.on_change is model.OnChange.MIGRATE:
                pc = versions.map_position(c.source, new, flow.entry, flow.pc)
                if pc is None:
                    changes.append(change(versions.ENDED, at=at_step))
                    self._unwait(flow)
                    self._drop(flow)
                else:
                    moves.append((flow, cast(int, j), pc))
                    code = new.code if flow.entry < 0 else new.schedule[flow.entry]
                    changes.append(change(versions.MOVED, at=code[pc].loc))
            else:
                if flow.playbook not in retired_at:
                    retired_at[flow.playbook] = len(retired)
                    retired.append((c.plan, c.position))
                moves.append((flow, len(plan.playbooks) + retired_at[flow.playbook], flow.pc))
                changes.append(change(versions.FINISHES, at=at_step))
        self.delivery = self.delivery.moved_to(plan.program.policy, plan.program.coupons)
        self._install(plan, retired)
        for flow, index, pc in moves:
            flow.playbook, flow.pc = index, pc
            instr = self.compiled[index].code_of(flow.entry)[pc]
            if instr.op == "wait_for" and flow.waiting not in (None, "deliver"):
                assert instr.pattern is not None
                flow.waiting = event_key(instr.pattern)  # an edited `wait for` waits for its new event
        self._carry_over(old_live, old_armed)
        return changes

    def _carry_over(
        self, old_live: list[_Compiled], old_armed: dict[tuple[int, int], dict[str, int]]
    ) -> None:
        """After a reload: keep what triggers the new version shares with the old one did; re-arm the rest."""
        same: dict[tuple[int, int], tuple[int, int]] = {}  # old (playbook, trigger) -> new
        by_name = {c.playbook.name: c for c in self.live}
        for old in old_live:
            c = by_name.get(old.playbook.name)
            if c is None:
                continue
            for t_index, trigger in enumerate(old.playbook.triggers):
                if t_index < len(c.playbook.triggers) and versions.same_trigger(
                    trigger, c.playbook.triggers[t_index]
                ):
                    same[(old.index, t_index)] = (c.index, t_index)
        self.entered = {
            (by_name[name].index, who): t
            for (i, who), t in self.entered.items()
            if i < len(old_live) and (name := old_live[i].playbook.name) in by_name
        }
        fired: set[tuple[Any, ...]] = set()
        for key in self.fired:
            moved = same.get((key[1], key[2]))
            if moved is not None:
                fired.add((key[0], *moved, *key[3:]))
        self.fired = fired
        self._started_now.clear()  # keyed by the old version's playbooks
        earlier: dict[tuple[int, int], int] = {}  # absences carried over with their members: old playbook
        for (i, t_index), table in old_armed.items():
            moved = same.get((i, t_index))
            if moved is not None and moved in self.armed:
                self.armed[moved].update(table)
                earlier[moved] = i
        # Timers of triggers and calendars are set again from the new version; flows' own stay.
        self.heap = [e for e in self.heap if e[5] in _FLOW_TIMERS]
        heapq.heapify(self.heap)
        if not self._started:
            return
        for group in sorted(self.groups.values(), key=lambda g: g.id):
            self._arm_group(group)
            for c, t_index, trigger in self._triggers.get("group_size", ()):
                if (c.index, t_index) not in same.values() and len(group.members) >= trigger.threshold:
                    self.fired.add(("size", c.index, t_index, group.id))  # as at start: reached before
        for (i, t_index), table in self.armed.items():
            if (i, t_index) in earlier:
                trigger = cast(model.OnAbsence, self.compiled[i].playbook.triggers[t_index])
                for member_id, since in sorted(table.items()):
                    last = self._last(self.members[member_id], trigger.event)
                    due = timeutil.add(max(since, last or since), trigger.duration, self.zone)
                    self._push(due, _ABSENCE, i, member_id, t_index)
        for member in sorted(self.members.values(), key=lambda m: m.id):
            if not member.arrived:
                continue
            for c, t_index, _trigger in self._triggers.get("absence", ()):
                if not self._absence_applies(c.playbook, member):
                    continue
                if (c.index, t_index) not in earlier:
                    self._arm_absence(c, t_index, member, self.now)
                elif member.id not in self.armed[(c.index, t_index)]:
                    # Not counting: their silence already fired, or the old version did not
                    # apply to them (a wider scope, `apply to all members` added): from now.
                    before = old_live[earlier[(c.index, t_index)]].playbook
                    if not self._absence_applies(before, member):
                        self._arm_absence(c, t_index, member, self.now)
            for kind in ("date_offset", "anniversary"):
                for c, t_index, trigger in self._triggers.get(kind, ()):
                    if self._member_in_scope(c.playbook, member):
                        self._arm_date(c, t_index, trigger, member)
        self._arm_private()

    @property
    def started(self) -> bool:
        """Whether the engine has armed its timers (at its first event or advance)."""
        return self._started

    # ---- snapshots ---------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """The engine's state as bytes, for `Engine.restore`; its plans are named by hash, not included.

        Taken between calls (never from a sink or tracer). The log, sinks and tracer are not kept.
        Data only (see `runtime/snapshot.py`); raises `EngineError` if some state cannot be written.
        """
        state = {name: getattr(self, name) for name in _SNAPSHOT_STATE}
        state["armed"] = self.armed
        state["counts"] = self.delivery.counts
        state["stock_used"] = self.delivery.stock_used
        state["plan"] = self.plan.content_hash
        state["retired"] = [(c.plan.content_hash, c.position) for c in self.compiled[len(self.live) :]]
        return snapshot_codec.encode(state, _SNAPSHOT_SCHEMA, SNAPSHOT_FORMAT)

    @classmethod
    def restore(cls, blob: bytes, plans: Callable[[str], Plan], *, keep_log: bool = True) -> Engine:
        """An engine in the state `snapshot` saved; `plans` gives a plan by its hash.

        Raises `EngineError` saying why for a blob that is not a snapshot of this sopdsl's format
        (a pickle of an older version, another format, a truncated or foreign blob): the caller
        replays the journal instead. Nothing in the blob is ever run or imported.
        """
        state = snapshot_codec.decode(blob, _SNAPSHOT_SCHEMA, SNAPSHOT_FORMAT)
        plan = plans(state["plan"])
        engine = cls(plan, start=state["start_time"], seed=state["seed"], keep_log=keep_log)
        # In place: the compiled conditions hold `members.get` and the delivery counters.
        engine.members.update(state.pop("members"))
        engine.delivery.counts.update(state["counts"])
        engine.delivery.stock_used.update(state["stock_used"])
        for name in _SNAPSHOT_STATE:
            if name in state:
                setattr(engine, name, state[name])
        if state["retired"]:
            retired = [(plans(plan_hash), position) for plan_hash, position in state["retired"]]
            if any(not 0 <= position < len(earlier.playbooks) for earlier, position in retired):
                raise EngineError("unreadable engine snapshot (a retired playbook its plan lacks)")
            engine._install(plan, retired)
        for key, table in state["armed"].items():
            if key not in engine.armed:
                raise EngineError(f"unreadable engine snapshot (an absence trigger {key} its plan lacks)")
            engine.armed[key].update(table)
        playbooks = len(engine.compiled)
        if any(not 0 <= f.playbook < playbooks for f in engine.flows.values()) or any(
            not 0 <= e[1] < playbooks for e in engine.heap
        ):
            raise EngineError("unreadable engine snapshot (a flow or timer of a playbook its plans lack)")
        return engine

    # ---- driving -------------------------------------------------------------------------------

    def next_due(self) -> int | None:
        """When the next timer is due, or None if none is pending."""
        return self.heap[0][0] if self.heap else None

    def advance(self, until: int) -> None:
        """Run every timer due at or before `until`, in order, then set the clock to `until`."""
        if not self._started:
            self.start()
        heap = self.heap
        while heap and heap[0][0] <= until:
            entry = heapq.heappop(heap)
            if entry[0] > self.now:
                self.now = entry[0]
            self._fire(entry)
        if until > self.now:
            self.now = until

    def feed(self, event: Event) -> None:
        """Process one event: timers due before it run first, timers due at its instant after it."""
        if not (event.kind in _MEMBER_ONLY and event.member and type(event.data) is dict):
            validate(event)  # the common kinds are checked inline above
        if not self._started:
            self.start()
        heap = self.heap
        time = event.time
        while heap and heap[0][0] < time:
            entry = heapq.heappop(heap)
            if entry[0] > self.now:
                self.now = entry[0]
            self._fire(entry)
        if time > self.now:
            self.now = time
        self._fed += 1
        self._cause = f"e:{event.id}" if event.id is not None else f"#{self._fed}"
        self._event(event)

    # ---- timers ----------------------------------------------------------------------------------

    def _push(self, due: int, kind: int, playbook: int, member: str, *payload: Any, group: str = "") -> None:
        # Timers due at one instant run by playbook order, then member id ("" for group-level
        # timers, so they come first), then group id, then creation order: never by dict order.
        self._seq += 1
        # The payload is spread into the entry, not nested: one tuple per timer, not two.
        heapq.heappush(self.heap, (due, playbook, member, group, self._seq, kind, *payload))

    def _fire(self, entry: tuple[Any, ...]) -> None:
        due, pb_index, member_id, _group, _seq, kind = entry[:6]
        payload = entry[6:]
        if kind in (_RESUME, _TIMEOUT):
            flow_id, token = payload
            flow = self.flows.get(flow_id)
            if flow is None or flow.token != token:
                return
            if kind == _TIMEOUT:
                self._unwait(flow)
                instr = self.compiled[flow.playbook].code_of(flow.entry)[flow.pc]
                flow.pc = instr.jump if instr.jump is not None else flow.pc + 1
            else:
                flow.pc += 1
            self._run(flow)
        elif kind == _DELIVER:
            self._deliver(payload[0], payload[1])
        elif kind == _TASK_DONE:
            self._event(Event("task_done", self.now, member=None, data={"task": payload[0]}))
        else:
            # A trigger's timer: what armed it (trigger, subject, due) names the flows it starts.
            name = self.compiled[pb_index].playbook.name
            self._cause = f"t{kind}:{name}:{member_id}:{due}:" + ":".join(map(str, payload))
            self._trigger_due(kind, self.compiled[pb_index], member_id, due, payload)

    def _trigger_due(
        self, kind: int, c: _Compiled, member_id: str, due: int, payload: tuple[Any, ...]
    ) -> None:
        if kind == _ABSENCE:
            self._absence_due(c, payload[0], member_id, due)
        elif kind == _DATE:
            self._date_due(c, payload[0], member_id)
        elif kind == _CAL:
            self._calendar_due(c, payload[0], payload[1], due)
        elif kind == _GROUP_SILENT:
            self._group_silent_due(c, payload[0], payload[1], due)
        else:
            raise EngineError(f"timer of unknown kind {kind}")

    # ---- arming ----------------------------------------------------------------------------------

    def _arm_group(self, group: GroupState) -> None:
        for c in self.live:
            if not self._in_scope(c.playbook, group.id):
                continue
            for e_index, entry in enumerate(c.playbook.schedule):
                due = self._next_calendar(entry.when, group.zone, self.now)
                if due is not None:
                    self._push(due, _CAL, c.index, "", e_index, group.id, group=group.id)
            for t_index, trigger in enumerate(c.playbook.triggers):
                if isinstance(trigger, model.OnGroupSilent):
                    since = group.last_message_at or self.now
                    self._push(
                        timeutil.add(since, trigger.duration, group.zone),
                        _GROUP_SILENT,
                        c.index,
                        "",
                        t_index,
                        group.id,
                        group=group.id,
                    )

    def _next_calendar(self, when: model.CalRef, tz: ZoneInfo, after: int) -> int | None:
        rule = self.program.calendars[when.calendar].rule if when.calendar else when.inline
        assert rule is not None
        return timeutil.next_fire(rule, when.offsets, when.at, tz, after)

    def _arm_member(self, member: MemberState, since: int) -> None:
        for c, t_index, _trigger in self._triggers.get("absence", ()):
            if self._absence_applies(c.playbook, member):
                self._arm_absence(c, t_index, member, since)
        for kind in ("date_offset", "anniversary"):
            for c, t_index, trigger in self._triggers.get(kind, ()):
                if self._member_in_scope(c.playbook, member):
                    self._arm_date(c, t_index, trigger, member)

    def _absence_applies(self, pb: model.Playbook, member: MemberState) -> bool:
        """Whether a member's silence counts for a playbook: in its scope, and new unless `apply to all`."""
        if not (pb.apply_to_existing or not member.existing):
            return False
        if pb.scope.kind == "private":
            return True
        for group_id in member.groups:  # a loop, not any(): this runs for most messages
            if self._in_scope(pb, group_id):
                return True
        return False

    def _arm_absence(self, c: _Compiled, t_index: int, member: MemberState, since: int) -> None:
        """Start counting a member's absence from `since` (arrival in scope, or the plan start).

        One timer per armed deadline: when one is already pending, only its start moves; the
        timer re-checks the deadline when it comes due (lazy invalidation).
        """
        table = self.armed[(c.index, t_index)]
        pending = member.id in table
        table[member.id] = since
        if not pending:
            trigger = cast(model.OnAbsence, c.playbook.triggers[t_index])
            base = max(since, self._last(member, trigger.event) or since)
            self._push(timeutil.add(base, trigger.duration, self.zone), _ABSENCE, c.index, member.id, t_index)

    def _last(self, member: MemberState, kind: model.EventKind) -> int | None:
        if kind is model.EventKind.MESSAGE:
            return member.last_message_at
        if kind is model.EventKind.ORDER:
            return member.last_order_at
        if kind is model.EventKind.INVITE:
            return member.last_invite_at
        return None

    def _arm_date(self, c: _Compiled, t_index: int, trigger: Any, member: MemberState) -> None:
        due = self._date_fire(trigger, member, self.now)
        if due is not None:
            self._push(due, _DATE, c.index, member.id, t_index)

    def _date_fire(self, trigger: Any, member: MemberState, after: int) -> int | None:
        value = member.field_value(trigger.attribute)
        if value is None:
            return None
        if isinstance(value, int):
            day = timeutil.local(value, self.zone).date()
        elif isinstance(value, dt.datetime):
            day = value.date()
        elif isinstance(value, dt.date):
            day = value
        else:
            try:
                day = dt.date.fromisoformat(str(value)[:10])
            except ValueError:
                return None
        if isinstance(trigger, model.OnDateOffset):
            wall = timeutil.shift_local(
                dt.datetime.combine(day, trigger.at),
                -trigger.offset.amount if trigger.before else trigger.offset.amount,
                trigger.offset.unit,
            )
            due = timeutil.resolve(wall, self.zone)
            return due if due > after else None
        year = timeutil.local(after, self.zone).year
        for offset in range(3):
            try:
                candidate = day.replace(year=year + offset)
            except ValueError:  # 29 February in a common year: celebrate on the 28th
                candidate = dt.date(year + offset, 2, 28)
            due = timeutil.resolve(dt.datetime.combine(candidate, trigger.at), self.zone)
            if due > after:
                return due
        return None

    # ---- scope -----------------------------------------------------------------------------------

    def _in_scope(self, pb: model.Playbook, group_id: str | None) -> bool:
        scope = pb.scope
        if scope.kind == "private":
            return group_id is None
        group = self.groups.get(group_id) if group_id is not None else None
        if group is not None and group.dissolved:
            return False  # a dissolved group is out of every playbook's scope
        if scope.kind == "all":
            return True
        if group is None:
            return False
        if scope.kind == "named":
            return group_id in scope.groups
        return not group.tags.isdisjoint(scope.tags)

    def _member_in_scope(self, pb: model.Playbook, member: MemberState) -> bool:
        if pb.scope.kind in ("all", "private"):
            return True
        return any(self._in_scope(pb, g) for g in member.groups)

    def _member_group(self, pb: model.Playbook, member: MemberState) -> str | None:
        for group_id in sorted(member.groups):
            if self._in_scope(pb, group_id):
                return group_id
        return None

    def _active(self, pb: model.Playbook, now: int, tz: ZoneInfo) -> bool:
        if pb.active_from is None and pb.active_until is None:
            return True
        wall = timeutil.local(now, tz)
        if pb.active_from is not None and wall < pb.active_from:
            return False
        return not (pb.active_until is not None and wall >= pb.active_until)

    # ---- events ----------------------------------------------------------------------------------

    def _event(self, event: Event) -> None:
        kind = event.kind
        if kind == "task_done":
            self._resume_waiting(None, "task_done", event)
            return
        member = self.members.get(event.member or "")
        if member is None:
            member = MemberState(id=str(event.member), name=str(event.data.get("name") or event.member))
            self.members[member.id] = member
        group_id = event.group
        group = None
        if group_id:
            group = self.groups.get(group_id)
            if group is None:
                group = self.add_group(group_id)
        now = event.time
        if kind == "message":
            # The common case, kept short: a message only moves times and one counter.
            member.last_message_at = now
            if group is not None:
                group.last_message_at = now
            for c, t_index, table in self._message_absence:
                # Lazy invalidation: a pending deadline re-checks itself when due; only a
                # deadline that already fired is armed again, from now.
                if member.id not in table and self._absence_applies(c.playbook, member):
                    self._arm_absence(c, t_index, member, now)
            if kind in self.windows:
                self._window(member, kind, now)
            counters = member.counters
            before = counters.get("messages", 0.0)
            counters["messages"] = before + 1
            if "messages" in self._watched:
                self._threshold(member, "messages", before, before + 1)
        elif kind == "join" and group is None:
            self._contact_added(member, event.data, now)
        elif kind == "join":
            assert group is not None  # the branch above took joins without a group
            data = event.data
            new = member.id not in group.members
            size_before = len(group.members)
            # Absence playbooks whose scope the member enters with this join (not merely
            # another group of the same scope): their silence starts counting now.
            entering = (
                [
                    (c, t_index)
                    for c, t_index, _trigger in self._triggers.get("absence", ())
                    if not self._absence_applies(c.playbook, member)
                ]
                if new and member.arrived  # a first arrival arms everything below anyway
                else []
            )
            self._joined(member, data, now)
            member.groups.add(group.id)
            group.members.add(member.id)
            if new and not member.arrived:
                member.arrived = True
                self._arm_member(member, now)
            else:
                for c, t_index in entering:
                    if self._absence_applies(c.playbook, member):
                        self._arm_absence(c, t_index, member, now)
            self._group_size(group, size_before, now)
            if kind in self.windows:
                self._window(member, kind, now)
        else:
            self._other_event(event, member, group, now)
        key = kind if kind in _MEMBER_ONLY else self._key(event)
        if member.id in self.waits:
            self._resume_waiting(member.id, key, event)
        starts = self._event_index.get(key)
        if starts:
            for pb_index, t_index in starts:
                c = self.compiled[pb_index]
                scope = c.playbook.scope.kind
                where = group_id
                if where is None:
                    if kind in ("join", "leave") and scope != "private":
                        continue  # a contact added or removed in private chats is no group's business
                    if scope in ("tagged", "named"):
                        # A member-level event (a tag set in the CRM) counts in the member's groups in scope.
                        where = self._member_group(c.playbook, member)
                self._start_flow(
                    c, member, where, f"{c.playbook.triggers[t_index].loc}", dict(event.data), now
                )

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

    def _held_back(self, pb: model.Playbook, last: int | None, now: int, tz: ZoneInfo) -> str | None:
        """Why `active` or `repeat` keeps a playbook from starting again (None: nothing does)."""
        if not self._active(pb, now, tz):
            return trace.INACTIVE
        if last is None:
            return None
        if pb.repeat is model.Repeat.ONCE:
            return trace.RAN_ONCE
        if (
            pb.repeat is model.Repeat.COOLDOWN
            and pb.cooldown is not None
            and now < timeutil.add(last, pb.cooldown, tz)
        ):
            return trace.COOLING_DOWN
        return None

    def _start_group_flow(self, c: _Compiled, group: GroupState, trigger: str, now: int) -> None:
        """A group-level trigger fired: `active`, `repeat` and `when` apply per group, as per member."""
        pb = c.playbook
        tz = group.zone
        key = (c.index, "\x00group:" + group.id)  # cannot clash with a member id from a bot
        if self._held_back(pb, self.entered.get(key), now, tz) is not None:
            return
        if c.guard is not None and not self._holds(c.guard, c, "when", None, group, {}, now, tz, trigger):
            return
        self.entered[key] = now
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
                member.groups.discard(group.id)
                self._end_flows(member.id, group.id)
        elif kind == "order":
            member.last_order_at = now
            changed.append(("orders", 1))
            amount = event.data.get("amount")
            if isinstance(amount, int | float):
                changed.append(("spent", float(amount)))
            self._rearm_absence(member, self._absence_on.get("order", ()))
        elif kind == "invite":
            member.last_invite_at = now
            changed.append(("invites", 1))
            self._rearm_absence(member, self._absence_on.get("invite", ()))
        elif kind == "report":
            changed.append(("violations", 1))
        elif kind == "tag":
            member.tags.add(str(event.name))
        elif kind == "untag":
            member.tags.discard(str(event.name))
        elif kind == "rename":  # the member changed their group nickname (WeCom reports it)
            member.nickname = str(event.data.get("nickname") or "")
        if kind in self.windows:
            self._window(member, kind, now)
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
        if member_id is None:
            candidates = [f for f in self.flows.values() if f.waiting == f"task:{event.data.get('task')}"]
        else:
            ids = self.waits.get(member_id)
            if not ids:
                return
            candidates = [self.flows[i] for i in sorted(ids) if self.flows[i].waiting == key]
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

    def _rearm_absence(self, member: MemberState, triggers: Iterable[tuple[_Compiled, int, Any]]) -> None:
        for c, t_index, _trigger in triggers:
            if member.id not in self.armed[(c.index, t_index)] and self._absence_applies(c.playbook, member):
                # The old deadline already fired; a new silence starts now. Otherwise the pending
                # timer re-checks the deadline when it comes due (lazy invalidation).
                self._arm_absence(c, t_index, member, self.now)

    def _threshold(self, member: MemberState, counter: str, before: float, after: float) -> None:
        for c, t_index, trigger in self._triggers.get("threshold", ()):
            key = ("threshold", c.index, t_index, member.id)
            if trigger.counter == counter and before < trigger.threshold <= after and key not in self.fired:
                # "reaches" fires the first time only, even if the counter falls and climbs again.
                self.fired.add(key)
                self._start_flow(c, member, self._member_group(c.playbook, member), trigger.loc, {}, self.now)

    def _group_size(self, group: GroupState, before: int, now: int) -> None:
        for c, t_index, trigger in self._triggers.get("group_size", ()):
            key = ("size", c.index, t_index, group.id)
            if (
                before < trigger.threshold <= len(group.members)
                and key not in self.fired
                and self._in_scope(c.playbook, group.id)
            ):
                self.fired.add(key)
                owner = self.members.get(group.owner or "")
                if owner is not None:
                    self._start_flow(c, owner, group.id, trigger.loc, {}, now, check_scope=False)
                else:
                    # No owner known: the playbook still runs for the group (tasks for its operator).
                    self._start_group_flow(c, group, trigger.loc, now)

    # ---- due timers --------------------------------------------------------------------------------

    def _absence_due(self, c: _Compiled, t_index: int, member_id: str, due: int) -> None:
        table = self.armed[(c.index, t_index)]
        since = table.get(member_id)
        if since is None:
            return
        member = self.members.get(member_id)
        trigger = cast(model.OnAbsence, c.playbook.triggers[t_index])
        if member is None or not self._absence_applies(c.playbook, member):
            del table[member_id]  # out of scope now; re-armed when the member comes back
            return
        last = self._last(member, trigger.event)
        deadline = timeutil.add(max(since, last or since), trigger.duration, self.zone)
        if deadline > due:
            self._push(deadline, _ABSENCE, c.index, member_id, t_index)
            return
        del table[member_id]
        self._start_flow(c, member, self._member_group(c.playbook, member), trigger.loc, {}, due)

    def _date_due(self, c: _Compiled, t_index: int, member_id: str) -> None:
        member = self.members.get(member_id)
        if member is None:
            return
        trigger = c.playbook.triggers[t_index]
        self._start_flow(c, member, self._member_group(c.playbook, member), trigger.loc, {}, self.now)
        if isinstance(trigger, model.OnAnniversary):
            self._arm_date(c, t_index, trigger, member)

    def _calendar_due(self, c: _Compiled, e_index: int, group_id: str, due: int) -> None:
        """A calendar entry came due in a group, or (`_PRIVATE`) for the contacts of an `in private
        chats` playbook, in the file's zone."""
        group = None
        if group_id != _PRIVATE:
            group = self.groups.get(group_id)
            if group is None or group.dissolved or not self._in_scope(c.playbook, group_id):
                return
        tz = group.zone if group is not None else self.zone
        entry = c.playbook.schedule[e_index]
        following = self._next_calendar(entry.when, tz, max(due, self.now))
        if following is not None:
            self._push(following, _CAL, c.index, "", e_index, group_id, group=group.id if group else "")
        if self.now - due > _GRACE and c.playbook.missed is model.Missed.SKIP:
            return
        if following is not None and following <= self.now:
            return  # a later missed firing of the same entry will run instead (run latest once)
        if not self._active(c.playbook, due, tz):
            return
        test = c.entry_conds[e_index]
        audience: list[str | None] = [None]
        if entry.for_each_member:
            audience = [*sorted(group.members if group is not None else self.contacts)]
        for member_id in audience:
            member = self.members.get(member_id) if member_id is not None else None
            if c.guard is not None and not self._holds(
                c.guard, c, "when", member, group, {}, due, tz, entry.loc
            ):
                continue
            if test is not None and not self._holds(test, c, "when", member, group, {}, due, tz, entry.loc):
                continue
            self._begin(c, e_index, member, group, f"{entry.loc}", {}, due)

    def _group_silent_due(self, c: _Compiled, t_index: int, group_id: str, due: int) -> None:
        group = self.groups.get(group_id)
        if group is None or group.dissolved:
            return
        trigger = c.playbook.triggers[t_index]
        assert isinstance(trigger, model.OnGroupSilent)
        deadline = timeutil.add(group.last_message_at or self.start_time, trigger.duration, group.zone)
        if deadline > due:
            self._push(deadline, _GROUP_SILENT, c.index, "", t_index, group_id, group=group_id)
            return
        key = ("silent", c.index, t_index, group_id, group.last_message_at)
        if key not in self.fired:
            self.fired.add(key)
            self._start_group_flow(c, group, trigger.loc, due)
        # Re-armed by the next message in the group.
        self._push(due + 86400, _GROUP_SILENT, c.index, "", t_index, group_id, group=group_id)

    # ---- flows -----------------------------------------------------------------------------------

    def _start_flow(
        self,
        c: _Compiled,
        member: MemberState,
        group_id: str | None,
        trigger: str,
        event: dict[str, Any],
        now: int,
        *,
        check_scope: bool = True,
    ) -> None:
        pb = c.playbook
        group = self.groups.get(group_id) if group_id else None
        tz = group.zone if group is not None else self.zone
        key = (c.index, member.id)
        last = self.entered.get(key)
        if self._instant != now:
            self._instant = now
            self._started_now.clear()
        if check_scope and not self._in_scope(pb, group_id):
            verdict = trace.OUT_OF_SCOPE
        elif self._started_now.get(key, trigger) != trigger:
            # Two of its triggers at once (no order and no message for a year, both counted
            # from the start): one run. The same trigger twice (two posts) runs twice.
            verdict = trace.SAME_INSTANT
        else:
            verdict = self._held_back(pb, last, now, tz) or trace.STARTED
            if verdict is trace.STARTED and c.guard is not None:
                holds = self._holds(c.guard, c, "when", member, group, event, now, tz, trigger)
                if not holds:
                    verdict = trace.GUARD_FALSE if holds is False else trace.GUARD_FAILED
        if self.tracer is not None:
            self.tracer(
                trace.Decision(
                    now,
                    pb,
                    member,
                    group,
                    trigger,
                    event,
                    tz,
                    verdict,
                    last,
                    self.members.get(member.referrer) if member.referrer else None,
                    self.delivery.left,
                )
            )
        if verdict is not trace.STARTED:
            return
        self.entered[key] = now
        self._started_now[key] = trigger
        self._begin(c, -1, member, group, trigger, event, now)

    def _begin(
        self,
        c: _Compiled,
        entry: int,
        member: MemberState | None,
        group: GroupState | None,
        trigger: str,
        event: dict[str, Any],
        now: int,
    ) -> None:
        self._flow_ids += 1
        flow = Flow(
            id=self._flow_ids,
            playbook=c.index,
            entry=entry,
            member=member.id if member else None,
            group=group.id if group else None,
            pc=0,
            trigger=trigger,
            started=now,
            event=event,
            origin=self._cause,
        )
        self.flows[flow.id] = flow
        if flow.member is not None:
            self.member_flows.setdefault(flow.member, []).append(flow.id)
        self._run(flow)

    def _run(self, flow: Flow) -> None:
        c = self.compiled[flow.playbook]
        code = c.code_of(flow.entry)
        member = self.members.get(flow.member) if flow.member else None
        group = self.groups.get(flow.group) if flow.group else None
        tz = group.zone if group is not None else self.zone
        while flow.pc < len(code):
            instr = code[flow.pc]
            op = instr.op
            if op == "act":
                assert instr.action is not None
                self._act(flow, c, instr, member, group, tz)
                if flow.id not in self.flows or flow.waiting is not None:
                    return  # ended, or held until a deferred action goes out (see _policy)
                flow.pc += 1
            elif op == "jump":
                assert instr.jump is not None
                flow.pc = instr.jump
            elif op == "branch":
                test = c.branch_conds[(flow.entry, flow.pc)]
                holds = self._holds(
                    test, c, "if", member, group, flow.event, self.now, tz, flow.trigger, flow, instr.loc
                )
                if holds is None:
                    break  # neither branch is right for a test that could not be decided: the flow ends
                if holds:
                    flow.pc += 1
                else:
                    assert instr.jump is not None
                    flow.pc = instr.jump
            elif op == "split":
                flow.pc = self._choose(flow, c, instr)
            elif op == "stop":
                break
            elif op == "wait":
                assert instr.duration is not None
                flow.token += 1
                self._push(
                    timeutil.add(self.now, instr.duration, tz),
                    _RESUME,
                    flow.playbook,
                    flow.member or "",
                    flow.id,
                    flow.token,
                    group=flow.group or "",
                )
                return
            else:  # wait_for, assign
                assert instr.duration is not None and instr.pattern is not None
                flow.token += 1
                if op == "assign":
                    key = self._key_for(flow)
                    text = self._render_text(instr.text or "", flow, member, group)
                    due_by = timeutil.add(self.now, instr.duration, tz)
                    self._emit(
                        Action(
                            self.now,
                            "task",
                            c.playbook.name,
                            key,
                            member=flow.member,
                            group=flow.group,
                            target="operator",
                            detail={
                                "text": text,
                                "operator": group.operator if group else None,
                                "due": timeutil.aware(due_by, tz).isoformat(),
                            },
                            loc=instr.loc,
                            trigger=flow.trigger,
                        )
                    )
                    flow.waiting = f"task:{key}"
                    if self.task_delay is not None and self.now + self.task_delay < due_by:
                        self._push(
                            self.now + self.task_delay,
                            _TASK_DONE,
                            flow.playbook,
                            flow.member or "",
                            key,
                            group=flow.group or "",
                        )
                else:
                    flow.waiting = event_key(instr.pattern)
                    if flow.member is not None:
                        self.waits.setdefault(flow.member, set()).add(flow.id)
                self._push(
                    timeutil.add(self.now, instr.duration, tz),
                    _TIMEOUT,
                    flow.playbook,
                    flow.member or "",
                    flow.id,
                    flow.token,
                    group=flow.group or "",
                )
                return
        self._unwait(flow)
        self._drop(flow)

    def _holds(
        self,
        test: Test,
        c: _Compiled,
        what: str,
        member: MemberState | None,
        group: GroupState | None,
        event: dict[str, Any],
        now: int,
        tz: ZoneInfo,
        trigger: str,
        flow: Flow | None = None,
        loc: str = "",
    ) -> bool | None:
        """A condition's answer, or None when the member's data made it fail (a value of the wrong
        type: a list where a number was declared); the failure is logged as a failed `what` record,
        and stops only this member's run of this trigger."""
        try:
            return test(member, group, event, now, tz)
        except (TypeError, ValueError, ArithmeticError) as exc:
            if flow is not None:
                key = self._key_for(flow)
            else:
                subject = f"{member.id if member else ''}|{group.id if group else ''}"
                raw = f"{self._cause}|{c.playbook.name}|{what}|{trigger}|{subject}"
                key = hashlib.sha256(raw.encode()).hexdigest()[:24]
            self._emit(
                Action(
                    now,
                    what,
                    c.playbook.name,
                    key,
                    member=member.id if member else None,
                    group=group.id if group else None,
                    target="member" if member else "group",
                    status="failed",
                    reason=f"condition error: {type(exc).__name__}: {exc}",
                    loc=loc or c.playbook.loc,
                    trigger=trigger,
                )
            )
            return None

    def _choose(self, flow: Flow, c: _Compiled, instr: Instr) -> int:
        split = c.split_names[(flow.entry, flow.pc)]
        digest = hashlib.sha256(f"{self.seed}:{c.playbook.name}:{split}:{flow.member}".encode()).digest()
        point = int.from_bytes(digest[:8], "big") / 2**64 * 100
        total = 0.0
        for arm in instr.arms:
            total += arm.percent
            if point < total:
                flow.arm = arm.name
                return arm.pc
        flow.arm = instr.arms[-1].name
        return instr.arms[-1].pc

    def _key_for(self, flow: Flow) -> str:
        """The idempotency key of the flow's next action: what started the flow, whose flow it is,
        and how many actions it decided before. Unique per decided action and the same on every
        replay; no clock, no path and no plan version goes into it."""
        flow.acts += 1
        name = self.compiled[flow.playbook].playbook.name
        raw = f"{flow.origin}|{name}|{flow.entry}|{flow.member or ''}|{flow.group or ''}|{flow.acts}"
        return hashlib.sha256(raw.encode()).hexdigest()[:24]

    # ---- actions -----------------------------------------------------------------------------------

    def _act(
        self,
        flow: Flow,
        c: _Compiled,
        instr: Instr,
        member: MemberState | None,
        group: GroupState | None,
        tz: ZoneInfo,
    ) -> None:
        step = instr.action
        target_member = member
        if self._to_referrer(step):
            target_member = (
                self.members.get(member.referrer) if member is not None and member.referrer else None
            )
            if target_member is None:
                return  # no referrer: nothing to do
        if isinstance(step, model.TagStep):
            holder: MemberState | GroupState | None = group if step.target == "group" else target_member
            if holder is None:
                return
            changed = [tag for tag in step.tags if (tag in holder.tags) == step.remove]
            for tag in changed:
                if step.remove:
                    holder.tags.discard(tag)
                else:
                    holder.tags.add(tag)
            key = self._key_for(flow)
            self._emit(
                Action(
                    self.now,
                    "untag" if step.remove else "tag",
                    c.playbook.name,
                    key,
                    member=holder.id if isinstance(holder, MemberState) else None,
                    group=flow.group,
                    target=step.target,
                    detail={"tags": list(step.tags)},
                    loc=instr.loc,
                    trigger=flow.trigger,
                )
            )
            # The tag action is logged before what it sets off: cause before effect.
            if isinstance(holder, MemberState):
                kind = "untag" if step.remove else "tag"
                for tag in changed:
                    self._cascade(
                        Event(kind, self.now, member=holder.id, group=flow.group, name=tag, id=f"{key}:{tag}")
                    )
            return
        if isinstance(step, model.AddStep):
            if target_member is None:
                return
            before = target_member.counters.get(step.counter, 0.0)
            target_member.counters[step.counter] = before + step.amount
            # A playbook this sets off starts from this step, not from whatever came before.
            cause, self._cause = self._cause, f"a:{self._key_for(flow)}"
            try:
                self._threshold(target_member, step.counter, before, before + step.amount)
            finally:
                self._cause = cause
            return
        if isinstance(step, model.SetStep):
            if target_member is None:
                return
            value: Any = step.value
            if isinstance(value, model.Ref):
                value = self._ref_value(value, flow, member, group)
            target_member.attributes[step.attribute] = (
                value.isoformat() if isinstance(value, dt.date) else value
            )
            return
        key = self._key_for(flow)
        action = Action(
            self.now,
            step.kind if step else "act",
            c.playbook.name,
            key,
            member=target_member.id if target_member else None,
            group=flow.group,
            loc=instr.loc,
            trigger=flow.trigger,
        )
        if isinstance(step, model.SendStep):
            action.target = step.target
            if step.target == "group":
                action.member = None
            template = c.program.templates[step.template]
            action.detail = {"template": step.template, "channel": step.channel}
            if flow.arm is not None:
                action.detail["arm"] = flow.arm
            try:
                action.detail["text"] = self._render(template.source, flow, member, group)
            except RenderError as exc:
                action.status, action.reason = "failed", str(exc)
            if step.target == "operator":
                action.detail["operator"] = group.operator if group else None
        elif isinstance(step, model.KickStep):
            action.detail = {"reason": step.reason}
        elif isinstance(step, model.GrantStep):
            coupon = c.program.coupons[step.coupon]
            action.detail = {"coupon": step.coupon, "worth": coupon.worth}
        elif isinstance(step, model.InviteStep):
            action.detail = {"to_group": step.group}
        elif isinstance(step, model.CallStep):
            args = {
                k: (self._ref_value(v, flow, member, group) if isinstance(v, model.Ref) else v)
                for k, v in step.args.items()
            }
            action.kind = "call"
            action.detail = {
                "action": step.action,
                "args": {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in args.items()},
            }
            wrong = next((k for k, v in action.detail["args"].items() if not _plain(v)), None)
            if wrong is not None:
                # A value a bot registered from Python (a set, an object) that no executor can be sent.
                value = action.detail["args"][wrong]
                action.detail["args"] = {
                    k: v if _plain(v) else repr(v) for k, v in action.detail["args"].items()
                }
                action.status = "failed"
                action.reason = f"argument '{wrong}' is a {type(value).__name__}, which cannot be sent"
        elif isinstance(step, model.DissolveStep):
            action.member = None
            action.target = "group"
        self._policy(action, tz, flow)

    def _to_referrer(self, step: Any) -> bool:
        """Whether a step acts on the member's referrer (asked of pydantic once per step)."""
        found = self._referrer_steps.get(id(step))
        if found is None:
            # Sends and tags name their subject `target`; add and set name it `root`.
            found = getattr(step, "target", None) == "referrer" or getattr(step, "root", None) == "referrer"
            self._referrer_steps[id(step)] = found
        return found

    def _policy(self, action: Action, tz: ZoneInfo, flow: Flow) -> bool:
        """Apply the delivery policy to an action due now; True if it was deferred.

        A deferred action holds its flow: the next step runs once the action has gone out (or
        was dropped), so `send warning` then `wait 1 day for member posts` gives a full day
        after the warning is delivered, and nothing overtakes a message waiting for 08:00.
        """
        if action.status == "failed":
            self._emit(action)
            return False
        tags = self.members[action.member].tags if action.member and action.member in self.members else None
        decision = self.delivery.decide(action, self.now, tz, tags)
        if decision.verdict == "go":
            self._apply(action, flow)
            self._emit(action)
        elif decision.verdict == "defer":
            assert decision.until is not None
            if action.planned is None:
                action.planned = action.time
            action.reason = decision.reason
            flow.token += 1
            flow.waiting = "deliver"
            self._push(
                decision.until,
                _DELIVER,
                flow.playbook,
                action.member or "",
                action,
                (flow.id, flow.token),
                group=action.group or "",
            )
            return True
        else:
            action.status = "dropped" if decision.verdict == "drop" else "blocked"
            action.reason = decision.reason
            self._emit(action)
        return False

    def _deliver(self, action: Action, hold: tuple[int, int]) -> None:
        action.time = self.now
        group = self.groups.get(action.group) if action.group else None
        flow = self.flows.get(hold[0])
        gone = action.kind == "kick" and (group is None or action.member not in group.members)
        if flow is None or flow.token != hold[1] or gone:
            # Its flow was ended while the action waited (the member left or was removed, the
            # group was dissolved, a new plan version ended it): its pending action is cancelled, visibly.
            action.status = "dropped"
            if group is not None and group.dissolved:
                action.reason = "the group was dissolved"
            elif gone or (
                action.member is not None
                and action.member not in (group.members if group is not None else self.contacts)
            ):
                action.reason = "the member left the group" if group is not None else "the member left"
            else:
                action.reason = "its flow was ended by a new plan version"
            self._emit(action)
            if flow is not None and flow.token == hold[1]:
                flow.waiting = None
                flow.pc += 1
                self._run(flow)
            return
        if self._policy(action, group.zone if group else self.zone, flow):
            return  # deferred again
        if flow.id in self.flows:
            flow.waiting = None
            flow.pc += 1
            self._run(flow)

    def _apply(self, action: Action, flow: Flow) -> None:
        # The flow doing a kick or a dissolve carries on (say, to log it to the operator);
        # every other flow of that member in that group, or in that group, ends.
        if action.kind == "grant":
            # Templates see `coupon` only once it is really granted: a grant dropped for want of
            # stock makes a later send that mentions it fail visibly, never promise a coupon.
            coupon = self.compiled[flow.playbook].program.coupons[str(action.detail["coupon"])]
            group = self.groups.get(action.group) if action.group else None
            tz = group.zone if group is not None else self.zone
            expires = timeutil.add(self.now, coupon.valid, tz) if coupon.valid else None
            flow.coupon = {
                "name": coupon.name,
                "title": coupon.title or coupon.name,
                "worth": coupon.worth,
                # An instant until a template reads it (see _context): most grants are never quoted.
                "expires_at": expires if expires else "",
                "code": action.key[:10].upper(),
            }
        elif action.kind == "kick" and action.group and action.member:
            group = self.groups.get(action.group)
            member = self.members.get(action.member)
            if group is not None and member is not None:
                group.members.discard(member.id)
                member.groups.discard(group.id)
                self._end_flows(member.id, group.id, keep=flow.id)
        elif action.kind == "dissolve" and action.group:
            group = self.groups.get(action.group)
            if group is not None:
                group.dissolved = True
                for other in [f for f in self.flows.values() if f.group == group.id and f.id != flow.id]:
                    self._unwait(other)
                    self._drop(other)

    def _cascade(self, event: Event) -> None:
        if self._depth >= _MAX_CASCADE:
            return
        if (
            event.member not in self.waits
            and self._key(event) not in self._event_index
            and event.kind not in self.windows
        ):
            return  # a tag change nothing listens to: its state change is already made
        self._depth += 1
        cause = self._cause
        self._cause = f"c:{event.id}"
        try:
            self._event(event)
        finally:
            self._depth -= 1
            self._cause = cause

    def _emit(self, action: Action) -> None:
        if self.keep_log:
            self.log.append(action)
        for sink in self.sinks:
            sink(action)

    # ---- rendering ---------------------------------------------------------------------------------

    def _context(self, flow: Flow, member: MemberState | None, group: GroupState | None) -> dict[str, Any]:
        context: dict[str, Any] = {
            "now": timeutil.aware(self.now, group.zone if group else self.zone).strftime("%Y-%m-%d %H:%M")
        }
        if member is not None:
            # The attributes and counters the flow's own plan version declares (a flow finishing
            # on an earlier version still reads what that version declared).
            program = self.compiled[flow.playbook].program
            context["member"] = self._member_context(member, program)
            referrer = self.members.get(member.referrer) if member.referrer else None
            context["referrer"] = (
                self._member_context(referrer, program) if referrer else {"name": "", "id": ""}
            )
        if group is not None:
            context["group"] = group.as_context()
        context["event"] = dict(flow.event)
        context["operator"] = {"name": group.operator if group and group.operator else ""}
        if flow.coupon is not None:
            expires = flow.coupon.get("expires_at")
            if isinstance(expires, int):
                tz = group.zone if group is not None else self.zone
                flow.coupon["expires_at"] = timeutil.aware(expires, tz).strftime("%Y-%m-%d %H:%M")
            context["coupon"] = flow.coupon
        return context

    def _member_context(self, member: MemberState, program: model.Program) -> dict[str, Any]:
        data = member.as_context()
        for name in program.attributes:
            data.setdefault(name, "")
        for name in program.counters:
            data.setdefault(name, 0)
        return data

    def _ref_value(
        self, ref: model.Ref, flow: Flow, member: MemberState | None, group: GroupState | None
    ) -> Any:
        """A reference's value where a step reads it (arguments, `set`): event, member, referrer or group."""
        if ref.root == "event":
            return flow.event.get(ref.field)
        if ref.root == "group":
            return group.field_value(ref.field) if group is not None else None
        holder = member
        if ref.root == "referrer":
            holder = self.members.get(member.referrer) if member is not None and member.referrer else None
        if holder is None:
            return None
        value = holder.field_value(ref.field)
        if value is None and ref.field in self._counter_names:
            return 0
        return value

    def _render(self, source: str, flow: Flow, member: MemberState | None, group: GroupState | None) -> str:
        """The template's text for this flow, or `RenderError` naming what went wrong in it."""
        parts = _fast_template(source)
        if parts is not None:
            # Plain `{{ root.field }}` substitutions: read only the fields used, the way the
            # Jinja context would hold them; anything unusual goes through Jinja below.
            out: list[str] = []
            context: dict[str, Any] | None = None
            for part in parts:
                if isinstance(part, str):
                    out.append(part)
                    continue
                root, attr = part
                if root == "member" and member is not None:
                    value = self._member_value(member, attr, self.compiled[flow.playbook].program)
                elif root == "group" and group is not None:
                    value = _group_value(group, attr)
                else:
                    if context is None:
                        context = self._context(flow, member, group)
                    holder = context.get(root, _MISSING)
                    value = holder.get(attr, _MISSING) if isinstance(holder, dict) else _MISSING
                if value is _MISSING:
                    break
                out.append(str(value))
            else:
                return "".join(out).strip()
        context = self._context(flow, member, group)
        try:
            return render_template(_compiled_template(source), context).strip()
        except TemplateError as exc:
            raise RenderError(f"template error: {exc}") from exc
        except Exception as exc:
            # Raised by the template's own expressions over member data (`1/0`, `name + 1`): only
            # the template and the values it reads run inside `render`, so this is the user's error.
            raise RenderError(f"template error: {type(exc).__name__}: {exc}") from exc

    def _member_value(self, member: MemberState, name: str, program: model.Program) -> Any:
        """`member.<name>` as the template context has it (see `_context`), or `_MISSING`."""
        if name in member.attributes:
            return member.attributes[name]
        if name in member.counters:
            return member.counters[name]
        if name in _MEMBER_FIELDS:
            return getattr(member, name)
        if name == "tags":
            return sorted(member.tags)
        if name in _DEFAULT_COUNTERS:
            return 0
        if name in program.attributes:
            return ""
        if name in program.counters:
            return 0
        return _MISSING

    def _render_text(
        self, source: str, flow: Flow, member: MemberState | None, group: GroupState | None
    ) -> str:
        try:
            return self._render(source, flow, member, group)
        except RenderError:
            return source


class RenderError(Exception):
    """A template failed for one action: the message names the error, for the action's reason."""


def _plain(value: Any) -> bool:
    """Whether a value can go to an executor as JSON as it is."""
    if value is None or isinstance(value, str | int | float | bool):
        return True
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


_TEMPLATES: dict[str, Template] = {}
_MISSING = object()
_MEMBER_FIELDS = frozenset(("id", "name", "nickname", "channel", "referrer"))
_DEFAULT_COUNTERS = frozenset(("messages", "orders", "invites", "violations", "spent", "points"))
_GROUP_FIELDS = frozenset(("id", "name", "owner", "operator"))
_FAST: dict[str, tuple[str | tuple[str, str], ...] | None] = {}


def _group_value(group: GroupState, name: str) -> Any:
    """`group.<name>` as `GroupState.as_context` has it, or `_MISSING`."""
    if name in _GROUP_FIELDS:
        return getattr(group, name)
    if name == "size":
        return len(group.members)
    if name == "tags":
        return sorted(group.tags)
    return _MISSING


def _fast_template(source: str) -> tuple[str | tuple[str, str], ...] | None:
    """A template that is only text and `{{ root.field }}` as parts, or None for anything else."""
    if source in _FAST:
        return _FAST[source]
    parts: list[str | tuple[str, str]] | None = []
    try:
        body = environment().parse(source).body
    except TemplateError:
        body = []
        parts = None
    for node in body:
        if parts is None or not isinstance(node, nodes.Output):
            parts = None
            break
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                parts.append(child.data)
            elif (
                isinstance(child, nodes.Getattr)
                and isinstance(child.node, nodes.Name)
                and not hasattr(dict, child.attr)  # Jinja would find the dict method first
                and not child.attr.startswith("_")
            ):
                parts.append((child.node.name, child.attr))
            else:
                parts = None
                break
    found = tuple(parts) if parts is not None else None
    _FAST[source] = found
    return found


def _compiled_template(source: str) -> Template:
    found = _TEMPLATES.get(source)
    if found is None:
        try:
            found = environment().from_string(source)
        except TemplateError as exc:
            raise RenderError(f"template error: {exc}") from exc
        except Exception as exc:
            # Jinja folds constants while compiling: `{{ 7**777777 }}` fails here, not in render.
            raise RenderError(f"template error: {type(exc).__name__}: {exc}") from exc
        _TEMPLATES[source] = found
    return found
