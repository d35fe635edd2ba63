"""The benchmark's two baselines against the engine, on a community small enough for every run.

bench/simple.py (hour by hour) and bench/careful.py (a timer heap, by hand) implement
bench/reference.sop without the engine; `python -m bench` stops when their logs differ from the
engine's, and these tests run the same checks on a small generated community.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
from benchmods import BENCH, bench

import sopdsl
from sopdsl.dryrun.simulate import simulate_timeline
from sopdsl.dryrun.timeline import open_timeline
from sopdsl.plan import timeutil

ZONE = "Asia/Shanghai"


@dataclass
class Community:
    """A generated community's timeline, the reference playbooks, and the engine's log of it."""

    path: Path
    plan: Any
    counts: dict[str, int]
    actions: list[Any]

    @property
    def templates(self) -> dict[str, str]:
        return {name: t.source for name, t in self.plan.declarations.templates.items()}


def engine_log(plan: Any, path: Path, zone: str) -> list[Any]:
    actions: list[Any] = []
    stream = open_timeline(path, path.name, zone)
    simulate_timeline(plan, stream, actions.append)
    stream.close()
    return actions


def compile_reference(folder: Path, zone: str) -> Any:
    """bench/reference.sop in another zone."""
    source = (BENCH / "reference.sop").read_text(encoding="utf-8")
    path = folder / "reference.sop"
    path.write_text(source.replace(f'timezone "{ZONE}"', f'timezone "{zone}"'), encoding="utf-8")
    return sopdsl.compile_program(sopdsl.check(sopdsl.load(path)))


@pytest.fixture(scope="module")
def community(tmp_path_factory: pytest.TempPathFactory) -> Community:
    generate = bench("generate")
    path = tmp_path_factory.mktemp("community") / "community.jsonl"
    counts = generate.generate(generate.Size(600, 75, seed=7), path)
    plan = sopdsl.compile_program(sopdsl.check(sopdsl.load(BENCH / "reference.sop")))
    return Community(path, plan, counts, engine_log(plan, path, ZONE))


def test_a_generated_community_gives_the_log_of_the_simple_hourly_engine(community: Community) -> None:
    """bench/simple.py's log, texts included, equals the engine's."""
    simple = bench("simple")
    stream = open_timeline(community.path, "community.jsonl", ZONE)
    expected = simple.SimpleEngine(community.plan, ZONE).run(stream)
    stream.close()
    ours = simple.engine_rows(community.actions)
    assert ours == expected
    # A log with every playbook and both kinds of kick in it, or the comparison proves little.
    assert community.counts["spam"] > 0
    assert {(row[1], row[2]) for row in ours} >= {
        ("send", "welcome"),
        ("grant", "welcome"),
        ("tag", "welcome"),
        ("kick", "kick_spam"),
        ("send", "prune_silent"),
        ("kick", "prune_silent"),
        ("send", "class_cadence"),
    }


def test_the_careful_engine_gives_the_engines_log(community: Community) -> None:
    """bench/careful.py's rows equal the engine's, and the log it writes is the engine's JSONL log
    line for line, with its own idempotency keys (unique, as the engine's are)."""
    careful, simple = bench("careful"), bench("simple")
    rows = careful.run_file(community.templates, ZONE, community.path, None)
    assert rows == simple.engine_rows(community.actions)
    written = community.path.with_name("careful.jsonl")
    careful.run_file(community.templates, ZONE, community.path, written)
    tz = timeutil.zone(ZONE)
    encode = msgspec.json.Encoder(order="sorted").encode
    expected = [msgspec.json.decode(encode(a.to_json(tz))) for a in community.actions]
    got = [msgspec.json.decode(line) for line in written.read_bytes().splitlines()]
    keys = [line.pop("key") for line in got]
    for line in expected:
        del line["key"]
    assert got == expected
    assert len(set(keys)) == len(keys)
    engine_written = community.path.with_name("engine.jsonl")
    engine_written.write_bytes(b"".join(encode(a.to_json(tz)) + b"\n" for a in community.actions))
    assert careful.first_difference(engine_written, written) is None
    # What `python -m bench` reports when the logs part.
    written.write_bytes(b"".join(written.read_bytes().splitlines(keepends=True)[:-1]))
    assert "one log ends" in careful.first_difference(engine_written, written)


def test_the_careful_engine_counts_calendar_days_across_a_clock_change(tmp_path: Path) -> None:
    """In a zone with a DST change in the window, days are not 86,400 seconds: the careful engine
    leaves its plain-seconds arithmetic and still gives the engine's log."""
    careful, generate = bench("careful"), bench("generate")
    zone = "Europe/Berlin"  # clocks go forward on 2026-03-29, four weeks into the window
    path = tmp_path / "berlin.jsonl"
    generate.generate(generate.Size(300, 60, seed=3), path)
    header, rest = path.read_bytes().split(b"\n", 1)
    path.write_bytes(header.replace(ZONE.encode(), zone.encode()) + b"\n" + rest)
    plan = compile_reference(tmp_path, zone)
    actions = engine_log(plan, path, zone)
    templates = {name: t.source for name, t in plan.declarations.templates.items()}
    rows = careful.run_file(templates, zone, path, None)
    assert rows == bench("simple").engine_rows(actions)
    # The warnings of the members present from the start fall after the change: an hour earlier
    # in UTC than 28 × 86,400 seconds would put them.
    start = msgspec.json.decode(header)["start"]
    warned = {row[0] for row in rows if row[5] == "we_miss_you"}
    assert start + 28 * 86400 - 3600 in warned
    assert careful.Calendar(zone, start, start + 60 * 86400).offset is None
    assert careful.Calendar(ZONE, start, start + 60 * 86400).offset == 8 * 3600
