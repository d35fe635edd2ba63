"""`sopdsl test`: find each fixture's playbook, dry-run it, and report every expectation.

Input: fixture paths. Output: a `Report` rendered as text or JSON (as JUnit XML by
`sopdsl.reporting.junit`), and an exit code (0 all pass, 1 failures, 2 errors such as a broken
fixture or playbook).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sopdsl.build import Located, compile_files
from sopdsl.diagnostics import Diagnostic, Severity, render
from sopdsl.dryrun.coverage import Coverage
from sopdsl.dryrun.fixture_events import event_problems, fixture_warnings
from sopdsl.dryrun.fixture_names import NameProblem, name_problems
from sopdsl.dryrun.fixtures import Fixture, load_fixture, not_a_file, position_of, reload_paths
from sopdsl.dryrun.simulate import Outcome, describe, expectation_title, reload_warning, simulate
from sopdsl.errors import FixtureError
from sopdsl.plan import Plan
from sopdsl.source import Source, Span
from sopdsl.syntax.loader import display_path

# Diagnostics, each with the source it points into (None if it is not at hand).


@dataclass
class FixtureResult:
    """One fixture's outcomes, or the errors that stopped it from running."""

    path: str
    outcomes: list[Outcome] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # what a reload in it should make ops check
    # Errors found in an expectation that ran all the same (a `never` over an action no step
    # makes), by its index: that expectation fails.
    expectation_errors: dict[int, list[str]] = field(default_factory=dict)
    # What each expectation asks (`expectation_title`), known once the fixture is read: a report
    # names its cases by them, whether they ran or not.
    expectations: list[str] = field(default_factory=list)
    # Actions that failed as the run decided them (a template error, a member's data), each with
    # its reason and line: shown even when every expectation holds.
    failed_actions: list[str] = field(default_factory=list)


@dataclass
class Report:
    """All fixtures' results."""

    results: list[FixtureResult]

    @property
    def failures(self) -> int:
        """How many expectations failed."""
        return sum(1 for r in self.results for o in r.outcomes if not o.passed)

    @property
    def errors(self) -> int:
        """How many fixtures could not run."""
        return sum(1 for r in self.results if r.errors)

    @property
    def passed(self) -> int:
        """How many expectations held."""
        return sum(1 for r in self.results for o in r.outcomes if o.passed)

    @property
    def exit_code(self) -> int:
        """0 all pass, 1 failures, 2 errors."""
        return 2 if self.errors else (1 if self.failures else 0)

    def lines(self) -> list[str]:
        """The report for people."""
        out: list[str] = []
        for result in self.results:
            if result.errors:
                out.append(f"ERROR {result.path}")
                out.extend("  " + line for error in result.errors for line in error.splitlines())
                continue
            failed = [o for o in result.outcomes if not o.passed]
            out.append(
                f"{'FAIL' if failed else 'ok  '} {result.path} ({len(result.outcomes) - len(failed)}/{len(result.outcomes)})"
            )
            shown = [
                e for index in sorted(result.expectation_errors) for e in result.expectation_errors[index]
            ]
            out.extend("  " + line for note in [*shown, *result.warnings] for line in note.splitlines())
            if result.failed_actions:
                out.append(f"  {len(result.failed_actions)} action(s) failed in the run:")
                out.extend(f"    {line}" for line in result.failed_actions[:_FAILED_SHOWN])
                if len(result.failed_actions) > _FAILED_SHOWN:
                    out.append(
                        f"    ... and {len(result.failed_actions) - _FAILED_SHOWN} more (--format json lists all)"
                    )
            for outcome in failed:
                out.append(f"  expect[{outcome.index}]: {outcome.message}")
                if outcome.nearest:
                    changes = outcome.expectation.plan_change is not None
                    out.append(
                        "    plan changes that happened:" if changes else "    nearest actual actions:"
                    )
                    out.extend(f"      {n}" for n in outcome.nearest)
        out.append(
            f"{self.passed} passed, {self.failures} failed"
            + (f", {self.errors} error(s)" if self.errors else "")
        )
        return out

    def to_json(self) -> dict[str, Any]:
        """The report for machines."""
        return {
            "passed": self.passed,
            "failed": self.failures,
            "errors": self.errors,
            "fixtures": [
                {
                    "path": r.path,
                    "errors": r.errors,
                    "warnings": r.warnings,
                    "failed_actions": r.failed_actions,
                    "expectations": [
                        {
                            "index": o.index,
                            "passed": o.passed,
                            "message": o.message,
                            "nearest": o.nearest,
                            "errors": r.expectation_errors.get(o.index, []),
                        }
                        for o in r.outcomes
                    ],
                }
                for r in self.results
            ],
        }


_FAILED_SHOWN = 5


def playbook_for(fixture: Fixture, path: Path) -> Path:
    """The playbook a fixture runs: its `playbook` field, or the `.sop` file sharing its stem."""
    if fixture.playbook:
        return path.parent / fixture.playbook
    return path.parent / (path.name.split(".")[0] + ".sop")


