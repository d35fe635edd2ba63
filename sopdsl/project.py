"""The project file, `sopdsl.toml`: which playbook files are deployed together, and the time zone.

Input: a folder (the project file is looked for in it and its parents) or the file itself.
Output: a `Project` with the deployable set (the files its `deploy` globs match, less those its
`exclude` globs match), or a `ProjectError` whose diagnostics name the line of each problem.
`check`, `test`, `compile` and `plan` given a folder inside a project all read this one set.

    [deploy]
    files = ["playbooks/*.sop"]
    exclude = ["playbooks/*.v2.sop"]   # superseded versions: loaded only by fixtures' `reload`
    timezone = "Asia/Shanghai"         # every deployed playbook must say the same

    [figures]
    attribution = "last touch"         # or "first touch": which playbook a goal's conversion counts for
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sopdsl.diagnostics import Diagnostic, Severity, did_you_mean
from sopdsl.errors import DiagnosticError
from sopdsl.source import Source, Span
from sopdsl.textfiles import toml_error

FILE_NAME = "sopdsl.toml"
_KEYS = {"files", "exclude", "timezone"}
ATTRIBUTIONS = ("last touch", "first touch")  # the values of `lang.Attribution`


class ProjectError(DiagnosticError):
    """The project file cannot be read or says something wrong (SOP008)."""


@dataclass(frozen=True)
class Project:
    """A project: its folder, the deployable set (sorted) and the declared time zone."""

    path: Path  # the sopdsl.toml
    files: tuple[Path, ...]
    timezone: str | None
    source: Source
    attribution: str = ATTRIBUTIONS[0]  # [figures] attribution

    @property
    def root(self) -> Path:
        """The project's folder: globs are relative to it, and includes stay inside it."""
        return self.path.parent

    def line_of(self, key: str) -> int:
        """The line of a key of the `[deploy]` table (1 if not found), for diagnostics."""
        match = re.search(rf"^\s*{re.escape(key)}\s*=", self.source.text, re.MULTILINE)
        return self.source.position(match.start())[0] if match else 1

    def within(self, folders: list[Path]) -> list[Path]:
        """The deployable files inside any of the given folders."""
        chosen = [folder.resolve() for folder in folders]
        return [f for f in self.files if any(f.is_relative_to(folder) for folder in chosen)]


def find_project(start: Path) -> Path | None:
    """The project file for a folder: in it or the nearest of its parents that has one."""
    here = start.resolve()
    for folder in (here, *here.parents):
        candidate = folder / FILE_NAME
        if candidate.is_file():
            return candidate
    return None


def _at(source: Source, line: int, column: int) -> Span:
    """One character at a 1-based line and column, for the caret under a TOML syntax error."""
    start = source.line_start(line) + column - 1
    return source.span(start, min(start + 1, len(source.text)))


def load_project(path: Path, shown: str | None = None) -> Project:
    """Read a project file; raise `ProjectError` with every problem, each at its line."""
    shown = shown or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectError([_problem(f"cannot read the project file: {exc}", Span.point(shown))]) from None
    source = Source(shown, text)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line, column, message = toml_error(exc)
        where = Span.point(shown) if not line else _at(source, line, column)
        raise ProjectError([_problem(f"invalid TOML: {message}", where)]) from None
    found: list[Diagnostic] = []

    def at(key: str) -> Span:
        match = re.search(rf"^\s*\[?{re.escape(key)}\]?\s*=?", text, re.MULTILINE)
        return Span.point(shown, source.position(match.start())[0] if match else 1)

    found.extend(
        _problem(f"unknown table or key '{key}'", at(key), did_you_mean(key, ["deploy", "figures"]))
        for key in data
        if key not in ("deploy", "figures")
    )
    attribution = _attribution(data.get("figures", {}), found, at)
    deploy: Any = data.get("deploy", {})
    if not isinstance(deploy, dict):
        found.append(_problem("`deploy` is a table: [deploy] with files, exclude and timezone", at("deploy")))
        deploy = {}
    found.extend(
        _problem(f"unknown key '{key}' in [deploy]", at(key), did_you_mean(key, _KEYS))
        for key in deploy
        if key not in _KEYS
    )
    patterns = _globs(deploy, "files", found, at)
    excluded = _globs(deploy, "exclude", found, at)
    if "files" not in deploy:
        found.append(
            _problem(
                "[deploy] needs `files`: the playbook files deployed together",
                at("deploy"),
                'like files = ["playbooks/*.sop"]',
            )
        )
    zone = deploy.get("timezone")
    if zone is not None and not (isinstance(zone, str) and _known_zone(zone)):
        found.append(
            _problem(f"unknown time zone {zone!r}", at("timezone"), "use an IANA name like Asia/Shanghai")
        )
    root = path.parent.resolve()
    chosen = {p.resolve() for pattern in patterns for p in root.glob(pattern) if p.suffix == ".sop"}
    left_out = {p.resolve() for pattern in excluded for p in root.glob(pattern)}
    files = tuple(sorted(chosen - left_out))
    found.extend(
        _problem(f"`files` pattern {pattern!r} matches no .sop file", at("files"))
        for pattern in patterns
        if not any(p.suffix == ".sop" for p in root.glob(pattern))
    )
    if patterns and not files and not found:
        found.append(_problem("the deployable set is empty: `exclude` leaves out every file", at("exclude")))
    if found:
        raise ProjectError(found)
    return Project(path, files, zone, source, attribution)


def _attribution(table: Any, found: list[Diagnostic], at: Any) -> str:
    """The `[figures]` table's attribution rule (the default when the table or key is missing)."""
    if not isinstance(table, dict):
        found.append(_problem("`figures` is a table: [figures] with attribution", at("figures")))
        return ATTRIBUTIONS[0]
    found.extend(
        _problem(f"unknown key '{key}' in [figures]", at(key), did_you_mean(key, ["attribution"]))
        for key in table
        if key != "attribution"
    )
    value = table.get("attribution", ATTRIBUTIONS[0])
    if value not in ATTRIBUTIONS:
        found.append(
            _problem(
                f"unknown attribution rule {value!r}",
                at("attribution"),
                'write "last touch" (the playbook that reached the member last) or "first touch"',
            )
        )
        return ATTRIBUTIONS[0]
    return str(value)


def _globs(table: dict[str, Any], key: str, found: list[Diagnostic], at: Any) -> list[str]:
    value = table.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        found.append(_problem(f"`{key}` is a list of file patterns", at(key), 'like ["playbooks/*.sop"]'))
        return []
    bad = [v for v in value if Path(v).is_absolute() or ".." in Path(v).parts]
    found.extend(_problem(f"`{key}` pattern {v!r} must stay inside the project folder", at(key)) for v in bad)
    return [v for v in value if v not in bad]


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError):
        return False
    return True


def _problem(message: str, span: Span, hint: str | None = None) -> Diagnostic:
    return Diagnostic("SOP008", Severity.ERROR, message, span, hint)
