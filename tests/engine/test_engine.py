"""The engine's semantics, as an operator sees them in the action log.

Three kinds of test: the fixture cases in `tests/engine_cases/` (a playbook, one or more
timelines, and the actions they must produce), direct tests of the `Engine` API for what a
fixture cannot express (same-instant order, A/B proportions, the `planned` time), and a property:
on random small timelines the engine's log equals a deliberately naive reference engine that ticks
minute by minute and scans every member each tick.
"""

from __future__ import annotations

import datetime as dt
import random
import textwrap
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sopdsl
from sopdsl.dryrun.fixtures import parse_fixture
from sopdsl.dryrun.simulate import Simulation, simulate
from sopdsl.dryrun.testing import run_tests
from sopdsl.engine.actions import Action
from sopdsl.engine.engine import Engine
from sopdsl.engine.events import Event
from sopdsl.plan import Plan, timeutil
from sopdsl.source import Source

CASES = Path(__file__).parent.parent / "engine_cases"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def compile_text(text: str) -> Plan:
    """A plan from inline playbook text."""
    return sopdsl.compile_program(sopdsl.check(sopdsl.load_text(textwrap.dedent(text), "inline.sop")))


def run(plan: Plan, fixture: str) -> Simulation:
    """Simulate inline fixture YAML."""
    return simulate(plan, parse_fixture(Source("inline.yaml", textwrap.dedent(fixture))))


def at(text: str, zone: ZoneInfo = SHANGHAI) -> int:
    """A local wall time as epoch seconds."""
    return timeutil.resolve(dt.datetime.fromisoformat(text), zone)


def log(actions: list[Action]) -> list[tuple[str, str | None, str | None, str | None]]:
    """The log as (kind, member, group, template) in order."""
    return [(a.kind, a.member, a.group, a.detail.get("template")) for a in actions]


# ---- the fixture cases ------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", sorted(CASES.glob("*.yaml")), ids=lambda p: p.name)
def test_engine_case(fixture: Path) -> None:
    report = run_tests([fixture])
    [result] = report.results
    assert not result.errors, "\n".join(result.errors)
    failed = [
        f"expect[{o.index}]: {o.message} (nearest: {o.nearest})" for o in result.outcomes if not o.passed
    ]
    assert not failed, "\n".join(failed)
    assert result.outcomes, "a case without expectations proves nothing"


# ---- quiet hours: what the log says about a deferred send ----------------------------------------

QUIET = """
timezone "Asia/Shanghai"
template welcome = "欢迎"
policy { quiet hours 22:00 - 08:00 }
playbook welcome { on member joins do { send welcome to member } }
"""


def test_a_deferred_send_shows_when_it_was_planned() -> None:
    sim = run(
        compile_text(QUIET),
        """
        start: 2026-03-01 09:00
        end: 2026-03-03 00:00
        groups: [{id: g1}]
        events:
          - {at: 2026-03-01 23:00, kind: join, member: m1, group: g1}
          - {at: 2026-03-02 12:00, kind: join, member: m2, group: g1}
        """,
    )
    late, day = sim.actions
    assert (late.member, late.time, late.planned) == ("m1", at("2026-03-02 08:00"), at("2026-03-01 23:00"))
    data = late.to_json(SHANGHAI)
    assert data["at"] == "2026-03-02T08:00:00+08:00"
    assert data["planned"] == "2026-03-01T23:00:00+08:00"
    assert data["reason"] == "quiet hours"
    assert data["status"] == "done"
    # Sent on time: no `planned`, no reason.
    assert day.planned is None
    assert "planned" not in day.to_json(SHANGHAI)
    assert "reason" not in day.to_json(SHANGHAI)


