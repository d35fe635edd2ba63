"""JSONL timelines: the same log as the YAML form of the same timeline, and bad lines located."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from sopdsl.cli import main
from sopdsl.dryrun.timeline import open_timeline
from sopdsl.errors import FixtureError

CASES = Path(__file__).parent.parent / "engine_cases"

HEADER = {
    "sopdsl": "timeline",
    "start": "2026-03-01 09:00",
    "end": "2026-03-05 00:00",
    "groups": [{"id": "g1"}],
}

PLAYBOOK = """
timezone "Asia/Shanghai"
template welcome = "欢迎 {{ member.name }}"
policy { quiet hours 22:00 - 08:00 }
playbook welcome {
    on member joins
    do { send welcome to member }
}
"""


def sopdsl(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def jsonl(folder: Path, lines: list[Any], name: str = "t.jsonl") -> Path:
    path = folder / name
    path.write_text(
        "".join(
            (line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)) + "\n" for line in lines
        ),
        encoding="utf-8",
    )
    return path


def as_jsonl(fixture: Path, folder: Path) -> Path:
    """The JSONL form of a YAML fixture: header, members, events (times kept as local text)."""
    data = yaml.load(fixture.read_text(encoding="utf-8"), Loader=yaml.BaseLoader)  # times stay text
    header = {"sopdsl": "timeline", "start": data["start"], "groups": data.get("groups", [])}
    for key in ("end", "timezone", "description"):
        if key in data:
            header[key] = data[key]
    if "seed" in data:
        header["seed"] = int(data["seed"])
    members = []
    for member in data.get("members", []):
        if "counters" in member:
            member["counters"] = {k: float(v) for k, v in member["counters"].items()}
        members.append(member)
    events = []
    for event in data.get("events", []):
        if "data" in event:
            event["data"] = {k: (int(v) if v.isdigit() else v) for k, v in event["data"].items()}
        events.append(event)
    return jsonl(folder, [header, *members, *events], fixture.stem + ".jsonl")


@pytest.mark.parametrize("case", ["busy", "silence", "quiet_hours", "wait_for"])
def test_jsonl_and_yaml_forms_give_the_same_log(case: str, tmp_path: Path) -> None:
    fixture = CASES / f"{case}.yaml"
    playbook = str(CASES / f"{case}.sop")
    converted = as_jsonl(fixture, tmp_path)
    yaml_code, yaml_out, _ = sopdsl("simulate", playbook, "--timeline", str(fixture), "--format", "jsonl")
    code, out, err = sopdsl("simulate", playbook, "--timeline", str(converted), "--format", "jsonl")
    assert (yaml_code, code) == (0, 0), err
    assert out == yaml_out
    assert out.count("\n") >= 3, "a comparison of empty logs proves nothing"


def test_epoch_seconds_and_local_times_mean_the_same_instant(tmp_path: Path) -> None:
    sop = tmp_path / "w.sop"
    sop.write_text(textwrap.dedent(PLAYBOOK), encoding="utf-8")
    local = jsonl(
        tmp_path, [HEADER, {"at": "2026-03-01 23:00", "kind": "join", "member": "m1", "group": "g1"}]
    )
    epoch = jsonl(
        tmp_path,
        [HEADER, {"at": 1772377200, "kind": "join", "member": "m1", "group": "g1"}],
        "epoch.jsonl",
    )
    outputs = {sopdsl("simulate", str(sop), "--timeline", str(path))[1] for path in (local, epoch)}
    assert outputs == {
        "2026-03-02T08:00+08:00 send welcome -> m1 [deferred from 2026-03-01T23:00+08:00: quiet hours]\n"
    }


def test_members_before_the_start_and_their_tags_count(tmp_path: Path) -> None:
    sop = tmp_path / "k.sop"
    sop.write_text(
        'timezone "Asia/Shanghai"\npolicy { never kick members tagged "core" }\n'
        "playbook prune { on member silent for 2 days  apply to all members  do { kick member } }\n",
        encoding="utf-8",
    )
    timeline = jsonl(
        tmp_path,
        [
            HEADER,
            {"id": "a", "groups": ["g1"]},
            {"id": "b", "groups": ["g1"], "tags": ["core"]},
            {"at": "2026-03-02 09:00", "kind": "message", "member": "a", "group": "g1"},
        ],
    )
    code, out, _ = sopdsl("simulate", str(sop), "--timeline", str(timeline))
    assert code == 0
    assert out.splitlines() == [
        "2026-03-03T09:00+08:00 kick -> b [blocked: protected member (tagged core)]",
        "2026-03-04T09:00+08:00 kick -> a",
    ]


def test_every_bad_line_is_reported_with_its_line(tmp_path: Path) -> None:
    sop = tmp_path / "w.sop"
    sop.write_text(textwrap.dedent(PLAYBOOK), encoding="utf-8")
    timeline = jsonl(
        tmp_path,
        [
            HEADER,
            {"id": "m0", "groups": ["g1"]},
            {"at": "2026-03-01 10:00", "kind": "join", "member": "m1", "group": "g1"},
            "{not json",
            {"at": "2026-03-01 11:00", "kind": "mesage", "member": "m1", "group": "g1"},
            {"at": "2026-03-01 12:00", "kind": "message", "member": "m1", "gruop": "g1"},
            {"at": "2026-03-01 09:30", "kind": "message", "member": "m1"},
            {"at": "2026-03-01 13:00", "kind": "tag", "member": "m2"},
            {"id": "late", "groups": ["g1"]},
            {"at": "yesterday", "kind": "message", "member": "m1"},
            [1, 2],
        ],
    )
    code, _, err = sopdsl("simulate", str(sop), "--timeline", str(timeline))
    assert code == 1
    assert "Traceback" not in err
    path = str(timeline)
    expected = [
        (4, "not JSON"),
        (5, "'mesage' is not one of"),
        (6, "unknown event field 'gruop'"),
        (7, "before the event above it"),
        (8, "a tag event needs a name"),
        (9, "members come before the first event"),
        (10, "'yesterday' is not a time"),
        (11, "each line is a JSON object"),
    ]
    for line, message in expected:
        located = [row for row in err.splitlines() if row.startswith(f"{path}:{line}:1: error[SOP60")]
        assert located and message in located[0], (line, message, err)
    assert "hint: did you mean 'message'?" in err
    assert "hint: did you mean 'group'?" in err


def test_a_bad_header_stops_before_any_action(tmp_path: Path) -> None:
    sop = tmp_path / "w.sop"
    sop.write_text(textwrap.dedent(PLAYBOOK), encoding="utf-8")
    cases: dict[str, tuple[Any, str]] = {
        "plain.jsonl": ({"start": "2026-03-01"}, "line 1 must be the header"),
        "zone.jsonl": ({**HEADER, "timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        "start.jsonl": ({**HEADER, "start": "soon"}, "start: 'soon' is not a time"),
        "end.jsonl": ({**HEADER, "end": "2026-02-01"}, "is before the start"),
        "field.jsonl": ({**HEADER, "sede": 3}, "unknown header field 'sede'"),
        "empty.jsonl": ("", "the file is empty"),
    }
    for name, (header, message) in cases.items():
        timeline = jsonl(
            tmp_path, [header, {"at": "2026-03-01 10:00", "kind": "join", "member": "m", "group": "g1"}], name
        )
        if header == "":
            timeline.write_text("", encoding="utf-8")
        code, out, _ = sopdsl("simulate", str(sop), "--timeline", str(timeline))
        assert code == 1, name
        assert f"{timeline}:1:1: error[SOP60" in out and message in out, (name, out)
        assert "send" not in out


def test_the_reader_streams_and_stops_yielding_after_a_bad_line(tmp_path: Path) -> None:
    timeline = jsonl(
        tmp_path,
        [
            HEADER,
            {"at": "2026-03-01 10:00", "kind": "message", "member": "a", "group": "g1"},
            {"at": "2026-03-01 11:00", "kind": "message", "member": "a", "group": 7},
            {"at": "2026-03-01 12:00", "kind": "message", "member": "b", "group": "g1"},
        ],
    )
    stream = open_timeline(timeline, "t.jsonl", "Asia/Shanghai")
    seen: list[str | None] = []
    with pytest.raises(FixtureError) as caught:
        seen.extend(event.member for event in stream.records())  # type: ignore[union-attr]
    stream.close()
    assert seen == ["a"]
    [problem] = caught.value.diagnostics
    assert (problem.span.line, problem.message) == (3, "group: 7 is not text")


def test_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    sop = tmp_path / "w.sop"
    sop.write_text(textwrap.dedent(PLAYBOOK), encoding="utf-8")
    events = [
        {
            "at": 1772326800 + i * 60,
            "kind": "join",
            "member": f"m{i}",
            "group": "g1",
            "data": {"name": "x" * 40},
        }
        for i in range(15_000)
    ]
    timeline = jsonl(tmp_path, [HEADER, *events])
    assert timeline.stat().st_size > 1 << 20  # big enough for a bar on a terminal
    code, out, err = sopdsl("simulate", str(sop), "--timeline", str(timeline), "--format", "jsonl")
    assert code == 0
    assert len(out.splitlines()) == 15_000
    assert "simulating" not in err and "\r" not in err
