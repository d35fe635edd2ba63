"""The sharded dry run: its log equals one process's byte for byte, on the corpus and a generated
community; plans and timelines whose members interact run in one process and say why."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any, cast

import pytest
from benchmods import bench
from click.testing import CliRunner
from shardruns import ROOT, plan_of, run

from sopdsl.cli import main
from sopdsl.dryrun.fixtures import load_fixture
from sopdsl.dryrun.shard import ShardRun, simulate_sharded
from sopdsl.dryrun.shard_plan import one_shard_reason
from sopdsl.dryrun.shard_read import shard_of
from sopdsl.dryrun.testing import playbook_for

PLAYBOOKS = ROOT / "playbooks"


def as_timeline(fixture_path: Path, folder: Path) -> Path | None:
    """A YAML fixture as a JSONL timeline (None for one that reloads a plan, which JSONL cannot)."""
    fixture, _ = load_fixture(fixture_path, fixture_path.name)
    if any(e.reload is not None for e in fixture.events):
        return None
    header: dict[str, Any] = {"sopdsl": "timeline", "start": fixture.start, "seed": fixture.seed}
    header["groups"] = [g.model_dump(exclude_defaults=True) for g in fixture.groups]
    for key in ("end", "timezone", "staff_completes_tasks_after"):
        if getattr(fixture, key) is not None:
            header[key] = getattr(fixture, key)
    lines = [header, *(m.model_dump(exclude_defaults=True) for m in fixture.members)]
    lines += [e.model_dump(exclude_defaults=True, exclude={"id", "reload"}) for e in fixture.events]
    path = folder / (fixture_path.stem + ".jsonl")
    path.write_text("".join(json.dumps(x, ensure_ascii=False, default=str) + "\n" for x in lines), "utf-8")
    return path


FIXTURES = sorted(PLAYBOOKS.glob("*.yaml"))


def test_every_shardable_corpus_fixture_gives_one_process_s_log(tmp_path: Path) -> None:
    compared, actions, fell_back = [], 0, []
    for fixture_path in FIXTURES:
        fixture, _ = load_fixture(fixture_path, fixture_path.name)
        plan = plan_of(playbook_for(fixture, fixture_path))
        timeline = as_timeline(fixture_path, tmp_path)
        if timeline is None or one_shard_reason(plan) is not None:
            continue
        single, _ = run(plan, timeline, 1)
        for jobs in (2, 3):
            sharded, done = run(plan, timeline, jobs)
            assert sharded == single, f"{fixture_path.name} in {jobs} processes"
            if done.jobs == 1:
                fell_back.append((fixture_path.name, done.reason))
        compared.append(fixture_path.name)
        actions += single.count(b"\n")
    assert len(compared) >= 12, compared  # of 32 fixtures, those of plans members do not interact in
    assert actions >= 100, "a comparison of near-empty logs proves little"
    # The timeline may still say so (a group met mid-run in a plan with calendars); most do not.
    assert len(fell_back) <= len(compared) // 2, fell_back


@pytest.mark.parametrize("fmt", ["jsonl", "table"])
def test_a_generated_community_gives_one_process_s_log_in_two_and_three(tmp_path: Path, fmt: str) -> None:
    generate = bench("generate")
    timeline = tmp_path / "1kx30.jsonl"
    generate.generate(generate.Size(1000, 30), timeline)
    plan = plan_of(ROOT / "bench" / "reference.sop")
    single, _ = run(plan, timeline, 1, fmt)
    assert single.count(b"\n") >= 1000
    for jobs in (2, 3):
        sharded, done = run(plan, timeline, jobs, fmt)
        assert (done.jobs, done.reason) == (jobs, None)
        assert sharded == single
        # Every process had members of its own, and each member was in exactly one.
        members = [s["members"] for s in done.shards]
        assert all(n > 100 for n in members), members


STRESS = """timezone "Asia/Shanghai"
policy {
    quiet hours 22:00 - 08:00
    at most 1 send per member per day
    never kick members tagged "core", "staff"
}
template hi = "欢迎 {{ member.name }}"
template nudge = "{{ member.name }}，来说句话吧"
template news = "{{ group.name }} 本周新闻"
playbook welcome {
    in groups tagged "normal", "edu"
    on member joins
    do {
        send hi to member
        tag member "newcomer"
        wait 1 day for member posts else { send nudge to member }
    }
}
playbook newcomer {
    on member is tagged "newcomer"
    do { split { red 50% { send nudge to member } blue 50% { tag member "blue" } } }
}
playbook silent {
    in groups tagged "normal"
    on member silent for 7 days
    repeat always
    apply to all members
    do {
        send nudge to member
        wait 2 days for member posts else { kick member because "沉默" }
    }
}
playbook weekly {
    in groups tagged "edu"
    at every monday at 21:00: send news to group
    at every friday at 23:30: send news to group
}
"""


def test_held_sends_caps_cascades_splits_and_calendars_merge_as_one_process_runs_them(tmp_path: Path) -> None:
    # Sends held for 08:00 and by the cap pile up at one instant across shards, tag events set
    # off other playbooks inside a step, and the groups' calendar sends run in every shard.
    generate = bench("generate")
    timeline = tmp_path / "1kx30.jsonl"
    generate.generate(generate.Size(1000, 30), timeline)
    sop = tmp_path / "stress.sop"
    sop.write_text(STRESS, encoding="utf-8")
    plan = plan_of(sop)
    single, _ = run(plan, timeline, 1)
    assert single.count(b"quiet hours") >= 100 and single.count(b"per member per day") >= 100
    assert single.count(b"news") >= 8 and single.count(b'"kick"') >= 10
    for jobs in (2, 3):
        sharded, done = run(plan, timeline, jobs)
        assert (done.jobs, done.reason) == (jobs, None)
        assert sharded == single


def test_the_member_partition_is_stable() -> None:
    # CRC-32 of the id's UTF-8 bytes: the same on every run, machine and hash seed. A change of
    # it changes no log (the merge puts steps in order), but these values say it did not move.
    # CRC-32s: m1 0xc054072f, m2 0x595d5695, wx_123 0x8a2092e0, 张三 0x7984b0ca, "" 0.
    assert [shard_of(m, 2) for m in ("m1", "m2", "wx_123", "张三", "")] == [1, 1, 0, 0, 0]
    assert [shard_of(m, 3) for m in ("m1", "m2", "wx_123", "张三", "")] == [0, 0, 0, 1, 0]
    assert {shard_of(f"m{i}", 4) for i in range(100)} == {0, 1, 2, 3}


def test_a_plan_with_a_kick_cap_falls_back_to_one_process_saying_why(tmp_path: Path) -> None:
    fixture_path = PLAYBOOKS / "C1_prune_silent.day_one.yaml"
    plan = plan_of(PLAYBOOKS / "C1_prune_silent.sop")
    timeline = as_timeline(fixture_path, tmp_path)
    assert timeline is not None
    log, done = run(plan, timeline, 2)
    assert done.jobs == 1
    assert done.reason is not None and "at most 20 kicks per group per day" in done.reason
    assert log == run(plan, timeline, 1)[0] and log.count(b'"kick"') >= 20


@pytest.mark.parametrize(
    ("step", "said"),
    [
        ("draw 3 winners from members", "draws winners among a group's members"),
        ("send hi to referrer", "acts on the member's referrer"),
        ('tag group "busy"', "tags the group"),
        # arithmetic reads another member's values as a plain reference does
        ("set member.score = referrer.score + 1", "reads referrer.score"),
        ("if member.score + referrer.score > 3 { send hi to member }", "reads referrer.score"),
    ],
)
def test_what_members_share_forces_one_process(tmp_path: Path, step: str, said: str) -> None:
    sop = tmp_path / "p.sop"
    sop.write_text(
        f'timezone "Asia/Shanghai"\ntemplate hi = "hi"\nplaybook p {{\n    on member joins\n    do {{ {step} }}\n}}\n'
        "attribute score: number\n",
        encoding="utf-8",
    )
    reason = one_shard_reason(plan_of(sop))
    assert reason is not None and said in reason and "p.sop:5" in reason


def timeline_file(folder: Path, lines: list[dict[str, Any]]) -> Path:
    path = folder / "t.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


HEADER = {
    "sopdsl": "timeline",
    "start": "2026-03-02 09:00",
    "end": "2026-03-20 00:00",
    "groups": [{"id": "g1"}],
}
CALENDAR = """timezone "Asia/Shanghai"
template hi = "hi {{ member.name }}"
template news = "news of {{ group.name }}"
playbook welcome { on member joins  do { send hi to member } }
playbook weekly { at every monday at 10:00: send news to group }
"""


def test_a_timeline_whose_events_name_a_new_group_runs_in_one_process_where_calendars_run(
    tmp_path: Path,
) -> None:
    sop = tmp_path / "c.sop"
    sop.write_text(CALENDAR, encoding="utf-8")
    plan = plan_of(sop)
    joins = [
        {"at": f"2026-03-0{2 + i % 5} 11:00", "kind": "join", "member": f"m{i}", "group": "g1"}
        for i in range(9)
    ]
    known = timeline_file(tmp_path, [HEADER, *sorted(joins, key=lambda e: e["at"])])
    log, done = run(plan, known, 2)
    assert (done.jobs, done.reason) == (2, None)
    assert log == run(plan, known, 1)[0] and log.count(b"news of g1") == 3  # once a Monday, not per shard
    late = {"at": "2026-03-10 12:00", "kind": "join", "member": "m9", "group": "g2"}
    unknown = timeline_file(tmp_path, [HEADER, *sorted(joins, key=lambda e: e["at"]), late])
    log, done = run(plan, unknown, 2)
    assert done.jobs == 1 and done.reason is not None and "group g2" in done.reason
    assert log == run(plan, unknown, 1)[0]


def test_history_before_the_start_registers_the_groups_one_process_registers(tmp_path: Path) -> None:
    # m1 left g9 before the start (never in it as far as the file says), m2 had joined g2: one
    # process knows g2 and not g9, and so must every shard, or g9's calendar would send.
    sop = tmp_path / "c.sop"
    sop.write_text(CALENDAR, encoding="utf-8")
    plan = plan_of(sop)
    history = [
        {"at": "2026-02-20 10:00", "kind": "leave", "member": "m1", "group": "g9"},
        {"at": "2026-02-21 10:00", "kind": "join", "member": "m2", "group": "g2"},
        {"at": "2026-02-22 10:00", "kind": "message", "member": "m3", "group": "g1"},
    ]
    joins = [
        {"at": f"2026-03-03 1{i}:00", "kind": "join", "member": f"m{i}", "group": "g1"} for i in range(8)
    ]
    timeline = timeline_file(tmp_path, [HEADER, *history, *joins])
    single, _ = run(plan, timeline, 1)
    assert single.count(b"news of g2") == 3 and b"g9" not in single
    for jobs in (2, 3):
        log, done = run(plan, timeline, jobs)
        assert (done.jobs, done.reason) == (jobs, None)
        assert log == single


def test_the_command_takes_jobs_and_says_why_it_used_one(tmp_path: Path) -> None:
    sop = tmp_path / "c.sop"
    sop.write_text(CALENDAR, encoding="utf-8")
    joins = [
        {"at": f"2026-03-03 1{i}:00", "kind": "join", "member": f"m{i}", "group": "g1"} for i in range(8)
    ]
    timeline = timeline_file(tmp_path, [HEADER, *joins])
    outputs = []
    for jobs in ("1", "2"):
        result = CliRunner().invoke(main, ["simulate", str(sop), "--timeline", str(timeline), "--jobs", jobs])
        assert result.exit_code == 0 and result.stderr == ""
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1] and outputs[0].count("send hi") == 8
    capped = tmp_path / "capped.sop"
    capped.write_text(CALENDAR.replace("template news", "policy { at most 2 sends per day }\ntemplate news"))
    result = CliRunner().invoke(main, ["simulate", str(capped), "--timeline", str(timeline), "--jobs", "2"])
    assert result.exit_code == 0
    assert "note: ran in one process, not 2" in result.stderr and "at most 2 sends per day" in result.stderr
    assert result.stdout.count("send hi") == 8


def test_jobs_past_the_limit_are_a_usage_error_and_processes_that_cannot_start_mean_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `--jobs 100000` once forked until the system ran out of files, then ended in a traceback.
    import multiprocessing.context

    sop = tmp_path / "c.sop"
    sop.write_text(CALENDAR, encoding="utf-8")
    joins = [
        {"at": f"2026-03-03 1{i}:00", "kind": "join", "member": f"m{i}", "group": "g1"} for i in range(8)
    ]
    timeline = timeline_file(tmp_path, [HEADER, *joins])
    many = CliRunner().invoke(main, ["simulate", str(sop), "--timeline", str(timeline), "--jobs", "65"])
    assert many.exit_code == 2 and "65 processes: at most 64" in many.stderr
    one = CliRunner().invoke(main, ["simulate", str(sop), "--timeline", str(timeline), "--jobs", "1"])
    started = 0

    def start(self: Any) -> None:
        nonlocal started
        started += 1
        if started == 3:
            raise OSError(11, "Resource temporarily unavailable")
        original(self)

    original = multiprocessing.context.ForkProcess.start
    monkeypatch.setattr(multiprocessing.context.ForkProcess, "start", start)
    failed = CliRunner().invoke(main, ["simulate", str(sop), "--timeline", str(timeline), "--jobs", "4"])
    assert failed.exit_code == 0, failed.output
    assert "note: ran in one process, not 4: cannot start 4 processes" in failed.stderr
    assert failed.stdout == one.stdout and one.stdout.count("send hi") == 8


def test_steps_written_in_small_batches_merge_as_one_process_runs_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The parent merges the shards' batches window by window: with batches of three steps, most
    # windows end inside a batch of the other shard.
    from sopdsl.dryrun import shard_steps

    generate = bench("generate")
    timeline = tmp_path / "300x20.jsonl"
    generate.generate(generate.Size(300, 20), timeline)
    plan = plan_of(ROOT / "bench" / "reference.sop")
    single, _ = run(plan, timeline, 1)
    monkeypatch.setattr(shard_steps, "_BATCH_STEPS", 3)
    for jobs in (2, 3):
        sharded, done = run(plan, timeline, jobs)
        assert (done.jobs, done.reason) == (jobs, None)
        assert sharded == single and single.count(b"\n") >= 100


def test_jobs_auto_shards_a_large_timeline_quietly_and_a_small_one_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sopdsl import cli_dryrun

    asked: list[int] = []
    sharded = simulate_sharded  # the function cli_dryrun imports

    def recording(*args: Any, **kwargs: Any) -> ShardRun:
        asked.append(args[6])
        return sharded(*args, **kwargs)

    monkeypatch.setattr(cli_dryrun, "simulate_sharded", recording)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)  # the module cli_dryrun reads
    sop = tmp_path / "c.sop"
    sop.write_text(CALENDAR, encoding="utf-8")
    capped = tmp_path / "capped.sop"
    capped.write_text(CALENDAR.replace("template news", "policy { at most 2 sends per day }\ntemplate news"))
    joins = [
        {"at": f"2026-03-03 1{i}:00", "kind": "join", "member": f"m{i}", "group": "g1"} for i in range(8)
    ]
    timeline = timeline_file(tmp_path, [HEADER, *joins])
    outputs = {}
    for threshold, playbook in ((1 << 22, sop), (1, sop), (1, capped)):
        monkeypatch.setattr(cli_dryrun, "_SHARD_BYTES", threshold)
        for jobs in ([], ["--jobs", "auto"]):
            result = CliRunner().invoke(main, ["simulate", str(playbook), "--timeline", str(timeline), *jobs])
            # auto is quiet about a plan that runs in one process: nobody asked for more
            assert result.exit_code == 0 and result.stderr == "", result.stderr
            outputs[threshold, playbook.name, bool(jobs)] = result.stdout
    assert asked == [1, 1, 2, 2, 2, 2]
    for name in ("c.sop", "capped.sop"):  # each plan's log, whatever ran it
        assert len({out for key, out in outputs.items() if key[1] == name}) == 1
    assert outputs[1, "c.sop", False].count("send hi") == 8
    for bad in ("0", "two", "-1"):
        result = CliRunner().invoke(main, ["simulate", str(sop), "--timeline", str(timeline), "--jobs", bad])
        assert result.exit_code == 2 and "neither a number of processes" in result.stderr


def test_a_timer_that_would_run_ahead_of_the_step_before_it_sends_the_run_to_one_process() -> None:
    # A shard's steps must come in the order the merge sorts them by; a timer armed to run ahead
    # of the step before it (one of no time, or due in the past) would be merged ahead of it.
    from sopdsl.dryrun.shard_steps import Stepper, Steps, UnshardableError
    from sopdsl.engine.engine import Engine
    from sopdsl.engine.events import Event
    from sopdsl.engine.parts import HeapEntry

    plan = plan_of(ROOT / "bench" / "reference.sop")
    engine = Engine(plan, start=0, keep_log=False)
    stepper = Stepper(engine, Steps(io.BytesIO(), 0))
    assert engine.on_timer is not None
    engine.on_timer(cast(HeapEntry, (100, 2, "m1", "", 5, None)))
    engine.on_timer(cast(HeapEntry, (100, 2, "m2", "", 6, None)))  # after it: fine
    with pytest.raises(UnshardableError, match="runs ahead"):
        engine.on_timer(cast(HeapEntry, (100, 1, "m3", "", 7, None)))

    for due, ahead in ((500, False), (499, True)):
        engine = Engine(plan, start=0, keep_log=False)
        stepper = Stepper(engine, Steps(io.BytesIO(), 0))
        stepper.events([1], [Event(time=500, kind="message", member="m1", group="g1")], 40)
        assert engine.fed == 41 and engine.on_timer is not None
        if ahead:  # due before the event it follows
            with pytest.raises(UnshardableError, match="runs ahead"):
                engine.on_timer(cast(HeapEntry, (due, 0, "m1", "", 1, None)))
        else:  # due at the event's instant: a timer runs after the events of its instant
            engine.on_timer(cast(HeapEntry, (due, 0, "m1", "", 1, None)))


def test_a_step_is_the_timer_or_event_whose_actions_follow_and_a_silent_timer_is_none(tmp_path: Path) -> None:
    # Most timers write nothing (a silence deadline re-armed): the stepper notes each and keys
    # only the one whose actions follow; actions after a new event are that event's step.
    from sopdsl.dryrun.shard_steps import Stepper, Steps, batches
    from sopdsl.engine.engine import Engine
    from sopdsl.engine.events import Event
    from sopdsl.engine.parts import HeapEntry

    engine = Engine(plan_of(ROOT / "bench" / "reference.sop"), start=0, keep_log=False)
    path = tmp_path / "0.steps"
    with path.open("wb") as out:
        steps = Steps(out, 0)
        stepper = Stepper(engine, steps)
        assert engine.on_timer is not None
        act = engine.sinks[0]

        def written(text: bytes) -> None:  # an action, as the log's writer (the next sink) writes it
            act(cast(Any, None))
            steps.buffer.write(text)

        stepper.events([3], [Event(time=500, kind="message", member="m1", group="g1")], 0)
        written(b"event 3\n")
        engine.on_timer(cast(HeapEntry, (600, 2, "m1", "", 7, None)))  # writes nothing
        engine.on_timer(cast(HeapEntry, (600, 2, "m2", "", 8, None)))
        written(b"m2 a\n")
        written(b"m2 b\n")
        engine.on_timer(cast(HeapEntry, (600, 3, "m1", "", 9, None)))  # writes nothing
        stepper.events([4], [Event(time=700, kind="message", member="m3", group="g1")], 0)
        written(b"event 4\n")
        steps.close()
        steps.write()
    rows = [row for batch in batches(path) for row in batch]
    assert rows == [
        (500, 0, 3, "", "", 0, b"event 3\n"),
        (600, 1, 2, "m2", "", 8, b"m2 a\nm2 b\n"),
        (700, 0, 4, "", "", 0, b"event 4\n"),
    ]
