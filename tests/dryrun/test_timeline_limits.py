"""A JSONL timeline is held to the live service's limits (`sopdsl.limits`) as a fixture is: a
member line, a group of the header and an event line the service would refuse for an id, a tag
or a name too long or holding a control character is an error at its line, in the service's
words, where the dry run replayed it before. An everyday block within the limits still takes the
fast path (its lengths checked as it is decoded, control characters only where its bytes may
hold one)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sopdsl.cli import main
from sopdsl.dryrun.timeline_lines import everyday_events
from sopdsl.live.intake import EventError, intake
from sopdsl.plan import Declarations

PLAYBOOK = """\
timezone "Asia/Shanghai"
template welcome = "欢迎 {{ member.name }}"
playbook welcome { on member joins do { send welcome to member } }
"""

HEADER: dict[str, Any] = {
    "sopdsl": "timeline",
    "start": "2026-03-01 09:00",
    "end": "2026-03-05 00:00",
    "groups": [{"id": "g1"}],
}
LONG = "u" * 300
AT = "2026-03-01 10:00"


def _simulate(tmp_path: Path, lines: list[Any]) -> tuple[int, str, str]:
    sop = tmp_path / "w.sop"
    sop.write_text(PLAYBOOK, encoding="utf-8")
    timeline = tmp_path / "t.jsonl"
    timeline.write_text(
        "".join((x if isinstance(x, str) else json.dumps(x, ensure_ascii=False)) + "\n" for x in lines),
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["simulate", str(sop), "--timeline", str(timeline)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, str(timeline), result.output  # a bad header is told on stdout


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ({"id": "m1", "groups": ["g1"], "tags": ["vip", LONG]}, "tags.1: tags.1 is 300 characters long"),
        (
            {"id": "m1", "groups": ["g1"], "name": "A\x1b[31mB"},
            "name: name holds a control character (\\u001b)",
        ),
        ({"id": LONG, "groups": ["g1"]}, "id: the id is 300 characters long; ids are at most 256"),
        ({"id": "m1", "groups": ["g1", {"id": LONG}]}, "groups.1: groups.1 is 300 characters long"),
        ({"id": "m1", "attributes": {"city": "c" * 5000}}, "attributes.city: attributes.city is 5000"),
        # Event lines: everyday ones (read in C a block at a time) and others.
        ({"at": AT, "kind": "message", "member": LONG, "group": "g1"}, "member: event field 'member' is 300"),
        ({"at": AT, "kind": "message", "member": "m1", "group": LONG}, "group: event field 'group' is 300"),
        ({"at": AT, "kind": "message", "member": "m\x1b1"}, "member: event field 'member' holds a control"),
        ({"at": AT, "kind": "message", "member": "m\x7f1"}, "member: event field 'member' holds a control"),
        ({"at": AT, "kind": "message", "member": "m\x851"}, "member: event field 'member' holds a control"),
        (
            {"at": 1772330400, "kind": "leave", "member": "m\n1"},
            "member: event field 'member' holds a control",
        ),
        (
            {"at": AT, "kind": "join", "member": "m1", "group": "g1", "data": {"name": "A\x1bB"}},
            "data.name: event field 'data.name' holds a control character (\\u001b)",
        ),
        (
            {"at": AT, "kind": "join", "member": "m1", "group": "g1", "data": {"channel": LONG}},
            "data.channel: event field 'data.channel' is 300 characters long",
        ),
        ({"at": AT, "kind": "tag", "member": "m1", "name": LONG}, "name: event field 'name' is 300"),
        (
            {"at": AT, "kind": "tag", "member": "m1", "name": "v\tip"},
            "name: event field 'name' holds a control",
        ),
    ],
)
def test_a_line_the_live_service_would_refuse_is_an_error_at_its_line(
    tmp_path: Path, line: dict[str, Any], said: str
) -> None:
    ok = {"at": "2026-03-01 09:30", "kind": "message", "member": "m0", "group": "g1"}
    lines = [HEADER, {"id": "m0", "groups": ["g1"]}, line] if "id" in line else [HEADER, ok, line]
    code, path, err = _simulate(tmp_path, lines)
    assert code == 1, err
    located = [row for row in err.splitlines() if row.startswith(f"{path}:3:1: error[SOP602]")]
    assert located and said in located[0], err


def test_a_group_of_the_header_the_live_service_would_refuse_is_an_error_on_line_one(tmp_path: Path) -> None:
    header = {**HEADER, "groups": [{"id": "g1", "tags": [LONG]}, {"id": "g2", "operator": "小\n美"}]}
    code, path, err = _simulate(tmp_path, [header, {"id": "m0", "groups": ["g1"]}])
    assert code == 1
    assert f"{path}:1:1: error[SOP602]: groups.0.tags.0: tags.0 is 300 characters long" in err
    assert "groups.1.operator: operator holds a control character (\\n); names of staff hold none" in err


def test_the_timeline_says_what_the_live_door_says(tmp_path: Path) -> None:
    event = {"kind": "join", "member": "m1", "group": "g1", "data": {"name": "n" * 300}}
    with pytest.raises(EventError) as refused:
        intake(event, Declarations(timezone="Asia/Shanghai"), 0)
    code, _, err = _simulate(tmp_path, [HEADER, {"at": AT, **event}])
    assert code == 1 and f"data.name: {refused.value.reason}" in err


def test_lines_within_every_limit_run_and_keep_the_fast_path(tmp_path: Path) -> None:
    # At the limits exactly; a line break in a member's name (names may hold one), text of any
    # length in a message's payload, and escapes in it that are no control character.
    lines = [
        {**HEADER, "groups": [{"id": "g" * 256, "name": "n" * 256}]},
        {"id": "m" * 256, "groups": ["g" * 256], "name": "a\nb", "tags": ["t" * 256]},
        {"at": AT, "kind": "join", "member": "x" * 256, "group": "g" * 256, "data": {"name": "a\nb"}},
        {"at": AT, "kind": "message", "member": "x" * 256, "data": {"text": 'say "hi"\n' * 100}},
    ]
    code, _, err = _simulate(tmp_path, lines)
    assert code == 0, err
    block = "".join(json.dumps({**x, "at": 1772330400}) + "\n" for x in lines[2:]).encode()
    assert everyday_events(block, 2) is not None
    long = json.dumps({"at": 1, "kind": "message", "member": LONG}).encode() + b"\n"
    assert everyday_events(long, 1) is None  # read again, checked line by line
    # Lines known whole (a shard's lines of a routed block) are still counted: two values on one
    # line are refused, with the check of `one_a_line` or without.
    two = block.replace(b"}\n{", b"}{", 1)
    assert everyday_events(two, 1, whole=True) is None and everyday_events(two, 1) is None
    assert everyday_events(block, 2, whole=True) == everyday_events(block, 2)
