"""`sopdsl.engine.history`: a member registered with history has it folded into the times the
engine keeps, and their absences counted from it, as a bot syncing an existing community would
register them through `Engine.add_member` (or `Runtime.add_member`)."""

from __future__ import annotations

import textwrap

import sopdsl
from sopdsl.engine.engine import Engine
from sopdsl.engine.records import MemberRecord
from sopdsl.plan import Plan

START = 1_772_413_200  # 2026-03-02 09:00 in Shanghai
DAY = 86_400

PLAYBOOKS = """
timezone "Asia/Shanghai"
template nudge = "好久没人说话了"
playbook quiet_group {
    in groups tagged "normal"
    on group silent for 7 days
    do { send nudge to group }
}
playbook prune {
    in groups tagged "normal"
    on member silent for 28 days
    apply to all members
    do { kick member }
}
"""


def plan() -> Plan:
    return sopdsl.compile_program(sopdsl.check(sopdsl.load_text(textwrap.dedent(PLAYBOOKS), "inline.sop")))


def run(*members: MemberRecord) -> list[tuple[int, str, str | None, str | None]]:
    engine = Engine(plan(), start=START)
    engine.add_group("g1", tags=["normal"])
    engine.add_group("g2", tags=["normal"])
    for member in members:
        engine.add_member(member)
    engine.start()
    engine.advance(START + 40 * DAY)
    return [(a.time - START, a.kind, a.member, a.group) for a in engine.log]


def test_history_folds_into_last_messages_and_join_time() -> None:
    engine = Engine(plan(), start=START)
    engine.add_member(
        MemberRecord(
            id="m1",
            group_joined_at={"g1": START - 300 * DAY, "g2": START - 100 * DAY},
            group_last_message_at={"g1": START - 30 * DAY, "g2": START - 3 * DAY},
            last_order_at=START - 50 * DAY,
        )
    )
    member = engine.members["m1"]
    assert member.groups == {"g1", "g2"}  # the groups it gives history for, even if not listed
    assert member.last_message_at == START - 3 * DAY  # the latest of its groups'
    assert member.joined_at == START - 300 * DAY  # the earliest join
    assert member.last_order_at == START - 50 * DAY
    assert engine.groups["g1"].last_message_at == START - 30 * DAY
    assert engine.groups["g2"].last_message_at == START - 3 * DAY


def test_a_silence_that_began_before_the_start_is_due_on_day_one() -> None:
    log = run(
        MemberRecord(
            id="old",
            group_joined_at={"g1": START - 400 * DAY},
            group_last_message_at={"g1": START - 40 * DAY},
        ),
        MemberRecord(id="recent", group_last_message_at={"g2": START - 2 * DAY}),
        MemberRecord(id="plain", groups=("g2",)),
    )
    # g1 last heard 40 days ago, and its member too: both due at the start. g2 heard 2 days ago.
    assert (0, "send", None, "g1") in log and (0, "kick", "old", "g1") in log
    assert (5 * DAY, "send", None, "g2") in log
    # Silent since 2 days before the start: 26 days in; without history, 28 days in.
    assert (26 * DAY, "kick", "recent", "g2") in log
    assert (28 * DAY, "kick", "plain", "g2") in log


WINBACK = """
timezone "Asia/Shanghai"
template back = "好久不见"
playbook winback {
    in private chats
    on no order for 365 days
    apply to all members
    do { send back to member }
}
playbook group_winback {
    in all groups
    on no order for 365 days
    apply to all members
    do { send back to member }
}
"""


def test_no_order_for_counts_a_contact_in_no_group_from_their_last_order() -> None:
    text = textwrap.dedent(WINBACK)
    engine = Engine(sopdsl.compile_program(sopdsl.check(sopdsl.load_text(text, "w.sop"))), start=START)
    engine.add_group("g1")
    engine.add_member(MemberRecord(id="lapsed", contact=True, last_order_at=START - 400 * DAY))
    engine.add_member(MemberRecord(id="recent", contact=True, last_order_at=START - 300 * DAY))
    engine.add_member(MemberRecord(id="unknown", contact=True))
    engine.add_member(MemberRecord(id="grouped", groups=("g1",), last_order_at=START - 400 * DAY))
    engine.start()
    engine.advance(START + 400 * DAY)
    sent = {(a.member, a.playbook): a.time - START for a in engine.log if a.kind == "send"}
    # Last ordered 400 days before the start: due on day one; 300 days before: 65 days in.
    assert sent[("lapsed", "winback")] == 0
    assert sent[("recent", "winback")] == 65 * DAY
    assert sent[("unknown", "winback")] == 365 * DAY  # nothing known: from the start
    # A group member without group history still counts from the start, as before.
    assert sent[("grouped", "group_winback")] == 365 * DAY
