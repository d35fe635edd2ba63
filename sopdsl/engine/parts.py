"""What the engine's parts share: a compiled playbook, and the declared state and
methods each part may use of the others (`_Parts`); the parts stack up, one the base of
the next, into `Engine`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final
from zoneinfo import ZoneInfo

from sopdsl import lang
from sopdsl.engine.actions import Action
from sopdsl.engine.conditions import Stock, Test, compile_cond
from sopdsl.engine.events import Event
from sopdsl.engine.plain import AbsenceRule, Coupon, Part, Step, plain_step
from sopdsl.engine.policy import Delivery
from sopdsl.engine.records import GroupRecord
from sopdsl.engine.state import Flow, GroupState, MemberState, SharedSets
from sopdsl.engine.tally import EventTally
from sopdsl.engine.timers import TimerRecord
from sopdsl.engine.trace import FlowWatch, StepHook, Tracer
from sopdsl.kinds import WIRE_EVENTS
from sopdsl.plan import CompiledPlaybook, Declarations, Instr, Plan, TemplateField, timeutil

# What is being processed now, from which a flow started now takes its origin: the origin's text
# itself, the event fed (its text depends on its id, else on the count fed), or a trigger's timer
# entry (due, playbook, member, group, seq, timer). Kept as given and written out only when a flow
# starts or a key needs it: most events and timers start nothing.
Cause = str | Event | tuple[Any, ...]
# A timer on the heap: due, playbook, member, group, creation order, and what it does (`_push`).
HeapEntry = tuple[int, int, str, str, int, TimerRecord]

# The kinds an event needs only a member (and an object of data) for, from the registry: `feed_all`
# checks those inline and `validate`s the rest (a name, a payload's text, or no member at all).
_MEMBER_ONLY: Final = frozenset(
    spec.wire
    for spec in WIRE_EVENTS.values()
    if spec.needs_member and not spec.needs_name and spec.needs_text is None
)
_MAX_CASCADE = 32  # tag events caused by tag actions: a loop of playbooks stops here
_PRIVATE = "\x00private"  # the calendar key of `in private chats` entries (no group)
_GRACE = 60  # a timer this late (seconds) was missed while the runtime was down


def membership(member_id: str, group_id: str) -> str:
    """The key of a member's place in one group, in the armed table of a group-scoped silence."""
    return f"{member_id}\x00{group_id}"


def in_group(trigger: Any, pb: CompiledPlaybook) -> bool:
    """Whether an absence trigger counts per group: `silent for` in a playbook scoped to groups
    means "has not spoken in this group"; in private chats, and for orders and invites, per member."""
    return (
        isinstance(trigger, lang.OnAbsence)
        and trigger.event is lang.EventKind.MESSAGE
        and pb.scope.kind != "private"
    )


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
        self.program = plan.declarations
        self.version = plan.content_hash[:12]
        # The action kinds the platform leaves to staff (see `_act`), asked of pydantic once.
        platform = plan.declarations.platform
        self.cannot: frozenset[str] = frozenset(platform.cannot) if platform is not None else frozenset()
        self.playbook = compiled
        self.code = compiled.code
        self.schedule = tuple(entry.code for entry in compiled.schedule)
        # The same instructions as `Step`s, for running them.
        program = plan.declarations
        self.steps = tuple(plain_step(instr, program) for instr in self.code)
        self.schedule_steps = tuple(tuple(plain_step(i, program) for i in code) for code in self.schedule)
        self.coupons = {
            name: Coupon(
                name,
                coupon.title or coupon.name,
                coupon.worth,
                timeutil.span(coupon.valid) if coupon.valid else None,
            )
            for name, coupon in program.coupons.items()
        }
        pb = compiled
        # Read per start: whether `active` can ever hold a start back, and `repeat` (asked of pydantic once).
        self.name = pb.name
        self.per_group = tuple(in_group(trigger, pb) for trigger in pb.triggers)  # see `in_group`
        self.trigger_locs = tuple(f"{trigger.loc}" for trigger in pb.triggers)  # what a start names
        # Its absence triggers by index: what a silence's timer reads when it comes due.
        self.absence_of: dict[int, AbsenceRule] = {
            i: AbsenceRule(trigger.event, timeutil.span(trigger.duration), trigger.loc)
            for i, trigger in enumerate(pb.triggers)
            if isinstance(trigger, lang.OnAbsence)
        }
        self.always_active = pb.active_from is None and pb.active_until is None
        # `repeat always` with no `active` window: `_held_back` can never hold a start back.
        self.never_held = self.always_active and pb.repeat is lang.Repeat.ALWAYS
        self.repeat = pb.repeat
        # Scope as plain values: asked for every start, join and silence due, and reading a
        # pydantic model's field goes through its `__getattr__` hook (a few times dearer).
        scope = pb.scope
        self.scope_kind: str = scope.kind
        self.scope_tags = frozenset(scope.tags)
        self.scope_groups = frozenset(scope.groups)
        self.apply_to_existing: bool = pb.apply_to_existing
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

    def steps_of(self, entry: int) -> tuple[Step, ...]:
        """The instructions of the `do` steps (entry -1) or of a calendar entry, as `Step`s."""
        return self.steps if entry < 0 else self.schedule_steps[entry]


