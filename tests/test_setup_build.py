"""setup.py's build of the compiled modules is all or none: mypyc's modules are shims over one
shared library, so a build where some extension failed must install none of them (the pure
modules then run), never shims that fail at import."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from compiling import need_compiler
from setuptools import Distribution, Extension

ROOT = Path(__file__).resolve().parent.parent

GOOD = """
#include <Python.h>
static struct PyModuleDef m = {PyModuleDef_HEAD_INIT, "%s", NULL, -1, NULL};
PyMODINIT_FUNC PyInit_%s(void) { return PyModule_Create(&m); }
"""


def _all_or_none() -> Any:
    spec = importlib.util.spec_from_file_location("sopdsl_setup", ROOT / "setup.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # not as __main__: setup() is not called
    return module.AllOrNone


def _build(tmp_path: Path, sources: dict[str, str]) -> tuple[list[Path], Any]:
    extensions = []
    for name, text in sources.items():
        source = tmp_path / f"{name}.c"
        source.write_text(text, encoding="utf-8")
        extensions.append(Extension(f"pkg.{name}", [str(source)], optional=True))
    dist = Distribution({"name": "pkg", "ext_modules": extensions})
    command = _all_or_none()(dist)
    command.build_lib = str(tmp_path / "lib")
    command.build_temp = str(tmp_path / "temp")
    command.ensure_finalized()
    command.run()
    return [Path(command.get_ext_fullpath(ext.name)) for ext in extensions], command


def test_every_extension_built_is_kept(tmp_path: Path) -> None:
    need_compiler()
    outputs, _ = _build(tmp_path, {"one": GOOD % ("one", "one"), "two": GOOD % ("two", "two")})
    assert [out.exists() for out in outputs] == [True, True]


def test_one_failed_extension_removes_the_others(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    need_compiler()
    broken = "this is not C;\n"
    outputs, _ = _build(tmp_path, {"shim": GOOD % ("shim", "shim"), "shared": broken})
    assert [out.exists() for out in outputs] == [False, False]
    assert "1 of 2 compiled modules failed to build (pkg.shared)" in capfd.readouterr().err
