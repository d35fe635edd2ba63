"""The bench's scripts measure the compiled build `SOPDSL_BENCH_LIB` names, or refuse to run: a
folder holding no build (deleted when a newer one was built) must not let the pure tree be
measured in its place."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from benchmods import bench


def test_a_folder_holding_no_build_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOPDSL_BENCH_LIB", str(tmp_path / "gone"))
    with pytest.raises(SystemExit, match="holds no compiled build"):
        bench("compiled").put_first_on_path()


def test_a_build_is_put_first_on_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sopdsl__mypyc.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")
    monkeypatch.setenv("SOPDSL_BENCH_LIB", str(tmp_path))
    monkeypatch.setattr(sys, "path", list(sys.path))
    bench("compiled").put_first_on_path()
    assert sys.path[0] == str(tmp_path)
    monkeypatch.delenv("SOPDSL_BENCH_LIB")
    before = list(sys.path)
    bench("compiled").put_first_on_path()  # none named: the pure tree, as before
    assert sys.path == before
