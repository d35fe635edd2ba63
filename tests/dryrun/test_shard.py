"""The sharded dry run: its log equals one process's byte for byte, on the corpus and a generated
community; plans and timelines whose members interact run in one process and say why."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Container, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from benchmods import bench
from click.testing import CliRunner

from sopdsl.build import compile_files
from sopdsl.cli import main
from sopdsl.cli_dryrun import _action_writer
from sopdsl.dryrun.fixtures import load_fixture
from sopdsl.dryrun.shard import ShardRun, simulate_sharded
from sopdsl.dryrun.shard_plan import one_shard_reason
from sopdsl.dryrun.shard_read import shard_of
from sopdsl.dryrun.testing import playbook_for
from sopdsl.plan import Plan

ROOT = Path(__file__).parent.parent.parent
PLAYBOOKS = ROOT / "playbooks"


def plan_of(sop: Path) -> Plan:
    built = compile_files([sop], None)
    assert built.plan is not None, sop
    return built.plan


def run(plan: Plan, timeline: Path, jobs: int, fmt: str = "jsonl") -> tuple[bytes, ShardRun]:
    out = io.BytesIO()
    zone = plan.declarations.timezone
    header = json.loads(timeline.read_text(encoding="utf-8").splitlines()[0])
    shown = header.get("timezone") or zone

    def writer(to: Any) -> Any:
        return _action_writer(to, fmt, True, shown, plan)

    done = simulate_sharded(plan, timeline, timeline.name, zone, writer, out, jobs)
    return out.getvalue(), done


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


def read_as_shard(
    path: Path, shard: int, folder: Path, known: Container[str] | None = None, shards: int = 2
) -> Iterator[Any]:
    """What shard `shard` of `shards` reads of a JSONL timeline (`shard_read.shard_blocks`), every
    shard's routes written first into `folder`, as a sharded run writes them."""
    from sopdsl.dryrun.shard_exchange import Exchange
    from sopdsl.dryrun.shard_read import route_blocks, shard_blocks
    from sopdsl.dryrun.timeline import open_timeline

    folder.mkdir()
    done = [0] * shards
    for k in range(shards):
        ahead = open_timeline(path, path.name, "Asia/Shanghai")
        route_blocks(ahead, Exchange(folder, k, shards, done))
        ahead.close()
    timeline = open_timeline(path, path.name, "Asia/Shanghai")
    yield from shard_blocks(timeline, Exchange(folder, shard, shards, done), known)
    timeline.close()


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


def test_a_shard_reads_the_same_parts_whether_it_checks_groups_or_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Where calendars run, a shard checks the groups its own events name against those met: with
    # every group met, its parts are those of a shard that checks none (small blocks: most of
    # them a `Part`, most of those routed by the other shard).
    from sopdsl.dryrun import timeline as timeline_module
    from sopdsl.dryrun.shard_read import Part

    monkeypatch.setattr(timeline_module, "_BLOCK", 1 << 12)

    generate = bench("generate")
    path = tmp_path / "1kx30.jsonl"
    generate.generate(generate.Size(1000, 30), path)
    for shard in (0, 1):
        read = []
        for index, known in enumerate((None, {f"g{i}" for i in range(10_000)})):
            blocks = read_as_shard(path, shard, tmp_path / f"{shard}.{index}", known)
            parts = [p for p in blocks if isinstance(p, Part)]
            read.append([(p.numbers, p.events, p.count, p.last) for p in parts])
        assert read[0] == read[1] and sum(len(p[0]) for p in read[0]) > 1000


def _with_tag_lines(source: Path, target: Path, every: int, shard: int | None = None) -> int:
    """`source` with a tag event after every `every`-th message line (of a member of `shard`, if
    given), written to `target`: a line no block of everyday lines holds. How many were added."""
    tagged, added = [], 0
    for index, line in enumerate(source.read_bytes().splitlines(keepends=True)):
        tagged.append(line)
        row = json.loads(line)
        if index % every == 0 and row.get("kind") == "message":
            if shard is None or shard_of(row["member"], 2) == shard:
                tag = {"at": row["at"], "kind": "tag", "member": row["member"], "name": "vip"}
                tagged.append(json.dumps(tag).encode() + b"\n")
                added += 1
    target.write_bytes(b"".join(tagged))
    return added


