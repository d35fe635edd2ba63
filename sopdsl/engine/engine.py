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

import heapq
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, Final, assert_never

from sopdsl.engine import snapshot as snapshot_codec
from sopdsl.engine.actions import Action
from sopdsl.engine.conditions import playbook_windows
from sopdsl.engine.events import Event
from sopdsl.engine.history import counted_since, fold_history, silent_since_in
from sopdsl.engine.parts import _PRIVATE, HeapEntry, Sink, _Compiled, in_group
from sopdsl.engine.policy import Delivery, template_tags
from sopdsl.engine.records import GroupRecord, MemberRecord, group_record, member_record
from sopdsl.engine.rendering import prepare_templates
from sopdsl.engine.snapshot_schema import _SNAPSHOT_SCHEMA, _SNAPSHOT_STATE, SNAPSHOT_FORMAT
from sopdsl.engine.state import Flow, GroupState, MemberState, SharedSets, WaitTask
from sopdsl.engine.switching import _Switching
from sopdsl.engine.tally import EventTally
from sopdsl.engine.timers import (
    Absence,
    CalendarDue,
    DateDue,
    Deliver,
    GroupSilent,
    Resume,
    SilenceIn,
    TaskDone,
    Timeout,
    TimerRecord,
)
from sopdsl.engine.trace import FlowWatch, StepHook, Tracer
from sopdsl.engine.trigger_absence import ABSENCE
from sopdsl.engine.trigger_base import TriggerHandler
from sopdsl.engine.trigger_dates import DATES
from sopdsl.engine.trigger_group_silent import GROUP_SILENT
from sopdsl.engine.triggers import HANDLERS
from sopdsl.errors import EngineError
from sopdsl.kinds import BUILTIN_COUNTERS
from sopdsl.plan import Plan, timeutil

_heappush: Final = heapq.heappush  # once per timer armed
_heappop: Final = heapq.heappop  # once per timer due


