"""A sharded dry run's blocks shared out by routes (`shard_exchange`, `shard_read`): what a
shard reads of each block, the log it gives in two and three processes, and how a run whose
routes cannot be written, or whose shard fails while another waits, ends in one process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from benchmods import bench
from shardruns import ROOT, plan_of, read_as_shard, run

from sopdsl.dryrun.shard_read import shard_of


@pytest.fixture
def community(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A generated 1k x 30 community, read in blocks of 4 KB: most blocks a `Part`, dozens of them."""
    from sopdsl.dryrun import timeline as timeline_module

    monkeypatch.setattr(timeline_module, "BLOCK", 1 << 12)
    generate = bench("generate")
    path = tmp_path / "1kx30.jsonl"
    generate.generate(generate.Size(1000, 30), path)
    return path


def test_a_shard_reads_the_same_parts_whether_it_checks_groups_or_not(
    tmp_path: Path, community: Path
) -> None:
    # Where calendars run, a shard checks the groups its own events name against those met: with
    # every group met, its parts are those of a shard that checks none (small blocks: most of
    # them a `Part`, most of those routed by the other shard).
    from sopdsl.dryrun.shard_read import Part

    path = community
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
    tmp_path: Path, community: Path
) -> None:
    # A block holding a line that is not everyday (a tag event here, shard 1's) is still a `Part`
    # for shard 0, whose route of it holds only its own lines: numbered among all the block's
    # events, as they are without the tag lines; shard 1 reads the block in full.
    from sopdsl.dryrun.shard_read import Part
    from sopdsl.engine.events import Event

    plain = community
    path = tmp_path / "tagged.jsonl"
    added = _with_tag_lines(plain, path, 40, shard=1)
    assert added > 20

    def read(timeline_path: Path, shard: int) -> tuple[list[Any], list[Any], int]:
        parts = list(read_as_shard(timeline_path, shard, tmp_path / f"{timeline_path.stem}.{shard}"))
        events = [e for p in parts if isinstance(p, Part) for e in p.events]
        in_full = [r for p in parts if isinstance(p, list) for r in p if isinstance(r, Event)]
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


def test_blocks_shared_out_among_the_shards_give_one_process_s_log(tmp_path: Path, community: Path) -> None:
    # Each shard decodes the keys of every N-th block and routes the others their lines of it
    # (shard_exchange): with small blocks, most of a shard's parts come from another's routes,
    # and tag lines make some blocks read in full by one shard and parts for the rest.

    timeline = tmp_path / "tagged.jsonl"
    assert _with_tag_lines(community, timeline, 97) > 20
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
    community: Path,
) -> None:
    # A member line only its own shard checks fails that shard at once; the other would wait for
    # the routes of the blocks the failed one reads. The parent ends it, and one process reads
    # the file again and says what is wrong (a run that hung would be stopped by the alarm).
    import signal

    from sopdsl.errors import FixtureError

    timeline = community
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
    tmp_path: Path, community: Path
) -> None:
    # A shard checks the groups its own events name against those met so far: a block where one
    # names another is no `Part`, and its records reach `named_groups`; a group met later is
    # taken from then on. Group "late" is first named halfway through the file, in blocks of
    # everyday lines.
    from sopdsl.dryrun.shard_read import Part
    from sopdsl.engine.events import Event

    plain = community
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
        if isinstance(part, list):
            in_records += sum(isinstance(r, Event) and r.group == "late" for r in part)
            if in_records:
                known.add("late")  # met: the next blocks' lines naming it are parts again
        elif not isinstance(part, Part):
            continue  # a block of member lines
        elif in_records:
            after += sum(e.group == "late" for e in part.events)
        else:
            before += sum(e.group == "late" for e in part.events)
    assert before == 0 and in_records > 0 and after > 0


@pytest.mark.parametrize("joined", [b"}{", b",\n"], ids=["two-on-a-line", "one-over-two-lines"])
def test_a_routed_block_whose_lines_are_not_one_event_each_is_said_wrong_as_one_process_says(
    tmp_path: Path, community: Path, joined: bytes
) -> None:
    # The reader of a block checks that each of its lines holds one value, for every shard (a
    # shard's own lines are then only counted): two events on one line, or one event over two
    # lines, mid-run in blocks of everyday lines, end the run in one process, which says so.

    lines = community.read_bytes().splitlines(keepends=True)
    at = len(lines) // 2
    assert b'"kind":"message"' in lines[at] and b'"kind"' in lines[at + 1]
    if joined == b"}{":
        lines[at] = lines[at].rstrip(b"\n") + lines.pop(at + 1)  # two on one line
    else:
        lines[at] = lines[at].replace(b'"kind"', b'\n"kind"', 1)  # one over two lines
    path = tmp_path / "broken.jsonl"
    path.write_bytes(b"".join(lines))
    assert _said_in_one_and_two(path)


