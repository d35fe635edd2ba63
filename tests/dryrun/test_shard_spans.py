"""Where a timeline's blocks begin and end, found by reading only the end of each read
(`shard_spans`): the blocks of `Timeline.chunks`, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from sopdsl.dryrun import timeline as timeline_module
from sopdsl.dryrun.shard_spans import read_span, spans
from sopdsl.dryrun.timeline import open_timeline

_HEADER = b'{"sopdsl":"timeline","version":1,"timezone":"UTC","start":0}\n'


def _lines(count: int, long_every: int = 0, members: int = 0) -> list[bytes]:
    """`members` member lines, then event lines, some much longer than a small block when
    `long_every` is given."""
    out = [b'{"id":"m%d","name":"%s"}\n' % (i, b"y" * (i % 70)) for i in range(members)]
    for i in range(count):
        name = "x" * (3000 if long_every and i % long_every == 0 else i % 50)
        out.append(b'{"at":%d,"kind":"message","member":"u%d","name":"%s"}\n' % (i, i, name.encode()))
    return out


@pytest.mark.parametrize("block", [64, 100, 1 << 10, 1 << 12, 1 << 20])
@pytest.mark.parametrize("ending", [b"\n", b"", b"\r\n"])
@pytest.mark.parametrize("long_every", [0, 7])
@pytest.mark.parametrize("tail", [16, 1 << 12])  # a read's end looked at in steps of `tail` bytes
@pytest.mark.parametrize("members", [0, 45])
def test_spans_are_the_blocks_chunks_reads(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    block: int,
    ending: bytes,
    long_every: int,
    tail: int,
    members: int,
) -> None:
    from sopdsl.dryrun import shard_spans

    monkeypatch.setattr(timeline_module, "BLOCK", block)
    monkeypatch.setattr(shard_spans, "_TAIL", tail)
    body = b"".join(_lines(300, long_every, members)).replace(b"\n", b"\r\n" if ending == b"\r\n" else b"\n")
    if ending == b"":
        body = body.rstrip(b"\n")  # the last line without its newline
    path = tmp_path / "t.jsonl"
    path.write_bytes(_HEADER + body)
    read = open_timeline(path, "t", "UTC")
    chunks = [c.data for c in read.chunks()]
    read.close()
    found = open_timeline(path, "t", "UTC")
    found_spans = list(spans(found))
    assert [read_span(found, start, end) for start, end in found_spans] == chunks
    found.close()
    assert len(chunks) > (1 if block < 1 << 12 else 0)
    assert found_spans[0][0] == len(_HEADER) and found_spans[-1][1] == len(_HEADER + body)
    # No block holds both members and events: the block where the members end is cut there, so
    # each part is read the fast way (a member block by its route, an event block by `quick`).
    mixed = [c for c in chunks if b'"kind"' in c and b'"id"' in c]
    assert not mixed
    if members:
        assert b'"kind"' not in chunks[0] and b'"id"' not in chunks[-1]


def test_a_file_of_the_header_alone_has_no_blocks(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(_HEADER)
    timeline = open_timeline(path, "t", "UTC")
    assert list(spans(timeline)) == [] and list(timeline.chunks()) == []
    timeline.close()
