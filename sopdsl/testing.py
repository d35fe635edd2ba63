"""`sopdsl test`: find each fixture's playbook, dry-run it, and report every expectation.

Input: fixture paths. Output: a `Report` rendered as text, JSON or JUnit XML, and an exit code
(0 all pass, 1 failures, 2 errors such as a broken fixture or playbook).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax import saxutils

from sopdsl.checker import check_program
from sopdsl.compiler import compile_program
from sopdsl.diagnostics import Diagnostic, Severity, render
from sopdsl.errors import FixtureError
from sopdsl.fixtures import Fixture, load_fixture
from sopdsl.loader import display_path, load
from sopdsl.plan import Plan
from sopdsl.simulate import Outcome, simulate
from sopdsl.source import Source, Span


@dataclass
class FixtureResult:
    """One fixture's outcomes, or the errors that stopped it from running."""

    path: str
    outcomes: list[Outcome] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


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
            for outcome in failed:
                out.append(f"  expect[{outcome.index}]: {outcome.message}")
                if outcome.nearest:
                    out.append("    nearest actual actions:")
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
                    "expectations": [
                        {"index": o.index, "passed": o.passed, "message": o.message, "nearest": o.nearest}
                        for o in r.outcomes
                    ],
                }
                for r in self.results
            ],
        }

    def junit(self) -> str:
        """The report as JUnit XML (one test case per expectation)."""
        cases: list[str] = []
        for result in self.results:
            suite = _quoteattr(result.path)
            if result.errors:
                message = _quoteattr(result.errors[0].splitlines()[0])
                cases.append(
                    f'<testcase classname={suite} name="load"><error message={message}>{_escape(chr(10).join(result.errors))}</error></testcase>'
                )
            for o in result.outcomes:
                name = _quoteattr(f"expect[{o.index}] {o.message}"[:200])
                body = (
                    ""
                    if o.passed
                    else f"<failure message={_quoteattr(o.message)}>{_escape(chr(10).join(o.nearest))}</failure>"
                )
                cases.append(f"<testcase classname={suite} name={name}>{body}</testcase>")
        total = sum(len(r.outcomes) for r in self.results) + self.errors
        return (
            '<?xml version="1.0" encoding="utf-8"?>\n'
            f'<testsuite name="sopdsl" tests="{total}" failures="{self.failures}" errors="{self.errors}">\n'
            + "\n".join(cases)
            + "\n</testsuite>\n"
        )


# Characters XML 1.0 cannot carry at all, not even escaped (most C0 controls, lone surrogates).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_safe(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _escape(text: str) -> str:
    """Text for an XML element body."""
    return saxutils.escape(_xml_safe(text))


def _quoteattr(text: str) -> str:
    """Text for a quoted XML attribute value."""
    return saxutils.quoteattr(_xml_safe(text))


def playbook_for(fixture: Fixture, path: Path) -> Path:
    """The playbook a fixture runs: its `playbook` field, or the `.sop` file sharing its stem."""
    if fixture.playbook:
        return path.parent / fixture.playbook
    return path.parent / (path.name.split(".")[0] + ".sop")


def run_tests(paths: list[Path]) -> Report:
    """Run every fixture and collect the report."""
    plans: dict[Path, Plan | list[str]] = {}
    results: list[FixtureResult] = []
    for path in paths:
        shown = display_path(path)
        result = FixtureResult(shown)
        results.append(result)
        try:
            fixture, _ = load_fixture(path, shown)
        except FixtureError as exc:
            try:
                source: Source | None = Source(shown, path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError):
                source = None
            result.errors = [render(d, source) for d in exc.diagnostics]
            continue
        playbook = playbook_for(fixture, path)
        if not playbook.exists():
            missing = Diagnostic(
                "SOP603",
                Severity.ERROR,
                f"playbook '{display_path(playbook)}' does not exist",
                Span.point(shown),
                "name it with `playbook: FILE.sop` in the fixture",
            )
            result.errors = [render(missing, None)]
            continue
        plan = plans.get(playbook.resolve())
        if plan is None:
            loaded = load(playbook)
            checked = check_program(loaded)
            if checked.program is None:
                plan = [render(d, loaded.sources.get(d.span.path)) for d in checked.diagnostics if d.is_error]
            else:
                plan = compile_program(checked.program)
            plans[playbook.resolve()] = plan
        if isinstance(plan, list):
            result.errors = plan
            continue
        try:
            result.outcomes = simulate(plan, fixture).outcomes
        except Exception as exc:  # a fixture the engine rejects: report it, keep running the others
            result.errors = [f"{shown}: the simulation stopped: {exc}"]
    return Report(results)


def dumps(report: Report) -> str:
    """The JSON report as text."""
    return json.dumps(report.to_json(), ensure_ascii=False, indent=2)