def test_quiet_hours_can_end_after_they_start_on_the_clock() -> None:
    """A window that does not cross midnight (13:00-14:00, a lunch break) works the same way."""
    plan = compile_text(QUIET.replace("22:00 - 08:00", "13:00 - 14:00"))
    sim = run(
        plan,
        """
        start: 2026-03-01 09:00
        end: 2026-03-02 00:00
        groups: [{id: g1}]
        events:
          - {at: 2026-03-01 12:59, kind: join, member: before, group: g1}
          - {at: 2026-03-01 13:30, kind: join, member: during, group: g1}
          - {at: 2026-03-01 14:00, kind: join, member: after, group: g1}
        """,
    )
    times = {a.member: a.time for a in sim.actions}
    assert times == {
        "before": at("2026-03-01 12:59"),
        "during": at("2026-03-01 14:00"),
        "after": at("2026-03-01 14:00"),
    }


# ---- A/B splits ---------------------------------------------------------------------------------

SPLIT = """
timezone "Asia/Shanghai"
template red_poster = "红色海报"
template blue_poster = "蓝色海报"
template a = "a"
template b = "b"
template c = "c"
playbook poster_test {
    on member joins
    do {
        split {
            red 50%: send red_poster to member
            blue 50%: send blue_poster to member
        }
    }
}
playbook three_way {
    on member joins
    do {
        split {
            small 20%: send a to member
            medium 30%: send b to member
            large 50%: send c to member
        }
    }
}
"""
SPLIT_PLAN = compile_text(SPLIT)


def arms(seed: int, members: list[str]) -> dict[tuple[str, str], str]:
    """Each (playbook, member)'s arm when the members join one a minute in the given order."""
    engine = Engine(SPLIT_PLAN, start=at("2026-03-01 09:00"), seed=seed)
    engine.add_group("g1")
    for minute, member in enumerate(members):
        engine.feed(Event("join", at("2026-03-01 10:00") + 60 * minute, member=member, group="g1"))
    return {(a.playbook, str(a.member)): str(a.detail["arm"]) for a in engine.log}


def test_split_proportions_and_stability() -> None:
    members = [f"wx_{n:04d}" for n in range(2000)]
    chosen = arms(7, members)
    counts: dict[str, int] = defaultdict(int)
    for arm in chosen.values():
        counts[arm] += 1
    # 50/50 within a few percent of 1,000 each; 20/30/50 likewise.
    assert abs(counts["red"] - 1000) <= 60 and counts["red"] + counts["blue"] == 2000
    assert abs(counts["small"] - 400) <= 60
    assert abs(counts["medium"] - 600) <= 60
    assert abs(counts["large"] - 1000) <= 60
    # The same member gets the same arm for the same seed, whatever order or time they join in.
    shuffled = members[:]
    random.Random(1).shuffle(shuffled)
    assert arms(7, shuffled) == chosen
    # A different seed reshuffles: about half of the members change arm.
    other = arms(8, members)
    changed = sum(other[k] != chosen[k] for k in chosen if k[0] == "poster_test")
    assert 800 <= changed <= 1200


def test_the_send_records_its_arm() -> None:
    sim = run(
        SPLIT_PLAN,
        """
        start: 2026-03-01 09:00
        seed: 3
        groups: [{id: g1}]
        events:
          - {at: 2026-03-01 10:00, kind: join, member: m1, group: g1}
        """,
    )
    poster = next(a for a in sim.actions if a.playbook == "poster_test")
    assert poster.detail["template"] == f"{poster.detail['arm']}_poster"


# ---- same-instant order ------------------------------------------------------------------------

ORDER = """
timezone "Asia/Shanghai"
template hello = "hello"
template noon = "noon"
template nudge_a = "a"
template nudge_b = "b"
calendar noon_daily = every day at 12:00
playbook noon_post { at noon_daily: send noon to group }
playbook first_silence {
    on member silent for 1 day
    apply to all members
    do { send nudge_a to member }
}
playbook welcome { on member joins do { send hello to member } }
playbook second_silence {
    on member silent for 1 day
    apply to all members
    do { send nudge_b to member }
}
"""
ORDER_PLAN = compile_text(ORDER)


