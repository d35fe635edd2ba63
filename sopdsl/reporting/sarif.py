"""Diagnostics → SARIF 2.1.0, the format GitHub code scanning (and other viewers) upload.

Input: diagnostics with their sources, the folder paths are made relative to. Output: one SARIF
log (a JSON-ready dict): a rule per diagnostic code, its help the text `sopdsl explain` prints,
and a result per diagnostic with its physical location.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from sopdsl import __version__
from sopdsl.diagnostics import CODES, Code, Diagnostic, Severity

SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
VERSION = "2.1.0"
# Where the relative URIs of results start: the folder `check` ran in (the repository's root in
# CI). A viewer that has the checkout maps it there; `originalUriBaseIds` says where it was.
SRCROOT = "%SRCROOT%"

_LEVELS: Mapping[Severity, str] = {Severity.ERROR: "error", Severity.WARNING: "warning"}


def to_sarif(diagnostics: Sequence[Diagnostic], base: Path) -> dict[str, Any]:
    """A SARIF log of one run of `sopdsl check`: every diagnostic code's rule, and a result per
    diagnostic, located relative to `base` (the working folder) where it lies inside it."""
    codes = sorted(CODES)
    index = {code: i for i, code in enumerate(codes)}
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "sopdsl",
                "version": __version__,
                "semanticVersion": __version__,
                "rules": [_rule(CODES[code]) for code in codes],
            }
        },
        "originalUriBaseIds": {SRCROOT: {"uri": base.resolve().as_uri() + "/"}},
        # Spans count characters (code points), not the UTF-16 units SARIF assumes by default.
        "columnKind": "unicodeCodePoints",
        "results": [_result(d, index.get(d.code), base) for d in diagnostics],
    }
    return {"$schema": SCHEMA, "version": VERSION, "runs": [run]}


def _rule(code: Code) -> dict[str, Any]:
    explained = f"{code.code}: {code.title}\n\n{code.explanation}"
    return {
        "id": code.code,
        "name": _rule_name(code.title),
        "shortDescription": {"text": code.title},
        "fullDescription": {"text": code.explanation},
        "help": {"text": explained, "markdown": f"**{code.code}: {code.title}**\n\n{code.explanation}"},
    }


def _rule_name(title: str) -> str:
    """A rule's name as SARIF suggests (an identifier-like `UnknownTemplate`) from its title."""
    return "".join(word[:1].upper() + word[1:] for word in re.findall(r"[A-Za-z0-9]+", title)) or "Rule"


def _result(d: Diagnostic, rule: int | None, base: Path) -> dict[str, Any]:
    text = d.message + (f"\nhint: {d.hint}" if d.hint else "")
    result: dict[str, Any] = {
        "ruleId": d.code,
        "level": _LEVELS[d.severity],
        "message": {"text": text},
        "locations": [{"physicalLocation": _physical(d, base)}],
    }
    if rule is not None:
        result["ruleIndex"] = rule
    return result


def _physical(d: Diagnostic, base: Path) -> dict[str, Any]:
    span = d.span
    line, column = max(span.line, 1), max(span.column, 1)
    region: dict[str, Any] = {"startLine": line, "startColumn": column}
    if (span.end_line, span.end_column) > (line, column):
        region["endLine"] = span.end_line
        region["endColumn"] = span.end_column
    return {"artifactLocation": artifact(span.path, base), "region": region}


def artifact(path: str, base: Path) -> dict[str, Any]:
    """Where a file is, as SARIF names it: a URI relative to `base` (`%SRCROOT%`) when the file
    is inside it, an absolute `file:` URI otherwise."""
    relative = relative_path(path, base)
    if relative is not None:
        return {"uri": quote(relative), "uriBaseId": SRCROOT}
    return {"uri": Path(path).resolve().as_uri()}


def relative_path(path: str, base: Path) -> str | None:
    """`path` relative to `base` with forward slashes, or None when it lies outside `base`."""
    try:
        relative = Path(path).resolve().relative_to(base.resolve())
    except ValueError:
        return None
    return str(PurePosixPath(*relative.parts))
