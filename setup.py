"""The build: sopdsl's hot modules compiled to C by mypyc, each beside its Python source.

Compiled or not, it is the same source and the same engine; compiled, a dry run takes 10 to 25%
less time. The modules are listed in pyproject.toml (`[tool.sopdsl] compiled`).
Editable installs (`pip install -e .`) stay pure Python, so that an edit takes effect at once;
`SOPDSL_PURE=1` builds pure Python anywhere. The extensions are optional: where no C compiler
works, pip warns and installs the pure-Python modules, which give the same results. It is all or
none: the modules share one C library, so where any extension fails, none is installed.
"""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

_BUILDS = {"bdist_wheel", "build", "build_ext", "install"}  # commands that build modules


def compiled() -> list[Any]:
    """The extension modules of this build: none for metadata, editable or pure builds."""
    if (
        os.environ.get("SOPDSL_PURE", "0") not in ("", "0")
        or "editable_wheel" in sys.argv
        or not _BUILDS & set(sys.argv)
    ):
        return []
    from mypyc.build import mypycify

    here = Path(__file__).resolve().parent
    names = tomllib.loads((here / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["sopdsl"]["compiled"]
    # pip builds in an isolated environment without sopdsl's dependencies: their types are unknown
    # there, so the project's strict settings are not the build's (`mypy` checks them in CI). Errors
    # in the modules compiled still stop the build; those in modules they import do not.
    options = ["--config-file", os.devnull, "--ignore-missing-imports", "--follow-imports=silent"]
    extensions = mypycify([*options, *names], opt_level="3", group_name="sopdsl")
    for extension in extensions:
        extension.optional = True  # no compiler: the pure modules, same results
    return extensions


class AllOrNone(build_ext):
    """Builds the optional extensions, then keeps them only if every one built.

    mypyc's modules are shims over one shared library (`sopdsl__mypyc`): were it to fail while
    the shims built, the installed shims would fail at import, where the pure modules would run."""

    def run(self) -> None:
        """Build as usual, then remove every built extension if any is missing."""
        super().run()
        outputs = [Path(self.get_ext_fullpath(ext.name)) for ext in self.extensions]
        missing = [ext.name for ext, out in zip(self.extensions, outputs, strict=True) if not out.exists()]
        if not missing:
            return
        for out in outputs:
            out.unlink(missing_ok=True)
        sys.stderr.write(
            f"warning: {len(missing)} of {len(outputs)} compiled modules failed to build ({', '.join(missing[:3])}"
            f"{', ...' if len(missing) > 3 else ''}); installing the pure-Python modules, which give the same results\n"
        )


if __name__ == "__main__":  # setuptools runs this file as __main__; tests import AllOrNone
    setup(ext_modules=compiled(), cmdclass={"build_ext": AllOrNone})
