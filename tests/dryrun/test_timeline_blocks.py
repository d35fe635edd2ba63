"""JSONL timelines read a block of lines at a time: the same records and the same located
problems whatever the block size, and lines that a block's decoder would read apart from their
line (an object over two lines, two on one line) refused at their line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from benchmods import bench

from sopdsl.dryrun import timeline as timeline_module
from sopdsl.dryrun.timeline import open_timeline
from sopdsl.engine.events import Event
from sopdsl.errors import FixtureError

ROOT = Path(__file__).parent.parent.parent
HEADER = {"sopdsl": "timeline", "start": 1772330000, "end": 1772990000, "groups": [{"id": "g1"}]}


def read(path: Path) -> tuple[list[Any], list[tuple[int, str]]]:
    """Every record (as plain values) and every problem (line, message) of a timeline."""
    records: list[Any] = []
    timeline = open_timeline(path, "t.jsonl", "Asia/Shanghai")
    try:
        for record in timeline.records():
            if hasattr(record, "kind"):
                assert isinstance(record, Event)
                fields = (record.kind, record.time, record.member, record.group, record.data, record.name)
                records.append(("event", *fields, record.id))
            else:
                records.append(("member", record))
    except FixtureError as exc:
        return records, [(d.span.line, d.message) for d in exc.diagnostics]
    finally:
        timeline.close()
    return records, []


def write(folder: Path, lines: list[Any], ending: str = "\n") -> Path:
    path = folder / "t.jsonl"
    text = ending.join(
        line if isinstance(line, str) else json.dumps(line, ensure_ascii=False) for line in lines
    )
    path.write_bytes((text + ending).encode("utf-8"))
    return path


def event(i: int, **extra: Any) -> dict[str, Any]:
    kinds = ["message", "message", "join", "order", "leave", "invite"]
    return {"at": 1772330000 + i * 60, "kind": kinds[i % 6], "member": f"m{i % 7}", "group": "g1", **extra}


def same_whatever_the_block(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[Any], list[Any]]:
    monkeypatch.setattr(timeline_module, "BLOCK", 1 << 20)
    whole = read(path)
    for size in (7, 64, 300, 4096):
        monkeypatch.setattr(timeline_module, "BLOCK", size)
        assert read(path) == whole, size
    return whole


def test_a_generated_community_reads_alike_in_blocks_of_any_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generate = bench("generate")
    path = tmp_path / "c.jsonl"
    generate.generate(generate.Size(300, 20), path)
    records, problems = same_whatever_the_block(path, monkeypatch)
    assert problems == [] and len(records) > 1000
    assert sum(r[0] == "member" for r in records) == 100  # members first, then events
    # The same file with Windows line ends reads alike.
    crlf = tmp_path / "crlf.jsonl"
    crlf.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert read(crlf) == (records, [])


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ('{"at": 1772330600, "kind": "message",\n"member": "m1", "group": "g1"}', "not JSON"),
        (
            '{"at": 1772330600, "kind": "message", "member": "m1"} {"at": 1772330601, "kind": "message", "member": "m2"}',
            "not JSON",
        ),
        (
            '{"at": 1772330600, "kind": "message", "member": "m1"}{"at": 1772330601, "kind": "message", "member": "m2"}',
            "not JSON",
        ),
        ('{"at": 1772330600, "kind": "message", "member": "m1", "id": "x"}', "member fields"),
        ('{"at": 1772330600, "kind": "message", "member": ""}', "a message event needs a member"),
        ('{"at": 1772330600, "kind": "message", "member": "m1", "name": "x", "data": {"n": 1.5}}', None),
        ('{"at": 1772330600, "kind": "tag", "member": "m1"}', "needs a name"),
        ('{"at": 1772330000, "kind": "message", "member": "m1"}', "before the event above it"),
        ('{"at": 2435018000, "kind": "message", "member": "m1"}', "more than 20 years"),
        (
            '{"at": 1772330600, "kind": "custom", "member": "m1", "name": "x", "data": {"deep": '
            + "[" * 101
            + "]" * 101
            + "}}",
            "more than 100 deep",
        ),
    ],
)
def test_a_line_among_everyday_lines_is_read_at_its_own_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: str, message: str | None
) -> None:
    lines: list[Any] = [HEADER, *(event(i) for i in range(10)), bad, *(event(i) for i in range(11, 30))]
    records, problems = same_whatever_the_block(write(tmp_path, lines), monkeypatch)
    if message is None:  # not a mistake: read as the line by line reading reads it
        assert problems == [] and len(records) == 30
        return
    assert problems and problems[0][0] == 12 and message in problems[0][1], problems
    assert len(records) == 10  # what came before it, and nothing after


def test_blank_lines_and_a_long_line_keep_the_line_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    long = event(5, data={"note": "长" * 3000})
    lines: list[Any] = [
        HEADER,
        event(0),
        "",
        event(1),
        "   ",
        long,
        event(6),
        {"at": "yesterday", "kind": "message", "member": "m1"},
    ]
    records, problems = same_whatever_the_block(write(tmp_path, lines), monkeypatch)
    assert len(records) == 4
    assert [line for line, _ in problems] == [8] and "'yesterday' is not a time" in problems[0][1]