def order_run(members: list[str], groups: list[str]) -> list[Action]:
    engine = Engine(ORDER_PLAN, start=at("2026-03-01 12:00"))
    for group in groups:
        engine.add_group(group)
    for member in members:
        engine.add_member(member, groups=["g1"])
    # At 2026-03-02 12:00 the calendar and every silence deadline are due, and two members join.
    engine.feed(Event("join", at("2026-03-02 12:00"), member="zed", group="g2"))
    engine.feed(Event("join", at("2026-03-02 12:00"), member="amy", group="g2"))
    engine.advance(at("2026-03-02 12:00"))
    return [a for a in engine.log if a.time == at("2026-03-02 12:00")]


def test_same_instant_order() -> None:
    actions = order_run(["m3", "m1", "m2"], ["g2", "g1"])
    assert log(actions) == [
        # Events first, in timeline order (zed before amy, though amy sorts first) ...
        ("send", "zed", "g2", "hello"),
        ("send", "amy", "g2", "hello"),
        # ... then the timers due at that instant: by playbook order, then member id; a group's
        # calendar entry (no member) before member timers, and groups by id.
        ("send", None, "g1", "noon"),
        ("send", None, "g2", "noon"),
        ("send", "m1", "g1", "nudge_a"),
        ("send", "m2", "g1", "nudge_a"),
        ("send", "m3", "g1", "nudge_a"),
        ("send", "m1", "g1", "nudge_b"),
        ("send", "m2", "g1", "nudge_b"),
        ("send", "m3", "g1", "nudge_b"),
    ]


def test_order_does_not_depend_on_the_order_things_were_registered() -> None:
    first = order_run(["m1", "m2", "m3"], ["g1", "g2"])
    for members, groups in ((["m3", "m2", "m1"], ["g2", "g1"]), (["m2", "m3", "m1"], ["g1", "g2"])):
        again = order_run(members, groups)
        assert [(a.time, a.kind, a.member, a.group, a.key, a.detail) for a in again] == [
            (a.time, a.kind, a.member, a.group, a.key, a.detail) for a in first
        ]


def test_timers_due_before_an_event_run_before_it() -> None:
    engine = Engine(ORDER_PLAN, start=at("2026-03-01 12:00"))
    engine.add_member("m1", groups=["g1"])
    engine.feed(Event("join", at("2026-03-03 09:00"), member="m9", group="g1"))
    assert log(engine.log) == [
        ("send", None, "g1", "noon"),  # 2 March 12:00
        ("send", "m1", "g1", "nudge_a"),
        ("send", "m1", "g1", "nudge_b"),
        ("send", "m9", "g1", "hello"),  # 3 March 09:00
    ]
    assert engine.now == at("2026-03-03 09:00")
    assert engine.next_due() == at("2026-03-03 12:00")


def test_a_tag_is_logged_before_what_it_triggers() -> None:
    plan = compile_text(
        """
        timezone "Asia/Shanghai"
        template vip_welcome = "欢迎成为 VIP"
        playbook promote { on member orders do { tag member "vip" } }
        playbook vip { on member is tagged "vip" do { send vip_welcome to member } }
        """
    )
    engine = Engine(plan, start=at("2026-03-01 09:00"))
    engine.add_member("m1", groups=["g1"])
    engine.feed(Event("order", at("2026-03-01 10:00"), member="m1", group="g1"))
    assert log(engine.log) == [("tag", "m1", "g1", None), ("send", "m1", "g1", "vip_welcome")]


def test_a_tag_loop_between_playbooks_stops() -> None:
    plan = compile_text(
        """
        timezone "Asia/Shanghai"
        playbook flip { on member is tagged "a" repeat always do { untag member "a"  tag member "b" } }
        playbook flop { on member is tagged "b" repeat always do { untag member "b"  tag member "a" } }
        """
    )
    engine = Engine(plan, start=at("2026-03-01 09:00"))
    engine.add_member("m1", groups=["g1"])
    engine.feed(Event("tag", at("2026-03-01 10:00"), member="m1", group="g1", name="a"))
    assert 0 < len(engine.log) < 200


# ---- flows: a kick or a dissolve does not cut its own flow short ------------------------------------


