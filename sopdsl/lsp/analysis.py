"""One document through the front end: the text being edited, its includes read from disk.

Input: a document's text, its file path and the project folder. Output: an `Analysis` with
every diagnostic `sopdsl check` would report for that file (loading, checking, and the plan
analysis when it checks), the names the program declares, and which of the document's
includes leads to each other file, so a mistake in an included file can be shown at the line
that includes it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from sopdsl.checker import check_program
from sopdsl.diagnostics import Diagnostic
from sopdsl.lsp.symbols import Symbols, collect
from sopdsl.plan.analysis import analyse as analyse_plan
from sopdsl.plan.compiler import compile_program
from sopdsl.source import Source
from sopdsl.syntax import nodes as n
from sopdsl.syntax.loader import LoadedProgram, display_path, load_text

_INCLUDE_LINE = re.compile(r'^[ \t]*include[ \t]+"(?:[^"\\\n]|\\.)*"', re.MULTILINE)


@dataclass
class Analysis:
    """What the front end found in one document and its includes."""

    path: str  # the document's path as its spans name it
    source: Source
    loaded: LoadedProgram
    diagnostics: list[Diagnostic]
    symbols: Symbols  # when no part of the document parsed: those of its `include` lines alone

    @property
    def parsed(self) -> bool:
        """Whether the document's own text parsed whole (not only the playbooks without a
        syntax error); its includes were then read too."""
        return self.file is not None and self.path not in self.loaded.partial

    @property
    def file(self) -> n.File | None:
        """The document's syntax tree, if it parsed."""
        return next((f for f in self.loaded.files if f.path == self.path), None)

    def include_leading_to(self, path: str) -> n.IncludeDecl | None:
        """The document's `include` through which the file shown as `path` was loaded."""
        if self.file is None:
            return None
        for decl in _includes(self.file):
            reached, todo = set[str](), [_target(self.path, decl)]
            while todo:
                shown = todo.pop()
                if shown == path:
                    return decl
                if shown in reached:
                    continue
                reached.add(shown)
                todo.extend(
                    _target(shown, d) for f in self.loaded.files if f.path == shown for d in _includes(f)
                )
        return None


def analyse(text: str, path: str, root: Path | None) -> Analysis:
    """Load `text` as the file `path` (includes from disk, inside `root`), check it, and when it
    checks, compile and analyse the plan, as `sopdsl check` does."""
    loaded = load_text(text, path, root)
    result = check_program(loaded)
    diagnostics = list(result.diagnostics)
    if result.program is not None:
        # Loops, content mix and cap overruns only show once the plan exists.
        diagnostics.extend(analyse_plan(compile_program(result.program, relative=False), loaded.sources))
    source = loaded.sources.get(path) or Source(path, text)
    analysis = Analysis(path, source, loaded, diagnostics, collect(loaded))
    if analysis.file is None:
        # Its includes were not read, for want of a tree naming them: read the `include` lines
        # alone, so their names can still be offered.
        included = load_text("\n".join(_INCLUDE_LINE.findall(text)), path, root)
        analysis.symbols = collect(included)
    return analysis


def _includes(file: n.File) -> list[n.IncludeDecl]:
    return [d for d in file.declarations if isinstance(d, n.IncludeDecl)]


def _target(including: str, decl: n.IncludeDecl) -> str:
    """The path as the loader shows it of the file an include names (see `loader._include`)."""
    written = Path(including).parent / decl.path.value
    try:
        return display_path(Path(os.path.realpath(written)))
    except ValueError:  # a NUL in the name: the loader refused it, and loaded nothing through it
        return str(written)
