"""Files to syntax trees: reading playbook files and following their includes.

Input: paths given by the user. Output: `LoadedProgram` values (a root file, its includes,
their sources and any template files), plus diagnostics for unreadable or unparsable files.
The only module of the front end that touches the file system.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sopdsl import nodes
from sopdsl.diagnostics import Diagnostic, Severity
from sopdsl.errors import ParseError
from sopdsl.gcpause import paused_gc
from sopdsl.parser import parse
from sopdsl.source import Source, Span

if TYPE_CHECKING:
    from collections.abc import Iterable

# Larger files are surely a mistake (a log passed by accident); a limit keeps CI responsive.
MAX_FILE_BYTES = 16 * 1024 * 1024

_BOM = b"\xef\xbb\xbf"


@dataclass
class LoadedProgram:
    """A root playbook file with everything it includes, parsed."""

    root: str
    files: list[nodes.File] = field(default_factory=list)
    sources: dict[str, Source] = field(default_factory=dict)
    template_files: dict[str, str] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def discover(paths: Iterable[str | Path]) -> list[Path]:
    """Expand folders into the `.sop` files below them, sorted; files are kept as given."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*.sop") if p.is_file()))
        else:
            found.append(path)
    return found


def display_path(path: Path) -> str:
    """The path as shown in diagnostics: relative to the working folder when inside it."""
    try:
        return str(_resolve(path).relative_to(_resolve(Path.cwd())))
    except ValueError:
        return str(path)