def test_the_flow_that_kicks_carries_on_and_other_flows_of_that_member_end() -> None:
    plan = compile_text(
        """
        timezone "Asia/Shanghai"
        template log_line = "已移出"
        template later = "later"
        playbook remove { on member is reported do { kick member  send log_line to operator } }
        playbook long_wait { on member joins do { wait 1 day  send later to member } }
        """
    )
    sim = run(
        plan,
        """
        start: 2026-03-01 09:00
        end: 2026-03-05 00:00
        groups: [{id: g1, operator: 小美}]
        events:
          - {at: 2026-03-01 10:00, kind: join, member: m1, group: g1}
          - {at: 2026-03-01 11:00, kind: report, member: m1, group: g1}
        """,
    )
    assert log(sim.actions) == [("kick", "m1", "g1", None), ("send", "m1", "g1", "log_line")]
    assert sim.actions[1].target == "operator"
    assert sim.actions[1].detail["operator"] == "小美"


# ---- the reference engine property -----------------------------------------------------------------

REFERENCE_PROGRAM = """
timezone "Asia/Shanghai"
template hi = "hi"
template warn = "warn"
template daily = "daily"
calendar twice_daily = every day at 12:00, 23:30
policy { quiet hours 22:00 - 08:00 }
playbook welcome { on member joins do { send hi to member } }
playbook prune {
    on member silent for 2 days
    apply to all members
    do {
        send warn to member
        wait 1 day for member posts else { kick member }
    }
}
playbook daily { at twice_daily: send daily to group }
"""
REFERENCE_PLAN = compile_text(REFERENCE_PROGRAM)
DAY = 1440  # minutes
DAYS = 5
START = at("2026-03-01 00:00")  # midnight, and Shanghai has no DST: minute % DAY is the wall clock
MEMBERS = ("m1", "m2", "m3", "m4")
Entry = tuple[
    int, str, str | None, str | None, str | None, str
]  # minute, kind, member, group, template, status


def quiet(minute: int) -> bool:
    return minute % DAY >= 22 * 60 or minute % DAY < 8 * 60


def after_quiet(minute: int) -> int:
    clock = minute % DAY
    return minute - clock + (DAY if clock >= 22 * 60 else 0) + 8 * 60


@dataclass
class RefMember:
    in_group: bool
    since: int | None  # the silence count's start while armed; None when disarmed
    last_message: int | None = None
    welcomed: bool = False
    pruned: bool = False
    welcome_at: int | None = None  # the welcome, held by quiet hours until then
    warn_at: int | None = None  # the warning, held likewise
    waiting_until: int | None = None  # waiting for a post until then


def reference(present: set[str], events: list[tuple[int, str, str]]) -> list[Entry]:
    """The three playbooks above, by brute force: every minute, every member."""
    out: list[Entry] = []
    people = {m: RefMember(in_group=m in present, since=0 if m in present else None) for m in MEMBERS}
    cancelled: list[tuple[int, str, str]] = []  # (when, member, template): flow ended, still logged
    night_sends: list[int] = []
    at_minute: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for minute, member, kind in events:
        at_minute[minute].append((member, kind))

    def end_flows(member: str, person: RefMember) -> None:
        for template, when in (("hi", person.welcome_at), ("warn", person.warn_at)):
            if when is not None:
                cancelled.append((when, member, template))
        person.welcome_at = person.warn_at = person.waiting_until = None

    for t in range(DAYS * DAY + 1):
        for member, kind in at_minute.get(t, ()):  # events, in timeline order
            person = people[member]
            if kind == "join":
                person.in_group = True
                person.since = t
                if not person.welcomed:
                    person.welcomed = True
                    if quiet(t):
                        person.welcome_at = after_quiet(t)
                    else:
                        out.append((t, "send", member, "g1", "hi", "done"))
            elif kind == "leave":
                person.in_group = False
                end_flows(member, person)
            else:
                person.last_message = t
                person.waiting_until = None  # the wait's `then`: nothing more to do
                if person.since is None:
                    person.since = t
        # Then the timers due now; playbook by playbook, member by member.
        for member in MEMBERS:
            if people[member].welcome_at == t:
                out.append((t, "send", member, "g1", "hi", "done"))
                people[member].welcome_at = None
        out.extend((t, "send", m, "g1", template, "dropped") for when, m, template in cancelled if when == t)
        for member in MEMBERS:
            person = people[member]
            if person.warn_at == t:
                out.append((t, "send", member, "g1", "warn", "done"))
                person.warn_at, person.waiting_until = None, t + DAY
            elif person.waiting_until == t:
                out.append((t, "kick", member, "g1", None, "done"))
                person.in_group = False
                end_flows(member, person)
            if person.since is not None and t >= max(person.since, person.last_message or 0) + 2 * DAY:
                person.since = None
                if person.in_group and not person.pruned:
                    person.pruned = True
                    if quiet(t):
                        person.warn_at = after_quiet(t)
                    else:
                        out.append((t, "send", member, "g1", "warn", "done"))
                        person.waiting_until = t + DAY
        if t % DAY == 12 * 60 or t in night_sends:
            out.append((t, "send", None, "g1", "daily", "done"))
        if t % DAY == 23 * 60 + 30:
            night_sends.append(after_quiet(t))
    return out


