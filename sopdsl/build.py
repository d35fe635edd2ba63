"""Building a plan from playbook files: load with includes, check, compile, analyse.

Input: `.sop` paths. Output: a `Build` (the plan, or none, and every diagnostic with its source).
The one path from files to a plan that `check`, `compile`, `test`, `simulate`, `why` and `run`
share, so none of them accepts what another refuses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sopdsl.diagnostics import Diagnostic, Severity, render
from sopdsl.errors import SopdslError
from sopdsl.plan import Plan
from sopdsl.plan.analysis import analyse
from sopdsl.plan.compiler import compile_program, relocate
from sopdsl.project import Project
from sopdsl.source import Source, Span

# The loader and the checker (and with them Lark) are imported where files are read, so that
# importing this module (`sopdsl run` does, for a plan.json too) does not load the front end.

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
    from sopdsl.checker import check_program
    from sopdsl.syntax.loader import LoadedProgram, load

    loaded = [load(p, root or (roots or {}).get(p)) for p in files]
    merged = LoadedProgram(root=loaded[0].root)
    for program in loaded:
        for file in program.files:
            if file.path not in {f.path for f in merged.files}:
                merged.files.append(file)
        merged.sources.update(program.sources)
        merged.template_files.update(program.template_files)
        merged.attachment_files.update(program.attachment_files)
        merged.diagnostics.extend(program.diagnostics)
        merged.partial |= program.partial
        merged.mended.update(program.mended)
    result = check_program(merged)
    # Analysed with the paths diagnostics show; run with paths relative to the root file's folder.
    plan = compile_program(result.program, relative=False) if result.program is not None else None
    analysis = analyse(plan, merged.sources) if plan is not None else []
    if any(d.is_error for d in analysis):
        plan = None
    if plan is not None:
        plan = relocate(plan).with_hash()
    return Build(plan, [*result.diagnostics, *analysis], merged.sources, analysis)


def compile_project(project: Project, files: Sequence[Path] | None = None) -> Build:
    """`compile_files` over a project's deployable set (or the part of it in `files`), includes
    kept inside the project folder; the plan must be in the project's time zone, if it names one."""
    build = compile_files(list(files if files is not None else project.files), project.root)
    build.sources[project.source.path] = project.source
    zone = build.plan.declarations.timezone if build.plan is not None else None
    if project.timezone is not None and zone is not None and zone != project.timezone:
        build.diagnostics.append(
            Diagnostic(
                "SOP008",
                Severity.ERROR,
                f"the project's time zone is {project.timezone}, but its playbooks say {zone}",
                Span.point(project.source.path, project.line_of("timezone")),
                "make `timezone` in sopdsl.toml and in the playbooks agree",
            )
        )
        build.plan = None
    return build


class PathError(SopdslError):
    """Paths that give nothing to build: one that does not exist or cannot be read, or folders without a .sop file."""


def find_files(paths: Sequence[str]) -> list[tuple[Path, Path | None]]:
    """The .sop files named or found in folders, each with the folder it was found in (or None);
    raises `PathError` when a path does not exist or none is found."""
    from sopdsl.syntax.loader import discover_rooted

    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise PathError(f"no such file or folder: {', '.join(missing)}")
    files = discover_rooted(paths)
    if not files:
        raise PathError(f"no .sop files found in {', '.join(paths)}")
    return files


def build_paths(paths: Sequence[str], root: Path | None = None) -> Build:
    """`compile_files` over the files named and the .sop files in the folders named (whose includes
    stay in that folder, unless `root` is given); raises `PathError` (see `find_files`). The caller
    reports the diagnostics (`rendered`) and decides what a build without a plan means."""
    files = find_files(paths)
    return compile_files([f for f, _ in files], root, roots={f: r for f, r in files if r is not None})


def rendered(located: Located) -> str:
    """Diagnostics as the commands print them: each with its source lines, then a blank line."""
    return "".join(render(d, source) + "\n\n" for d, source in located)