def _resolve(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop: keep the path as written
        return path.absolute()


def decode(path: str, data: bytes) -> Source | Diagnostic:
    """Decode file bytes as UTF-8 text, or explain why they are not a playbook."""
    if len(data) > MAX_FILE_BYTES:
        return _too_large(path, len(data))
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return Diagnostic(
            "SOP002",
            Severity.ERROR,
            "the file is saved as UTF-16 ('Unicode'), not UTF-8",
            Span.point(path),
            "save it again as UTF-8 (in 'Save as', choose the encoding UTF-8)",
        )
    if b"\x00" in data:
        return Diagnostic(
            "SOP003",
            Severity.ERROR,
            "file contains NUL bytes: it is not text",
            Span.point(path),
            "a playbook is a text file ending in .sop; was another file passed by mistake?",
        )
    data = data.removeprefix(_BOM)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        # The bytes before the bad one decode cleanly; count characters, not bytes, for the column.
        column = len(data[line_start : exc.start].decode("utf-8")) + 1
        return Diagnostic(
            "SOP002",
            Severity.ERROR,
            f"the file is not saved as UTF-8: byte 0x{data[exc.start]:02x} is not UTF-8 text",
            Span(path, exc.start, exc.start + 1, line, column, line, column + 1),
            _encoding_hint(data),
        )
    return Source(path, text)


def _too_large(path: str, size: int) -> Diagnostic:
    return Diagnostic(
        "SOP004",
        Severity.ERROR,
        f"file is {size / (1024 * 1024):.1f} MiB; the limit is {MAX_FILE_BYTES // (1024 * 1024)} MiB",
        Span.point(path),
        "split it into several files joined with `include`",
    )


def _encoding_hint(data: bytes) -> str:
    try:
        data.decode("gb18030")
    except UnicodeDecodeError:
        return "save the file as UTF-8 (in the editor's 'Save as' dialog, choose the encoding UTF-8)"
    return (
        "the file seems to be saved as GBK (the old Chinese Windows default); "
        "save it again as UTF-8 (in 'Save as', choose the encoding UTF-8)"
    )


def _display_source(path: str, data: bytes) -> Source:
    # Only for quoting the line of an encoding error; offsets match the Diagnostic's line/column.
    return Source(path, data.removeprefix(_BOM).decode("utf-8", errors="replace"))


def _read_bytes(path: Path, shown: str, at: Span | None, written: str | None = None) -> bytes | Diagnostic:
    def unreadable(message: str, hint: str | None = None) -> Diagnostic:
        return Diagnostic("SOP001", Severity.ERROR, message, at or Span.point(shown), hint)

    try:
        if path.is_dir():
            return unreadable(f"'{shown}' is a folder, not a file", "name a .sop file inside it")
        if path.exists() and not path.is_file():
            # A device or a pipe (`/dev/zero`, `/dev/stdin`) could be endless or block forever.
            return unreadable(f"'{shown}' is not a regular file")
        if path.exists() and path.stat().st_size > MAX_FILE_BYTES:
            return _too_large(shown, path.stat().st_size)  # without reading it into memory
        return path.read_bytes()
    except FileNotFoundError:
        return unreadable(f"file '{shown}' does not exist", _missing_hint(path, written or path.name))
    except OSError as exc:
        return unreadable(f"cannot read '{shown}': {exc.strerror or type(exc).__name__}")


def _missing_hint(path: Path, written: str) -> str:
    try:
        names = [p.name for p in path.parent.iterdir()] if path.parent.is_dir() else []
    except OSError:
        names = []
    # A strict cutoff: `common.sop` must not suggest an unrelated `conf.sop`.
    match = difflib.get_close_matches(path.name, names, n=1, cutoff=0.8)
    if not match:
        return "paths are relative to the file that names them"
    folder, _, _ = written.replace("\\", "/").rpartition("/")
    return f"did you mean '{folder + '/' if folder else ''}{match[0]}'?"


def read_source(path: Path, shown: str, at: Span | None = None) -> Source | Diagnostic:
    """Read one file as a `Source`, or a diagnostic (at `at`, if given) saying why not."""
    data = _read_bytes(path, shown, at)
    return data if isinstance(data, Diagnostic) else decode(shown, data)


def _read_into(
    program: LoadedProgram, path: Path, shown: str, at: Span | None, written: str | None = None
) -> Source | None:
    """Read a file of the program; record why not (quoting the line of an encoding error)."""
    data = _read_bytes(path, shown, at, written)
    if isinstance(data, Diagnostic):
        program.diagnostics.append(data)
        return None
    source = decode(shown, data)
    if isinstance(source, Diagnostic):
        program.diagnostics.append(source)
        if source.code == "SOP002":
            program.sources.setdefault(shown, _display_source(shown, data))
        return None
    return source


def load_text(text: str, path: str = "<string>") -> LoadedProgram:
    """Load a program from text in memory (includes and template files are resolved from the cwd)."""
    program = LoadedProgram(root=path)
    _load_source(program, Source(path, text), Path(path), [])
    return program


@paused_gc
def load(path: str | Path) -> LoadedProgram:
    """Load a root playbook file and everything it includes."""
    file_path = Path(path)
    shown = display_path(file_path)
    program = LoadedProgram(root=shown)
    source = _read_into(program, file_path, shown, None)
    if source is not None:
        _load_source(program, source, file_path, [])
    return program


def _load_source(program: LoadedProgram, source: Source, path: Path, stack: list[Path]) -> None:
    program.sources[source.path] = source
    try:
        tree = parse(source)
    except ParseError as exc:
        program.diagnostics.extend(exc.diagnostics)
        return
    except RecursionError:
        # The parser bounds nesting itself; this is a last guard so that no input, however deeply
        # nested, ends in a traceback.
        program.diagnostics.append(
            Diagnostic(
                "SOP103",
                Severity.ERROR,
                "blocks or conditions in this file are nested too deeply to read",
                Span.point(source.path),
                "split the playbook into smaller ones",
            )
        )
        return
    program.files.append(tree)
    here = _resolve(path)
    for decl in tree.declarations:
        if isinstance(decl, nodes.IncludeDecl):
            _include(program, decl, path, [*stack, here])
        elif isinstance(decl, nodes.TemplateDecl) and decl.from_file:
            target = path.parent / decl.body.value
            loaded = _read_into(program, target, display_path(target), decl.body.span, decl.body.value)
            if loaded is not None:
                program.template_files[decl.body.value + "@" + source.path] = loaded.text


def _include(program: LoadedProgram, decl: nodes.IncludeDecl, path: Path, stack: list[Path]) -> None:
    target = _resolve(path.parent / decl.path.value)
    if target in stack:
        program.diagnostics.append(
            Diagnostic(
                "SOP005",
                Severity.ERROR,
                f"'{decl.path.value}' includes this file again",
                decl.path.span,
                "move the shared declarations into a third file that both include",
            )
        )
        return
    shown = display_path(target)
    if shown in program.sources:
        return  # diamond includes load once
    source = _read_into(program, target, shown, decl.path.span, decl.path.value)
    if source is not None:
        _load_source(program, source, target, stack)
