"""Where playbooks apply: private chats (contacts added without a group), member-level events
that carry no group, and group-level triggers, which obey `when`, `repeat` and `active` as
member triggers do."""

from __future__ import annotations

import textwrap

import sopdsl
from sopdsl.dryrun.fixtures import parse_fixture
from sopdsl.dryrun.simulate import simulate
from sopdsl.engine.actions import Action
from sopdsl.source import Source


def run(playbook: str, fixture: str) -> list[Action]:
    """The action log of an inline playbook over an inline fixture."""
    loaded = sopdsl.load_text(textwrap.dedent(playbook), "inline.sop")
    plan = sopdsl.compile_program(sopdsl.check(loaded))
    return simulate(plan, parse_fixture(Source("inline.yaml", textwrap.dedent(fixture)))).actions


def log(actions: list[Action]) -> list[tuple[str, str | None, str | None, str | None]]:
    return [(a.kind, a.member, a.group, a.detail.get("template")) for a in actions]


PRIVATE = """
timezone "Asia/Shanghai"
template hello = "你好，我是你的专属顾问"
template tip = "今日穿搭小贴士"
template welcome = "欢迎进群"
playbook add_friend {
    in private chats
    on member joins
    repeat always
    do { send hello to member }
}
playbook daily_tip {
    in private chats
    at every day at 10:00 for each member: send tip to member
}
playbook group_welcome {
    on member joins
    do { send welcome to member }
}
"""


def test_a_contact_added_without_a_group_is_in_private_chats_only() -> None:
    actions = run(
        PRIVATE,
        """
        start: 2026-03-02 09:00
        end: 2026-03-03 12:00
        groups:
          - {id: g1}
        members:
          - {id: old_friend, contact: true}
          - {id: grouper, groups: [g1]}
        events:
          - {at: 2026-03-02 09:30, kind: join, member: new_friend, data: {channel: store}}
          - {at: 2026-03-02 11:00, kind: join, member: joiner, group: g1}
        """,
    )
    assert log(actions) == [
        ("send", "new_friend", None, "hello"),
        ("send", "new_friend", None, "tip"),  # 10:00, every contact, in the file's zone
        ("send", "old_friend", None, "tip"),
        ("send", "joiner", "g1", "welcome"),  # a group join is not a new contact
        ("send", "new_friend", None, "tip"),
        ("send", "old_friend", None, "tip"),
    ]


def test_a_contact_who_leaves_gets_nothing_more_in_private_chats() -> None:
    actions = run(
        PRIVATE,
        """
        start: 2026-03-02 09:00
        end: 2026-03-04 12:00
        members:
          - {id: a, contact: true}
          - {id: b, contact: true}
        events:
          - {at: 2026-03-02 18:00, kind: leave, member: b}
        """,
    )
    assert [(a.member, a.detail["template"]) for a in actions] == [
        ("a", "tip"),
        ("b", "tip"),
        ("a", "tip"),
        ("a", "tip"),
    ]


TAGGED = """
timezone "Asia/Shanghai"
template invite_core = "邀请你加入核心群"
playbook promote {
    in groups tagged "normal"
    on member is tagged "brand-fan"
    do { send invite_core to member }
}
"""


def test_a_tag_set_outside_any_group_reaches_the_members_group_in_scope() -> None:
    actions = run(
        TAGGED,
        """
        start: 2026-03-02 09:00
        groups:
          - {id: riders, tags: [normal]}
          - {id: sale, tags: [promo]}
        members:
          - {id: lina, groups: [riders]}
          - {id: zhou, groups: [sale]}
        events:
          - {at: 2026-03-02 10:00, kind: tag, member: lina, name: brand-fan}
          - {at: 2026-03-02 10:05, kind: tag, member: zhou, name: brand-fan}
        """,
    )
    assert log(actions) == [("send", "lina", "riders", "invite_core")]


GROUP_LEVEL = """
timezone "Asia/Shanghai"
template quiz = "冷场小测验"
playbook revive {
    on group silent for 2 days
    when group tagged "vip"
    REPEAT
    active from 2026-03-01 00:00 until 2026-03-20 00:00
    do: send quiz to group
}
"""

GROUP_FIXTURE = """
start: 2026-03-02 09:00
end: 2026-03-30 00:00
groups:
  - {id: vip1, tags: [vip]}
  - {id: plain, tags: [content]}
events:
  - {at: 2026-03-06 10:00, kind: message, member: m1, group: vip1}
  - {at: 2026-03-06 10:00, kind: message, member: m2, group: plain}
  - {at: 2026-03-16 10:00, kind: message, member: m1, group: vip1}
"""


def test_group_triggers_obey_when_repeat_and_active() -> None:
    once = run(GROUP_LEVEL.replace("REPEAT", "repeat once"), GROUP_FIXTURE)
    assert [(a.group, a.time) for a in once] == [("vip1", once[0].time)]
    always = run(GROUP_LEVEL.replace("REPEAT", "repeat always"), GROUP_FIXTURE)
    # 03-04, 03-08 and 03-18 (after each message); 03-20 onwards is past the active window.
    assert len(always) == 3
    assert all(a.group == "vip1" for a in always)


def test_group_size_reaches_runs_for_a_group_without_a_known_owner() -> None:
    actions = run(
        """
        timezone "Asia/Shanghai"
        playbook nearly_full {
            on group size reaches 3
            do { assign "群快满了，请建新群" to operator within 1 day }
        }
        """,
        """
        start: 2026-03-02 09:00
        groups:
          - {id: g1, operator: 小美}
        members:
          - {id: a, groups: [g1]}
          - {id: b, groups: [g1]}
        events:
          - {at: 2026-03-02 10:00, kind: join, member: c, group: g1}
        """,
    )
    assert [(a.kind, a.group, a.detail.get("operator")) for a in actions] == [("task", "g1", "小美")]