def test_a_block_with_another_shard_s_tag_line_is_still_this_shard_s_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A block holding a line that is not everyday (a tag event here, shard 1's) is still a `Part`
    # for shard 0, whose route of it holds only its own lines: numbered among all the block's
    # events, as they are without the tag lines; shard 1 reads the block in full.
    from sopdsl.dryrun import timeline as timeline_module
    from sopdsl.dryrun.shard_read import Part
    from sopdsl.engine.events import Event

    monkeypatch.setattr(timeline_module, "_BLOCK", 1 << 12)
    generate = bench("generate")
    plain = tmp_path / "plain.jsonl"
    generate.generate(generate.Size(1000, 30), plain)
    path = tmp_path / "tagged.jsonl"
    added = _with_tag_lines(plain, path, 40, shard=1)
    assert added > 20

    def read(timeline_path: Path, shard: int) -> tuple[list[Any], list[Any], int]:
        parts = list(read_as_shard(timeline_path, shard, tmp_path / f"{timeline_path.stem}.{shard}"))
        events = [e for p in parts if isinstance(p, Part) for e in p.events]
        in_full = [r for p in parts if not isinstance(p, Part) for r in p if isinstance(r, Event)]
        numbered = sum(p.count for p in parts if isinstance(p, Part)) + len(in_full)
        return events, in_full, numbered

    own, in_full, numbered = read(path, 0)
    plain_own, plain_full, plain_numbered = read(plain, 0)
    # Only the block where the members end is read in full, tag lines or not.
    assert [e for e in in_full if e.kind != "tag"] == plain_full and len(plain_full) < 20
    assert own == plain_own and len(own) > 1000
    assert numbered == plain_numbered + added  # the other shard's tag lines counted among the events
    _, theirs_in_full, _ = read(path, 1)
    assert sum(e.kind == "tag" for e in theirs_in_full) == added


def test_blocks_shared_out_among_the_shards_give_one_process_s_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each shard decodes the keys of every N-th block and routes the others their lines of it
    # (shard_exchange): with small blocks, most of a shard's parts come from another's routes,
    # and tag lines make some blocks read in full by one shard and parts for the rest.
    from sopdsl.dryrun import timeline as timeline_module

    monkeypatch.setattr(timeline_module, "_BLOCK", 1 << 12)
    generate = bench("generate")
    timeline = tmp_path / "1kx30.jsonl"
    generate.generate(generate.Size(1000, 30), tmp_path / "plain.jsonl")
    assert _with_tag_lines(tmp_path / "plain.jsonl", timeline, 97) > 20
    assert timeline.stat().st_size > 50 * (1 << 12)  # many blocks
    plan = plan_of(ROOT / "bench" / "reference.sop")
    single, _ = run(plan, timeline, 1)
    assert single.count(b"\n") >= 1000
    for jobs in (2, 3):
        sharded, done = run(plan, timeline, jobs)
        assert (done.jobs, done.reason) == (jobs, None)
        assert sharded == single


def test_routes_that_cannot_be_written_send_the_run_to_one_process_saying_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The routes go to a temporary folder, about the timeline's size in all: a full disk there
    # makes the run one process's, the same log, and the note says why.
    from sopdsl.dryrun.shard_exchange import Exchange

    def full(*_: Any) -> None:
        raise OSError(28, "No space left on device")

    generate = bench("generate")
    timeline = tmp_path / "300x20.jsonl"
    generate.generate(generate.Size(300, 20), timeline)
    plan = plan_of(ROOT / "bench" / "reference.sop")
    single, _ = run(plan, timeline, 1)
    monkeypatch.setattr(Exchange, "give", full)
    sharded, done = run(plan, timeline, 2)
    assert done.jobs == 1 and done.reason is not None and "No space left on device" in done.reason
    assert sharded == single and single.count(b"\n") >= 100


def test_a_shard_that_fails_while_another_waits_for_its_blocks_ends_the_run_in_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A member line only its own shard checks fails that shard at once; the other would wait for
    # the routes of the blocks the failed one reads. The parent ends it, and one process reads
    # the file again and says what is wrong (a run that hung would be stopped by the alarm).
    import signal

    from sopdsl.dryrun import timeline as timeline_module
    from sopdsl.errors import FixtureError

    monkeypatch.setattr(timeline_module, "_BLOCK", 1 << 12)
    generate = bench("generate")
    timeline = tmp_path / "1kx30.jsonl"
    generate.generate(generate.Size(1000, 30), timeline)
    lines = timeline.read_bytes().splitlines(keepends=True)
    rows = [json.loads(line) for line in lines]
    bad = next(i for i, row in enumerate(rows) if i and "id" in row and shard_of(row["id"], 2) == 1)
    member = json.loads(lines[bad])
    member["name"] = "长" * 300  # over the limit of a name: said by its own shard only
    lines[bad] = json.dumps(member, ensure_ascii=False).encode() + b"\n"
    timeline.write_bytes(b"".join(lines))
    plan = plan_of(ROOT / "bench" / "reference.sop")

    def hung(*_: Any) -> None:
        raise AssertionError("the sharded run hung")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(120)
    try:
        with pytest.raises(FixtureError) as failed:
            run(plan, timeline, 2)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    [said] = failed.value.diagnostics
    assert said.span.line == bad + 1 and "name is 300 characters long" in said.message


def test_a_block_naming_a_group_not_met_is_read_as_records_for_the_shard_to_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A shard checks the groups its own events name against those met so far: a block where one
    # names another is no `Part`, and its records reach `named_groups`; a group met later is
    # taken from then on. Group "late" is first named halfway through the file, in blocks of
    # everyday lines.
    from sopdsl.dryrun import timeline as timeline_module
    from sopdsl.dryrun.shard_read import Part
    from sopdsl.engine.events import Event

    monkeypatch.setattr(timeline_module, "_BLOCK", 1 << 12)
    generate = bench("generate")
    plain = tmp_path / "plain.jsonl"
    generate.generate(generate.Size(1000, 30), plain)
    lines = plain.read_bytes().splitlines(keepends=True)
    half = len(lines) // 2
    path = tmp_path / "late.jsonl"
    path.write_bytes(
        b"".join(
            line.replace(b'"group":"g3"', b'"group":"late"') if i > half else line
            for i, line in enumerate(lines)
        )
    )
    known = {f"g{i}" for i in range(10_000)}
    before, after, in_records = 0, 0, 0
    for part in read_as_shard(path, 0, tmp_path / "routes", known):
        if not isinstance(part, Part):
            in_records += sum(isinstance(r, Event) and r.group == "late" for r in part)
            if in_records:
                known.add("late")  # met: the next blocks' lines naming it are parts again
        elif in_records:
            after += sum(e.group == "late" for e in part.events)
        else:
            before += sum(e.group == "late" for e in part.events)
    assert before == 0 and in_records > 0 and after > 0


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
