"""History at the start: members' groups with when they joined and last posted, their last order,
and events before the start, which set state and start nothing; the dry run then shows what
the first day over an existing community sends (the day-one burst)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from sopdsl.cli import main

GOLDENS = Path(__file__).resolve().parent.parent / "goldens" / "test"
HEADER = {
    "sopdsl": "timeline",
    "timezone": "Asia/Shanghai",
    "start": "2026-03-02 09:00",
    "end": "2026-03-10 00:00",
}


def sopdsl(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result.exit_code, result.output


def write_jsonl(path: Path, lines: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    return path


def test_a_jsonl_timeline_with_history_gives_the_fixtures_log(tmp_path: Path) -> None:
    sop = shutil.copy(GOLDENS / "history_day_one.sop", tmp_path / "p.sop")
    _, from_yaml = sopdsl("simulate", str(sop), "--timeline", str(GOLDENS / "history_day_one.yaml"))
    timeline = write_jsonl(
        tmp_path / "t.jsonl",
        [
            {**HEADER, "groups": [{"id": "riders1", "name": "骑友群", "tags": ["normal"]}]},
            {
                "id": "laowang",
                "groups": [{"id": "riders1", "joined": "2025-06-01", "last_message": "2026-01-10 20:00"}],
                "last_order": "2025-12-01",
            },
            {
                "id": "xiaoli",
                "groups": [{"id": "riders1", "joined": "2026-02-20 10:00"}],
                "last_order": "2025-01-15",
            },
            {
                "id": "dazhi",
                "tags": ["core"],
                "groups": [{"id": "riders1", "joined": "2024-01-01"}],
                "last_order": "2025-02-01",
            },
            {"id": "xinren", "groups": ["riders1"]},
            {
                "at": "2025-11-01 10:00",
                "kind": "join",
                "member": "ahua",
                "group": "riders1",
                "data": {"name": "阿花"},
            },
            {"at": "2025-11-02 10:00", "kind": "order", "member": "ahua", "data": {"amount": 99}},
            {"at": "2026-01-20 10:00", "kind": "message", "member": "ahua", "group": "riders1"},
            {
                "at": "2026-02-25 10:00",
                "kind": "join",
                "member": "ajie",
                "group": "riders1",
                "data": {"name": "阿杰"},
            },
            {"at": "2026-02-26 10:00", "kind": "message", "member": "ajie", "group": "riders1"},
            {"at": "2026-03-02 10:00", "kind": "message", "member": "xinren", "group": "riders1"},
        ],
    )
    code, from_jsonl = sopdsl("simulate", str(sop), "--timeline", str(timeline))
    assert code == 0, from_jsonl
    assert from_jsonl == from_yaml
    assert from_yaml.splitlines() == [
        "2026-03-02T09:00+08:00 send come_back -> dazhi",
        "2026-03-02T09:00+08:00 kick -> laowang",
        "2026-03-02T09:00+08:00 kick -> ahua",
    ]


def test_without_history_the_same_members_are_silent_from_the_start(tmp_path: Path) -> None:
    """The burst comes from the history: the same members listed without it wait 28 days."""
    sop = shutil.copy(GOLDENS / "history_day_one.sop", tmp_path / "p.sop")
    (tmp_path / "p.yaml").write_text(
        "start: 2026-03-02 09:00\nend: 2026-04-02 00:00\ngroups: [{id: riders1, tags: [normal]}]\n"
        "members: [{id: laowang, groups: [riders1], joined: 2025-06-01}]\n",
        encoding="utf-8",
    )
    _, output = sopdsl("simulate", str(sop), "--timeline", str(tmp_path / "p.yaml"))
    assert output.splitlines() == ["2026-03-30T09:00+08:00 kick -> laowang"]


def test_history_events_set_tags_and_the_member_entry_wins(tmp_path: Path) -> None:
    shutil.copy(GOLDENS / "history_day_one.sop", tmp_path / "p.sop")
    (tmp_path / "p.yaml").write_text(
        """
start: 2026-03-02 09:00
end: 2026-03-03 00:00
groups: [{id: riders1, tags: [normal]}, {id: riders2, tags: [normal]}]
members:
  # Listed as in riders2 at the start, with 5 orders: that wins over what the history adds up.
  - {id: a, groups: [riders2], counters: {orders: 5}}
events:
  - {at: 2025-12-01 10:00, kind: join, member: a, group: riders1}
  - {at: 2025-12-02 10:00, kind: order, member: a}
  - {at: 2025-12-03 10:00, kind: message, member: a, group: riders1}
  - {at: 2025-12-04 10:00, kind: leave, member: a, group: riders1}
  - {at: 2025-12-05 10:00, kind: join, member: b, group: riders1}
  - {at: 2025-12-05 10:00, kind: join, member: c, group: riders1}
  - {at: 2025-12-06 10:00, kind: tag, member: b, name: core}
  - {at: 2025-12-06 10:00, kind: tag, member: c, name: core}
  - {at: 2025-12-07 10:00, kind: untag, member: c, name: core}
expect:
  - {member: a, at: 2026-03-02 09:00, in_group: riders2, not_in_group: riders1, counters: {orders: 5}}
  - {member: b, at: 2026-03-02 09:00, in_group: riders1, tagged: [core], counters: {messages: 0}}
  # Protected by the tag its history gave; c lost it again, so c is pruned on day one.
  - {action: kick, member: b, never: true}
  - {action: kick, member: c, at: 2026-03-02 09:00}
  - {action: send, template: welcome, never: true}
""".lstrip(),
        encoding="utf-8",
    )
    code, output = sopdsl("test", str(tmp_path / "p.yaml"))
    assert code == 0, output
    assert "events before the start" not in output


def test_why_shows_the_day_one_firing(tmp_path: Path) -> None:
    code, output = sopdsl("why", "laowang", "--timeline", str(GOLDENS / "history_day_one.yaml"))
    assert code == 0, output
    lines = output.splitlines()
    at = lines.index(
        "  2026-03-02 09:00  no message for 28 days (line 9) → started (due 2026-02-07 20:00, before the start)"
    )
    assert lines[at + 1] == "    2026-03-02 09:00  kick (line 13)"
    assert "ahua" not in output  # her kick, at the same step and instant, is hers


def test_a_jsonl_event_before_the_start_that_cannot_be_history_is_located(tmp_path: Path) -> None:
    sop = shutil.copy(GOLDENS / "history_day_one.sop", tmp_path / "p.sop")
    timeline = write_jsonl(
        tmp_path / "t.jsonl",
        [
            {**HEADER, "groups": [{"id": "riders1", "tags": ["normal"]}]},
            {"id": "m1", "groups": [{"id": "riders1", "last_message": "2026-03-05 10:00"}]},
            {"at": "2026-02-01 10:00", "kind": "custom", "name": "share_photo", "member": "m1"},
        ],
    )
    code, output = sopdsl("simulate", str(sop), "--timeline", str(timeline))
    assert code == 1
    assert (
        "t.jsonl:2:1: error[SOP602]: a member's history (groups' joined and last_message, last_order) is before the start"
        in output
    )
    assert (
        "t.jsonl:3:1: error[SOP602]: at: 2026-02-01 10:00 is before the start, and a custom event cannot be history"
        in output
    )