def fixture_versions(
    fixture: Fixture,
    path: Path,
    source: Source,
    plan_of: Callable[[list[Path], Located], Plan | Located],
) -> dict[tuple[str, ...], Plan] | Located:
    """The plan each `reload` entry of a fixture loads, by its files as the fixture names them.

    `plan_of(files, asked)` checks and compiles the files; `asked` points at the entry that names
    them, to be shown before the files' own diagnostics if they do not check. Returns every
    problem found instead when any reload's files do not check.
    """
    versions: dict[tuple[str, ...], Plan] = {}
    problems: Located = []
    for index, event in enumerate(fixture.events):
        names = event.reload_files
        if not names or names in versions:
            continue
        asked = Diagnostic(
            "SOP603",
            Severity.ERROR,
            f"events.{index}.reload: {', '.join(names)} does not check; its errors follow",
            Span.point(source.path, *position_of(fixture, "events", index, "reload")),
        )
        built = plan_of(reload_paths(event, path.parent), [(asked, source)])
        if isinstance(built, Plan):
            versions[names] = built
        else:
            problems.extend(built)
    return problems or versions


def run_tests(paths: list[Path], root: Path | None = None, coverage: Coverage | None = None) -> Report:
    """Run every fixture and collect the report (`root`: the project folder includes stay in, by
    default each playbook's own folder; `coverage`: where to record what the runs exercised)."""
    plans: dict[tuple[Path, ...], Plan | Located] = {}

    def plan_of(files: list[Path], asked: Located) -> Plan | Located:
        key = tuple(file.resolve() for file in files)
        if key not in plans:
            build = compile_files(files, root)
            plans[key] = build.located(errors_only=True) if build.plan is None else build.plan
        plan = plans[key]
        return plan if isinstance(plan, Plan) else [*asked, *plan]

    results: list[FixtureResult] = []
    for path in paths:
        shown = display_path(path)
        result = FixtureResult(shown)
        results.append(result)
        try:
            fixture, source = load_fixture(path, shown)
        except FixtureError as exc:
            try:
                text: Source | None = Source(shown, path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError):
                text = None
            result.errors = [render(d, text) for d in exc.diagnostics]
            continue
        result.expectations = [expectation_title(e) for e in fixture.expect]
        playbook = playbook_for(fixture, path)
        problem = not_a_file(playbook)
        if problem is not None:
            given = fixture.playbook is not None
            missing = Diagnostic(
                "SOP603",
                Severity.ERROR,
                f"playbook '{display_path(playbook)}' {problem}",
                Span.point(shown, *position_of(fixture, "playbook")) if given else Span.point(shown),
                (
                    f"did you mean {playbook.name}.sop?"
                    if given and (playbook.parent / f"{playbook.name}.sop").is_file()
                    else "name it relative to the fixture's folder"
                    if given
                    else "name it with `playbook: FILE.sop` in the fixture"
                ),
            )
            result.errors = [render(missing, source)]
            continue
        plan = plan_of([playbook], [])
        versions = fixture_versions(fixture, path, source, plan_of)
        if isinstance(plan, list) or isinstance(versions, list):
            problems = (plan if isinstance(plan, list) else []) + (
                versions if isinstance(versions, list) else []
            )
            result.errors = [render(d, where) for d, where in problems]
            continue
        refused = event_problems(fixture, [plan, *versions.values()], shown)
        if refused:
            result.errors = [render(d, source) for d in refused]
            continue
        named = name_problems(fixture, [plan, *versions.values()], shown)
        if any(p.stops for p in named):
            result.errors = [render(p.diagnostic, source) for p in named]
            continue
        recorder = None
        if coverage is not None:
            coverage.add_plan(plan, playbook.parent, shown)
            for names, version in versions.items():
                coverage.add_plan(version, (path.parent / names[0]).parent, shown)
            recorder = coverage.recorder()
        try:
            simulation = simulate(plan, fixture, versions=versions, on_step=recorder)
        except Exception as exc:  # a fixture the engine rejects: report it, keep running the others
            result.errors = [f"{shown}: the simulation stopped: {exc}"]
            continue
        result.outcomes = _vacuous_fail(simulation.outcomes, named)
        zone = fixture.timezone or plan.declarations.timezone
        result.failed_actions = [
            f"{describe(a, zone)}  ({a.playbook}: {a.loc})"
            for a in simulation.actions
            if a.status == "failed"
        ]
        ran = [plan, *versions.values()]
        result.warnings += [render(d, source) for d in fixture_warnings(fixture, ran, shown)]
        for p in named:
            if p.diagnostic.severity is Severity.ERROR:
                result.expectation_errors.setdefault(p.index, []).append(render(p.diagnostic, source))
            else:
                result.warnings.append(render(p.diagnostic, source))
        result.warnings += [w for r in simulation.reloads if (w := reload_warning(r, zone)) is not None]
    return Report(results)


def cover_unrun(coverage: Coverage, files: list[Path], root: Path | None = None) -> list[str]:
    """Register the playbooks of `files` that no fixture ran, so the coverage report names them;
    returns the files that do not compile on their own (an include, say), which it cannot."""
    seen = set(coverage.fixtures)
    skipped: list[str] = []
    for file in files:
        if display_path(file.resolve()) in seen:
            continue
        build = compile_files([file], root)
        if build.plan is None:
            skipped.append(display_path(file))
        else:
            coverage.add_plan(build.plan, file.parent)
    return skipped


def _vacuous_fail(outcomes: list[Outcome], named: list[NameProblem]) -> list[Outcome]:
    """The outcomes, with each `never` over something no step makes failed: it held, but only
    because it could not have failed."""
    vacuous = {p.index: p.diagnostic for p in named if p.diagnostic.severity is Severity.ERROR}
    return [
        replace(o, passed=False, message=f"{o.message}, but {vacuous[o.index].message.split(': ', 1)[1]}")
        if o.index in vacuous and o.passed
        else o
        for o in outcomes
    ]


def dumps(report: Report) -> str:
    """The JSON report as text."""
    return json.dumps(report.to_json(), ensure_ascii=False, indent=2)