def engine_log(present: set[str], events: list[tuple[int, str, str]]) -> list[Entry]:
    engine = Engine(REFERENCE_PLAN, start=START)
    engine.add_group("g1")
    for member in sorted(present):
        engine.add_member(member, groups=["g1"])
    for minute, member, kind in events:
        engine.feed(Event(kind, START + 60 * minute, member=member, group="g1"))
    engine.advance(START + DAYS * DAY * 60)
    return [
        ((a.time - START) // 60, a.kind, a.member, a.group, a.detail.get("template"), a.status)
        for a in engine.log
    ]


def valid(present: set[str], raw: list[tuple[int, str, str]]) -> list[tuple[int, str, str]]:
    """Keep the events that make sense in order: joins from outside, leaves and posts from inside."""
    inside = set(present)
    kept = []
    for minute, member, kind in sorted(raw, key=lambda e: e[0]):
        if (kind == "join") == (member in inside):
            continue
        if kind == "join":
            inside.add(member)
        elif kind == "leave":
            inside.discard(member)
        kept.append((minute, member, kind))
    return kept


# Half-hour marks make coincidences likely: deadlines, quiet-hour edges and calendar times.
minutes = st.one_of(
    st.integers(0, DAYS * DAY // 30 - 1).map(lambda k: 30 * k), st.integers(0, DAYS * DAY - 1)
)
raw_events = st.lists(
    st.tuples(minutes, st.sampled_from(MEMBERS), st.sampled_from(["join", "leave", "message", "message"])),
    max_size=16,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(present=st.sets(st.sampled_from(MEMBERS)), raw=raw_events)
def test_engine_matches_the_reference(present: set[str], raw: list[tuple[int, str, str]]) -> None:
    events = valid(present, raw)
    assert sorted(engine_log(present, events), key=repr) == sorted(reference(present, events), key=repr)


def test_reference_sees_the_interesting_cases() -> None:
    """The reference is only worth comparing with if it exercises kicks, drops and deferrals."""
    # m1 never posts: warned at 00:00 on day 2 (held to 08:00), kicked a day later.
    # m2 leaves while its warning waits for 08:00: the warning is dropped.
    # m3 joins at 23:00 (welcome held to 08:00) and answers the warning in time.
    events = valid(
        {"m1", "m2"},
        [
            (2 * DAY + 3 * 60, "m2", "leave"),
            (23 * 60, "m3", "join"),
            (3 * DAY + 23 * 60 + 30, "m3", "message"),
        ],
    )
    expected = reference({"m1", "m2"}, events)
    assert (2 * DAY + 8 * 60, "send", "m1", "g1", "warn", "done") in expected
    assert (3 * DAY + 8 * 60, "kick", "m1", "g1", None, "done") in expected
    assert (2 * DAY + 8 * 60, "send", "m2", "g1", "warn", "dropped") in expected
    assert (DAY + 8 * 60, "send", "m3", "g1", "hi", "done") in expected
    assert not any(e[1] == "kick" and e[2] == "m3" for e in expected)
    assert sorted(engine_log({"m1", "m2"}, events), key=repr) == sorted(expected, key=repr)


def test_a_member_registered_after_the_start_is_counted_silent_from_then() -> None:
    plan = compile_text(
        """
        timezone "Asia/Shanghai"
        attribute birthday: date "生日"
        template nudge = "好久不见"
        template cake = "生日快乐"
        playbook quiet {
            in all groups
            on member silent for 7 days
            do { send nudge to member }
        }
        playbook birthday {
            in all groups
            on member.birthday at 09:00
            repeat always
            do { send cake to member }
        }
        """
    )
    start = at("2026-03-02 09:00")
    engine = Engine(plan, start=start)
    engine.add_group("g1")
    engine.feed(Event("join", start, member="m1", group="g1"))
    engine.advance(start + 3 * 86400)
    # A bot syncing its member list after the first event: silence and dates count from now.
    engine.add_member("late", groups=["g1"], attributes={"birthday": "1990-03-10"})
    engine.feed(Event("message", start + 5 * 86400, member="late", group="g1"))
    # Registered again: what is known (the message, the timers) stays; nothing is armed twice.
    engine.add_member("late", groups=["g1"], tags=["vip"])
    engine.advance(start + 20 * 86400)
    sent = [(a.member, a.detail["template"], (a.time - start) // 86400) for a in engine.log]
    assert sent == [("m1", "nudge", 7), ("late", "cake", 8), ("late", "nudge", 12)]
    assert engine.members["late"].tags == {"vip"}


def test_a_playbook_whose_triggers_fire_together_runs_once_but_one_trigger_twice_runs_twice() -> None:
    plan = compile_text(
        """
        timezone "Asia/Shanghai"
        template back = "好久不见"
        template thanks = "谢谢"
        playbook lapsed {
            in all groups
            on no order for 30 days
            on member silent for 30 days
            apply to all members
            repeat always
            do { send back to member }
        }
        playbook chatter {
            in all groups
            on member posts
            repeat always
            do { send thanks to member }
        }
        """
    )
    start = at("2026-03-02 09:00")
    engine = Engine(plan, start=start)
    engine.add_member("m1", groups=["g1"])  # neither orders nor posts: both silences end together
    decisions: list[str] = []
    engine.tracer = lambda d: decisions.append(d.verdict)
    engine.feed(Event("message", start + 40 * 86400, member="m2", group="g1"))
    engine.feed(Event("message", start + 40 * 86400, member="m2", group="g1"))
    sent = [(a.member, a.detail["template"], (a.time - start) // 86400) for a in engine.log]
    assert sent == [("m1", "back", 30), ("m2", "thanks", 40), ("m2", "thanks", 40)]
    assert "already started at this instant by another of its triggers" in decisions


CLASS_REMINDER = """
timezone "Asia/Shanghai"
template preview = "今晚课程预告"
calendar noon = every day at 12:00
playbook preview {
    in groups tagged "class"
    at noon: send preview to group
}
"""


def test_registering_a_known_group_again_updates_it_without_doubling_its_calendar() -> None:
    engine = Engine(compile_text(CLASS_REMINDER), start=at("2026-03-01 09:00"))
    engine.add_group("g1", tags=["class"])
    engine.add_member("m1", groups=["g1"])
    engine.start()
    engine.add_group("g1", name="周二班", tags=["class"])  # an update: same tags, a name
    engine.add_group("g2", tags=[])
    engine.add_group("g2", tags=["class"])  # now in scope
    engine.advance(at("2026-03-02 13:00"))
    sends = [(a.group, a.time) for a in engine.log if a.kind == "send"]
    noon = [at("2026-03-01 12:00"), at("2026-03-02 12:00")]
    assert sends == [("g1", noon[0]), ("g2", noon[0]), ("g1", noon[1]), ("g2", noon[1])]
    assert engine.groups["g1"].members == {"m1"} and engine.groups["g1"].name == "周二班"
