"""A test report (`sopdsl.dryrun.testing.Report`) → JUnit XML, as CI systems keep test history.

One test case per expectation, named `expect[N] <what it asks>` after the expectation itself, so
a case keeps its name whether it passes, fails or cannot run (a history is kept by name); its
class name is the fixture's path. A fixture that cannot even be read is one `load` case.
"""

from __future__ import annotations

import re
from xml.sax import saxutils

from sopdsl.dryrun.testing import Report

# A name longer than this is cut: CI systems show names in one line and some limit them.
_NAME_LIMIT = 200


def to_junit(report: Report) -> str:
    """The report as a JUnit XML document with one `testsuite` (`sopdsl`)."""
    cases: list[str] = []
    failures = errors = 0
    for result in report.results:
        suite = _quoteattr(result.path)
        if result.errors:
            message = _quoteattr(result.errors[0].splitlines()[0])
            body = f"<error message={message}>{_escape(chr(10).join(result.errors))}</error>"
            names = [case_name(i, title) for i, title in enumerate(result.expectations)] or ["load"]
            cases.extend(
                f"<testcase classname={suite} name={_quoteattr(name)}>{body}</testcase>" for name in names
            )
            errors += len(names)
            continue
        for o in result.outcomes:
            body = ""
            if not o.passed:
                failures += 1
                body = (
                    f"<failure message={_quoteattr(o.message)}>{_escape(chr(10).join(o.nearest))}</failure>"
                )
            name = _quoteattr(case_name(o.index, result.expectations[o.index]))
            cases.append(f"<testcase classname={suite} name={name}>{body}</testcase>")
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<testsuite name="sopdsl" tests="{len(cases)}" failures="{failures}" errors="{errors}">\n'
        + "\n".join(cases)
        + "\n</testsuite>\n"
    )


def case_name(index: int, title: str) -> str:
    """A test case's name: the expectation's place in the fixture and what it asks."""
    return f"expect[{index}] {title}"[:_NAME_LIMIT]


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