def test_a_block_of_member_lines_gives_each_shard_its_members_and_every_group_named(
    tmp_path: Path, community: Path
) -> None:
    # Member lines are routed as event lines are: each shard decodes only its own, in full, and
    # is told every group the block's lines name (a group named by another shard's member only,
    # and one named by a member's history only, among them), in the order first named.
    from sopdsl.dryrun.shard_read import Members

    lines = community.read_bytes().splitlines(keepends=True)
    rows = [json.loads(line) for line in lines[1:]]
    members = [row for row in rows if "id" in row]
    other = next(i for i, m in enumerate(members) if shard_of(m["id"], 2) == 1 and i > 40)
    members[other]["groups"] = [*members[other]["groups"], "theirs-only"]
    mine = next(i for i, m in enumerate(members) if shard_of(m["id"], 2) == 0 and i > 40)
    members[mine]["groups"] = [*members[mine]["groups"], {"id": "history-only", "joined": 1}]
    rows[: len(members)] = members
    path = tmp_path / "members.jsonl"
    path.write_bytes(lines[0] + b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in rows))
    named = list(dict.fromkeys(g if isinstance(g, str) else g["id"] for m in members for g in m["groups"]))
    for shard in (0, 1):
        blocks = list(read_as_shard(path, shard, tmp_path / f"routes.{shard}"))
        routed = [b for b in blocks if isinstance(b, Members)]
        assert len(routed) > 5  # small blocks: most of the member lines routed
        got = [m.id for b in routed for m in b.members]
        in_full = [r.id for b in blocks if isinstance(b, list) for r in b if hasattr(r, "groups")]
        assert got and all(shard_of(m, 2) == shard for m in got)
        ids = [m["id"] for m in members]
        assert set(got) | set(in_full) >= {m for m in ids if shard_of(m, 2) == shard}
        groups = [g for b in routed for g in b.groups]
        assert "theirs-only" in groups and "history-only" in groups
        assert list(dict.fromkeys(groups)) == [g for g in named if g in set(groups)]
    mine_record = next(
        m
        for b in read_as_shard(path, 0, tmp_path / "again")
        if isinstance(b, Members)
        for m in b.members
        if m.id == members[mine]["id"]
    )
    assert mine_record.group_joined_at == {"history-only": 1}  # read in full by its own shard
    plan = plan_of(ROOT / "bench" / "reference.sop")
    single, _ = run(plan, path, 1)
    sharded, done = run(plan, path, 2)
    assert (done.jobs, done.reason) == (2, None) and sharded == single


@pytest.mark.parametrize("where", ["event", "member"])
def test_a_lone_surrogate_in_a_routed_block_s_member_id_is_said_wrong_as_one_process_says(
    tmp_path: Path, community: Path, where: str
) -> None:
    # A route finds each line's shard by the CRC-32 of its member id's UTF-8 bytes, which a lone
    # surrogate (an escape in the file) has none of: the block's keys are refused, it is read in
    # full, the member's shard finds the mistake, and one process says what it says.
    from sopdsl.errors import FixtureError

    lines = community.read_bytes().splitlines(keepends=True)
    if where == "event":
        at = len(lines) // 2
        assert b'"kind":"message"' in lines[at]
    else:
        at = next(i for i, line in enumerate(lines) if i > 60 and line.startswith(b'{"id":'))
    row = json.loads(lines[at])
    row["member" if where == "event" else "id"] = "u\ud800x"
    lines[at] = json.dumps(row).encode() + b"\n"  # ASCII: the surrogate written as \ud800
    path = tmp_path / "surrogate.jsonl"
    path.write_bytes(b"".join(lines))
    owner = shard_of("u\ud800x", 2)
    with pytest.raises(FixtureError, match="surrogate"):  # its member's shard finds it, reading in full
        list(read_as_shard(path, owner, tmp_path / "routes"))
    assert any("surrogate" in message for _, message in _said_in_one_and_two(path))


def _said_in_one_and_two(path: Path) -> list[tuple[int, str]]:
    """The mistakes a dry run of `path` reports (line and message), the same in one process and in
    two (a run of two ends in one, which says them)."""
    from sopdsl.errors import FixtureError

    plan = plan_of(ROOT / "bench" / "reference.sop")
    said = []
    for jobs in (1, 2):
        with pytest.raises(FixtureError) as failed:
            run(plan, path, jobs)
        said.append([(d.span.line, d.message) for d in failed.value.diagnostics])
    assert said[0] == said[1]
    return said[0]


@pytest.mark.parametrize("shards", [2, 3, 300])
def test_each_shard_takes_exactly_its_own_lines_of_a_routed_block(shards: int) -> None:
    from sopdsl.dryrun.shard_read import _selectors

    owner = [(i * 7) % shards for i in range(1000)]
    selectors = _selectors(owner, shards)
    assert len(selectors) == shards
    for shard, theirs in enumerate(selectors):
        assert [i for i, mine in enumerate(theirs) if mine] == [i for i, o in enumerate(owner) if o == shard]