class Engine(_Switching):
    """Runs a plan over members and groups; see the module docstring for its contract."""

    # The parts are one chain of single inheritance, each the base of the next (Engine, _Switching,
    # _Flows, _Acting, _Drawing, _Tasks, _Happenings, _Arming, _Rendering, _Parts), in the method
    # order that joining them side by side gave: classes compiled by mypyc (setup.py) allow no other.

    # The engine's state is in `_Parts`'s slots; the figures hold an engine weakly.
    __slots__ = ("__weakref__",)

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
        self.sets = SharedSets()
        self.groups: dict[str, GroupState] = {}
        self.flows: dict[int, Flow] = {}
        self.waits: dict[str, set[int]] = {}
        # When each member (or "\x00group:" + group id) last started each playbook, by playbook
        # index: a table per playbook keyed by the id, not one keyed by (playbook, id) tuples (56
        # bytes a member saved at 100k). A snapshot writes it as the (playbook, id) pairs it was.
        self.entered: dict[int, dict[str, int]] = {}
        self.fired: set[tuple[Any, ...]] = set()
        self.heap: list[HeapEntry] = []
        self.log: list[Action] = []
        self.keep_log = keep_log  # False: actions only go to the sinks (long streamed runs)
        self.sinks: list[Sink] = []
        # Told of each action the delivery policy holds back, as a copy with status "deferred" and
        # the time it will go (the live service's answer lists it; the log does not).
        self.holds: list[Sink] = []
        self.tracer: Tracer | None = None  # told of each decision to start a playbook (sopdsl why)
        self.on_step: StepHook | None = None  # told of each instruction a flow runs (coverage)
        # Told of each timer as it comes due, before it runs (a sharded dry run keys its steps).
        self.on_timer: Callable[[HeapEntry], None] | None = None
        self.watch: FlowWatch | None = None  # told when flows begin, split and end (figures)
        self.tally: EventTally | None = None  # told of each event taken in (figures)
        self.staff_delays: Mapping[str, int | None] = MappingProxyType({})  # a fixture's (see `_Parts`)
        self._seq = 0
        self._flow_ids = 0
        self._depth = 0
        self.delivery = Delivery(
            plan.declarations.policy, plan.declarations.coupons, template_tags=template_tags(plan)
        )
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
        program = plan.declarations
        self.plan = plan
        self.program = program
        self.zone = timeutil.zone(program.timezone)
        # A counter nobody has added to yet reads 0, so `member.warnings < 1` holds for a newcomer.
        counters = frozenset(BUILTIN_COUNTERS) | frozenset(program.counters)
        for earlier, _ in retired:
            counters |= frozenset(earlier.declarations.counters)
        # `coupon X in stock` reads the delivery counters at the moment it is tested.
        stock = self.delivery.left
        prepare_templates(plan)
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
            for c, t_index, trigger in self._absence_on.get("message", ())
            if not in_group(trigger, c.playbook)
        ]
        # Silences counted per group (keyed by `membership`): a message re-arms its own group's only.
        self._silence_in_group = [
            (c, t_index, self.armed[(c.index, t_index)])
            for c, t_index, trigger in self._absence_on.get("message", ())
            if in_group(trigger, c.playbook)
        ]
        # The triggers a member's arrival arms, in registry order (kinds fired by events alone arm nothing).
        self._member_armers = [
            (handler, c, t_index, trigger)
            for kind, handler in HANDLERS.items()
            if type(handler).arm_member is not TriggerHandler.arm_member
            for c, t_index, trigger in self._triggers.get(kind, ())
        ]
        self._event_index = dict(plan.event_index)
        # What a message asks of the plan, asked once here: whether a window counts messages, a
        # threshold watches their counter, and which playbooks a message starts.
        self._message_plan = (
            "message" in self.windows,
            "messages" in self._watched,
            self._event_index.get("message"),
        )
        self._referrer_steps: dict[int, bool] = {}  # by id of a plan step, which lives as long
        self._counter_names = counters

    # ---- set-up ------------------------------------------------------------------------------

    def add_group(
        self,
        group: str | GroupRecord,
        *,
        name: str | None = None,
        tags: Iterable[str] = (),
        timezone: str | None = None,
        operator: str | None = None,
        owner: str | None = None,
    ) -> GroupState:
        """Register a group (from a fixture or a store) before or while running: a `GroupRecord`,
        or an id and the record's fields as keywords. Registering a known group again updates it."""
        record = group_record(
            group,
            {"name": name, "tags": tags, "timezone": timezone, "operator": operator, "owner": owner},
        )
        group_id = record.id
        declared = self.program.groups.get(group_id)
        tz = timeutil.zone(
            record.timezone
            or (declared.timezone if declared and declared.timezone else self.program.timezone)
        )
        state = GroupState(
            id=group_id,
            name=record.name or (declared.title if declared and declared.title else group_id),
            zone=tz,
            tags=set(record.tags) | (set(declared.tags) if declared else set()),
            operator=record.operator or (declared.operator if declared else None),
            owner=record.owner,
        )
        previous = self.groups.get(group_id)
        if previous is not None:
            # Registered again (an update): the group keeps its members and history, and its
            # own timers are set again from the new record instead of doubling up.
            state.members, state.last_message_at = previous.members, previous.last_message_at
            state.dissolved = previous.dissolved
            self.heap = [
                e for e in self.heap if e[3] != group_id or not isinstance(e[5], CalendarDue | GroupSilent)
            ]
            heapq.heapify(self.heap)
        self.groups[group_id] = state
        if self._started:
            self._arm_group(state)
        return state

    def add_member(
        self,
        member: str | MemberRecord,
        *,
        name: str = "",
        nickname: str = "",
        tags: Iterable[str] = (),
        attributes: Mapping[str, Any] | None = None,
        counters: Mapping[str, float] | None = None,
        groups: Iterable[str] = (),
        joined_at: int | None = None,
        referrer: str | None = None,
        channel: str | None = None,
        contact: bool = False,
        owner: str | None = None,
        group_joined_at: Mapping[str, int] | None = None,
        group_last_message_at: Mapping[str, int] | None = None,
        last_order_at: int | None = None,
    ) -> MemberState:
        """Register a member present before the plan took effect (or found since: armed from now).

        Takes a `MemberRecord`, or an id and the record's fields as keywords (the same names:
        `tests/engine/test_records.py` holds them equal). Registering a member the engine knows
        adds what is given (tags, attributes, counters, groups, non-empty fields) and keeps what
        it knows (activity, timers).
        """
        given = {
            "name": name,
            "nickname": nickname,
            "tags": tags,
            "attributes": attributes,
            "counters": counters,
            "groups": groups,
            "joined_at": joined_at,
            "referrer": referrer,
            "channel": channel,
            "contact": contact,
            "owner": owner,
            "group_joined_at": group_joined_at,
            "group_last_message_at": group_last_message_at,
            "last_order_at": last_order_at,
        }  # not `locals()`, which compiled code does not have
        return self._register(member_record(member, given))

    def _register(self, record: MemberRecord) -> MemberState:
        member_id = record.id
        member = self.members.get(member_id)
        if member is None:
            member = MemberState(id=member_id, name=member_id, existing=True)
            self.members[member_id] = member
        member.name = record.name or member.name
        member.nickname = record.nickname or member.nickname
        member.channel = record.channel or member.channel
        member.referrer = record.referrer or member.referrer
        member.owner = record.owner or member.owner
        member.joined_at = record.joined_at if record.joined_at is not None else member.joined_at
        if record.tags:
            member.tags = self.sets.share(member.tags | frozenset(record.tags))
        attributes = member.attributes
        moved = [k for k, v in record.attributes.items() if k not in attributes or attributes[k] != v]
        attributes.update(record.attributes)
        member.counters.update(record.counters)
        if record.contact:
            self.contacts.add(member_id)
        for group_id in (*record.groups, *record.group_joined_at, *record.group_last_message_at):
            if group_id not in self.groups:
                self.add_group(group_id)
            member.groups = self.sets.share(member.groups | {group_id})
            self.groups[group_id].members.add(member_id)
        if record.has_history:
            fold_history(member, record, self.groups)
        if self._started and not member.arrived:
            # Registered late (a bot syncing its member list after the first event): their
            # silence and dates count from now, as `start` does for those registered before.
            member.arrived = True
            self._arm_member(member, self.now)
        elif self._started:
            # Registered again with a date given or changed (a bot syncing a birthday): its date
            # triggers follow it, as after a `set`; the timer of the old day does nothing when due.
            for attribute in moved:
                self._rearm_dates(member, attribute)
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
            for kind, handler in HANDLERS.items():
                for c, t_index, trigger in self._triggers.get(kind, ()):
                    handler.at_start(self, c, t_index, trigger, group)
        for member in sorted(self.members.values(), key=lambda m: m.id):
            self._arm_member(
                member, counted_since(member, self.start_time), silent_since_in(member, self.start_time)
            )
        self._arm_private()

    def _arm_private(self) -> None:
        """Arm the calendar entries of `in private chats` playbooks (one timer each, for every contact)."""
        for c in self.live:
            if c.playbook.scope.kind == "private":
                for e_index, entry in enumerate(c.playbook.schedule):
                    due = self._next_calendar(entry.when, self.zone, self.now)
                    if due is not None:
                        self._push(due, c.index, "", CalendarDue(e_index, _PRIVATE))

    @property
    def started(self) -> bool:
        """Whether the engine has armed its timers (at its first event or advance)."""
        return self._started

    # ---- snapshots ---------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """The engine's state as bytes, for `Engine.restore`; its plans are named by hash, not included.

        Taken between calls (never from a sink or tracer). The log, sinks, tracer and step hook are not kept.
        Data only (see `snapshot.py`); raises `EngineError` if some state cannot be written.
        """
        state = {name: getattr(self, name) for name in _SNAPSHOT_STATE}
        state["entered"] = {(i, who): t for i, table in self.entered.items() for who, t in table.items()}
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
        engine.sets.share_members(engine.members.values())  # as decoded, each member's sets are its own
        engine.delivery.counts.update(state["counts"])
        engine.delivery.stock_used.update(state["stock_used"])
        for name in _SNAPSHOT_STATE:
            if name in state:
                setattr(engine, name, state[name])
        engine.entered = {}
        for (i, who), t in state.get("entered", {}).items():
            engine.entered.setdefault(i, {})[who] = t
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

    @property
    def fed(self) -> int:
        """The number of the last event fed (see `feed`), 0 before the first."""
        return self._fed

    def next_due(self) -> int | None:
        """When the next timer is due, or None if none is pending."""
        return self.heap[0][0] if self.heap else None

    def advance(self, until: int) -> None:
        """Run every timer due at or before `until`, in order, then set the clock to `until`."""
        if not self._started:
            self.start()
        self._run_due(until + 1)
        if until > self.now:
            self.now = until

    def _run_due(self, before: int) -> None:
        """Run every timer due before `before`, in order, the clock moving to each one's time."""
        heap, hook = self.heap, self.on_timer
        while heap and heap[0][0] < before:
            entry = _heappop(heap)
            if entry[0] > self.now:
                self.now = entry[0]
            if hook is not None:
                hook(entry)
            self._fire(entry)

    def feed(self, event: Event, number: int = 0) -> None:
        """Process one event: timers due before it run first, timers due at its instant after it.
        `number`: the event's number among those fed, which its flows' keys name (`#N`), if not
        the next (a sharded dry run feeds each process a part of a timeline, numbered as the whole).
        Many events in a row: `feed_all`, the same steps for each."""
        if self.feed_all((event,), number) is not None:
            raise TypeError(f"an engine is fed events, not {type(event).__name__}")

    # ---- timers ----------------------------------------------------------------------------------

    def _push(self, due: int, playbook: int, member: str, timer: TimerRecord, group: str = "") -> None:
        # Timers due at one instant run by playbook order, then member id ("" for group-level
        # timers, so they come first), then group id, then creation order: never by dict order.
        self._seq = seq = self._seq + 1
        _heappush(self.heap, (due, playbook, member, group, seq, timer))

    def _fire(self, entry: HeapEntry) -> None:
        due, pb_index, member_id, _group, _seq, timer = entry
        # By exact type (the records are final, so mypy still holds the chain to every kind): a
        # `match` tests `isinstance` against a msgspec class, its metaclass's slow path.
        # A trigger's timer (the most of them, first): what armed it (trigger, subject, due) names
        # the flows it starts (see `_origin`).
        if type(timer) is SilenceIn:
            self._cause = entry
            ABSENCE.due_in(self, self.compiled[pb_index], timer, member_id, due)
        elif type(timer) is Absence:
            self._cause = entry
            ABSENCE.due(self, self.compiled[pb_index], timer, member_id, due)
        elif type(timer) is Resume or type(timer) is Timeout:
            flow = self.flows.get(timer.flow)
            if flow is None or flow.token != timer.token:
                return
            if type(timer) is Timeout:
                if isinstance(flow.waiting, WaitTask):
                    self._escalate(flow, flow.waiting)  # undone at its deadline (tasks.py)
                self._unwait(flow)
                step = self.compiled[flow.playbook].steps_of(flow.entry)[flow.pc]
                flow.pc = step.jump if step.jump is not None else flow.pc + 1
            else:
                flow.pc += 1
            self._run(flow)
        elif type(timer) is DateDue:
            self._cause = entry
            DATES.due(self, self.compiled[pb_index], timer, member_id, due)
        elif type(timer) is CalendarDue:
            self._cause = entry
            self._calendar_due(self.compiled[pb_index], timer, due)
        elif type(timer) is GroupSilent:
            self._cause = entry
            GROUP_SILENT.due(self, self.compiled[pb_index], timer, due)
        elif type(timer) is Deliver:
            self._deliver(timer.action, (timer.flow, timer.token))
        elif type(timer) is TaskDone:
            self._event(Event("task_done", self.now, member=None, data={"task": timer.task}))
        else:
            assert_never(timer)