class _Parts(ABC):
    """The state and the methods the engine's parts share; each part defines some of the methods."""

    # Every attribute a slot, none in an instance dict: an engine has more attributes than the 30
    # whose keys CPython 3.11 shares between instances, and past that no method call or attribute
    # read on `self` is specialized (in a microbenchmark a call and a read cost 1.5-2x); on slots
    # they are. An attribute added to the engine is added here, and to one of the lists of
    # tests/engine/test_snapshot.py (the state a snapshot keeps, or what is rebuilt or the caller's).
    __slots__ = (
        "_absence_on",
        "_cause",
        "_counter_names",
        "_depth",
        "_event_index",
        "_fed",
        "_flow_ids",
        "_instant",
        "_member_armers",
        "_message_absence",
        "_message_plan",
        "_referrer_steps",
        "_seq",
        "_silence_in_group",
        "_started",
        "_started_now",
        "_triggers",
        "_watched",
        "armed",
        "compiled",
        "contacts",
        "delivery",
        "entered",
        "fired",
        "flows",
        "groups",
        "heap",
        "holds",
        "keep_log",
        "live",
        "log",
        "member_flows",
        "members",
        "now",
        "on_step",
        "on_timer",
        "plan",
        "program",
        "seed",
        "sets",
        "sinks",
        "staff_delays",
        "start_time",
        "tally",
        "task_delay",
        "tracer",
        "waits",
        "watch",
        "window_span",
        "windows",
        "zone",
    )

    # The engine's state (see Engine.__init__ and _install), shared by every part.
    now: int
    start_time: int
    seed: int
    task_delay: int | None
    members: dict[str, MemberState]
    sets: SharedSets  # the members' tags and groups, one frozenset per distinct set
    groups: dict[str, GroupState]
    flows: dict[int, Flow]
    waits: dict[str, set[int]]
    entered: dict[int, dict[str, int]]
    fired: set[tuple[Any, ...]]
    heap: list[HeapEntry]
    log: list[Action]
    keep_log: bool
    sinks: list[Sink]
    holds: list[Sink]
    tracer: Tracer | None
    on_step: StepHook | None
    on_timer: Callable[[HeapEntry], None] | None
    watch: FlowWatch | None
    tally: EventTally | None
    delivery: Delivery
    window_span: int
    member_flows: dict[str, list[int]]
    contacts: set[str]
    plan: Plan
    program: Declarations
    zone: ZoneInfo
    live: list[_Compiled]
    compiled: list[_Compiled]
    windows: set[str]
    armed: dict[tuple[int, int], dict[str, int]]
    _seq: int
    _flow_ids: int
    _depth: int
    _started: bool
    _instant: int
    _started_now: dict[tuple[int, str], str]
    _fed: int
    _cause: Cause
    _triggers: dict[str, list[tuple[_Compiled, int, Any]]]
    _absence_on: dict[str, list[tuple[_Compiled, int, Any]]]
    _watched: set[str]
    _message_absence: list[tuple[_Compiled, int, dict[str, int]]]
    _silence_in_group: list[tuple[_Compiled, int, dict[str, int]]]
    _event_index: dict[str, tuple[tuple[int, int], ...]]
    _member_armers: list[tuple[Any, _Compiled, int, Any]]
    _message_plan: tuple[bool, bool, tuple[tuple[int, int], ...] | None]
    _referrer_steps: dict[int, bool]
    _counter_names: frozenset[str]
    # Simulated staff who finish their tasks after their own delay (None: never), by name; the
    # others after `task_delay`. Set by the dry run from a fixture; the live service has real staff.
    staff_delays: Mapping[str, int | None]

    @abstractmethod
    def _act(
        self,
        flow: Flow,
        c: _Compiled,
        step: Step,
        member: MemberState | None,
        group: GroupState | None,
        tz: ZoneInfo,
    ) -> None: ...

    @abstractmethod
    def _active(self, pb: CompiledPlaybook, now: int, tz: ZoneInfo) -> bool: ...

    @abstractmethod
    def _arm_group(self, group: GroupState) -> None: ...

    @abstractmethod
    def _arm_member(self, member: MemberState, since: int) -> None: ...

    @abstractmethod
    def _begin(
        self,
        c: _Compiled,
        entry: int,
        member: MemberState | None,
        group: GroupState | None,
        trigger: str,
        event: dict[str, Any],
        now: int,
    ) -> None: ...

    @abstractmethod
    def _deliver(self, action: Action, hold: tuple[int, int]) -> None: ...

    @abstractmethod
    def _drop(self, flow: Flow) -> None: ...

    @abstractmethod
    def _emit(self, action: Action) -> None: ...

    @abstractmethod
    def _end_flows(self, member_id: str, group_id: str | None, keep: int | None = None) -> None: ...

    @abstractmethod
    def _event(self, event: Event) -> None: ...

    @abstractmethod
    def _fire(self, entry: HeapEntry) -> None: ...

    @abstractmethod
    def _run_due(self, before: int) -> None: ...

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def _held_back(self, pb: CompiledPlaybook, last: int | None, now: int, tz: ZoneInfo) -> str | None: ...

    @abstractmethod
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
    ) -> bool | None: ...

    @abstractmethod
    def _in_scope(self, c: _Compiled, group_id: str | None) -> bool: ...

    @abstractmethod
    def _key(self, event: Event) -> str: ...

    @abstractmethod
    def _key_for(self, flow: Flow) -> str: ...

    @abstractmethod
    def _origin(self) -> str: ...

    @abstractmethod
    def _member_group(self, c: _Compiled, member: MemberState) -> str | None: ...

    @abstractmethod
    def _member_in_scope(self, c: _Compiled, member: MemberState) -> bool: ...

    @abstractmethod
    def _next_calendar(self, when: lang.CalRef, tz: ZoneInfo, after: int) -> int | None: ...

    @abstractmethod
    def _push(self, due: int, playbook: int, member: str, timer: TimerRecord, group: str = "") -> None: ...

    @abstractmethod
    def _ref_value(
        self, ref: lang.Ref, flow: Flow, member: MemberState | None, group: GroupState | None
    ) -> Any: ...

    @abstractmethod
    def _render(
        self,
        source: str,
        parts: tuple[Part, ...] | None,
        flow: Flow,
        member: MemberState | None,
        group: GroupState | None,
    ) -> str: ...

    @abstractmethod
    def _render_text(
        self,
        source: str,
        parts: tuple[str | TemplateField, ...] | None,
        flow: Flow,
        member: MemberState | None,
        group: GroupState | None,
    ) -> tuple[str, str | None]: ...

    @abstractmethod
    def _run(self, flow: Flow) -> None: ...

    @abstractmethod
    def _assign(
        self,
        flow: Flow,
        c: _Compiled,
        instr: Instr,
        member: MemberState | None,
        group: GroupState | None,
        tz: ZoneInfo,
    ) -> int: ...

    @abstractmethod
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
    ) -> None: ...

    @abstractmethod
    def _start_group_flow(self, c: _Compiled, group: GroupState, trigger: str, now: int) -> None: ...

    @abstractmethod
    def _threshold(self, member: MemberState, counter: str, before: float, after: float) -> None: ...

    @abstractmethod
    def _unwait(self, flow: Flow) -> None: ...

    @abstractmethod
    def add_group(
        self,
        group: str | GroupRecord,
        *,
        name: str | None = None,
        tags: Iterable[str] = (),
        timezone: str | None = None,
        operator: str | None = None,
        owner: str | None = None,
    ) -> GroupState: ...

    @abstractmethod
    def _install(self, plan: Plan, retired: list[tuple[Plan, int]]) -> None: ...

    @abstractmethod
    def _arm_private(self) -> None: ...

    @abstractmethod
    def advance(self, until: int) -> None: ...
