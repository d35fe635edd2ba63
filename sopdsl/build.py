"""Building a plan from playbook files: load with includes, check, compile, analyse.

Input: `.sop` paths. Output: a `Build` (the plan, or none, and every diagnostic with its source).
The one path from files to a plan that `check`, `compile`, `test`, `simulate`, `why` and `run`
share, so none of them accepts what another refuses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sopdsl.checker import check_program
from sopdsl.diagnostics import Diagnostic
from sopdsl.plan import Plan
from sopdsl.plan.analysis import analyse
from sopdsl.plan.compiler import compile_program, relocate
from sopdsl.source import Source
from sopdsl.syntax.loader import LoadedProgram, load

Located = list[tuple[Diagnostic, Source | None]]


@dataclass
class Build:
    """Playbook files loaded with their includes, checked and, if they check, compiled into one plan."""

    plan: Plan | None
    diagnostics: list[Diagnostic]  # the loader's, the checker's and the plan analysis's
    sources: dict[str, Source]
    analysis: list[Diagnostic] = field(default_factory=list)  # the plan analysis's (SOP7xx) alone

    def located(self, *, errors_only: bool = False) -> Located:
        """The diagnostics with their sources."""
        return [(d, self.sources.get(d.span.path)) for d in self.diagnostics if d.is_error or not errors_only]


def compile_files(
    files: Sequence[Path], root: Path | None = None, *, roots: Mapping[Path, Path] | None = None
) -> Build:
    """Load, check, compile and analyse playbook files into one plan (a file included twice counts
    once); no plan when any of it finds an error, so `test` refuses what `compile` and `run` refuse.

    Includes stay inside `root`, or else a file's entry in `roots` (the folder it was found in), or
    else its own folder."""
    loaded = [load(p, root or (roots or {}).get(p)) for p in files]
    merged = LoadedProgram(root=loaded[0].root)
    for program in loaded:
        for file in program.files:
            if file.path not in {f.path for f in merged.files}:
                merged.files.append(file)
        merged.sources.update(program.sources)
        merged.template_files.update(program.template_files)
        merged.diagnostics.extend(program.diagnostics)
    result = check_program(merged)
    # Analysed with the paths diagnostics show; run with paths relative to the root file's folder.
    plan = compile_program(result.program, relative=False) if result.program is not None else None
    analysis = analyse(plan, merged.sources) if plan is not None else []
    if any(d.is_error for d in analysis):
        plan = None
    if plan is not None:
        plan = relocate(plan).with_hash()
    return Build(plan, [*result.diagnostics, *analysis], merged.sources, analysis)
