"""Files to syntax trees: reading playbook files and following their includes.

Input: paths given by the user. Output: `LoadedProgram` values (a root file, its includes,
their sources and any template files), plus diagnostics for unreadable or unparsable files.
The only module of the front end that touches the file system.

Includes and `template … = file` read only files inside the project folder: the folder of the
root file (of the folder given, for files found in a folder), or a root declared with `root=`.
A template's attachment files (`with image "a.png"`) must lie there too, and exist; they are not
read, only found, and recorded relative to the project folder for the plan.
Links are resolved before the check, and a file outside is never opened (SOP006). Text and paths
that are not valid Unicode (lone surrogates, as `surrogateescape` makes) are SOP007, never an
exception further down (serialising a plan, printing a diagnostic).
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sopdsl.diagnostics import Diagnostic, Severity
from sopdsl.enums import ATTACHMENT_FILE_MEDIA
from sopdsl.errors import ParseError
from sopdsl.gcpause import paused_gc
from sopdsl.source import Source, Span
from sopdsl.syntax import nodes
from sopdsl.syntax.parser import parse
from sopdsl.textfiles import BOM, MAX_FILE_BYTES, decode, too_large

if TYPE_CHECKING:
    from collections.abc import Iterable


# Lone surrogates: code points that are not characters and that UTF-8 cannot encode.
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATES = re.compile("[\ud800-\udfff]+")


@dataclass
class LoadedProgram:
    """A root playbook file with everything it includes, parsed."""

    root: str
    files: list[nodes.File] = field(default_factory=list)
    sources: dict[str, Source] = field(default_factory=dict)
    template_files: dict[str, str] = field(default_factory=dict)
    # `written@source path` of each attachment file -> its path relative to the project folder, or
    # None if it is not there (a diagnostic says why)
    attachment_files: dict[str, str | None] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    # Files whose tree leaves out the playbooks with a syntax error (the diagnostics say where),
    # read so that the rest is checked in the same run
    partial: set[str] = field(default_factory=set)
    # Where, by path, the playbooks are that were read without their broken lines (offsets): the
    # checker reports only misspelt names in them, since the line left out may explain the rest
    mended: dict[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)


def discover(paths: Iterable[str | Path]) -> list[Path]:
    """Expand folders into the `.sop` files below them, sorted; files are kept as given."""
    return [path for path, _ in discover_rooted(paths)]


def discover_rooted(paths: Iterable[str | Path]) -> list[tuple[Path, Path | None]]:
    """As `discover`, each file with its project folder: the folder given, for a file found in
    it; None (the file's own folder) for a file given by name."""
    found: list[tuple[Path, Path | None]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend((p, path) for p in sorted(p for p in path.rglob("*.sop") if p.is_file()))
        else:
            found.append((path, None))
    return found


def display_path(path: Path) -> str:
    """The path as shown in diagnostics: relative to the working folder when inside it.

    Always printable and serialisable: bytes of a file name that are not UTF-8 show as `\\xff`."""
    try:
        shown = str(_resolve(path).relative_to(_resolve(Path.cwd())))
    except ValueError:
        shown = str(path)
    return printable_name(shown)


def printable_name(name: str) -> str:
    """A file name as text that can be printed and serialised: the bytes that `surrogateescape`
    kept of a name that is not UTF-8 as `\\xff`, any other lone surrogate as `\\ud800`."""
    if not _SURROGATE.search(name):
        return name
    try:
        return os.fsencode(name).decode("utf-8", errors="backslashreplace")
    except UnicodeError:
        return name.encode("utf-8", errors="backslashreplace").decode("utf-8")


def _resolve(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL or a surrogate: as written
        return path.absolute()


def _display_source(path: str, data: bytes) -> Source:
    # Only for quoting the line of an encoding error; offsets match the Diagnostic's line/column.
    return Source(path, data.removeprefix(BOM).decode("utf-8", errors="replace"))


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
            return too_large(shown, path.stat().st_size)  # without reading it into memory
        return path.read_bytes()
    except FileNotFoundError:
        return unreadable(f"file '{shown}' does not exist", _missing_hint(path, written or path.name))
    except OSError as exc:
        return unreadable(f"cannot read '{shown}': {exc.strerror or type(exc).__name__}")
    except ValueError:  # a NUL in the name: no file system takes it
        return unreadable(f"'{shown}' is not a usable file name", _NAME_HINT)


_NAME_HINT = "a file name cannot hold control characters such as NUL"


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


def _not_unicode_name(shown: str, at: Span | None, what: str = "file") -> Diagnostic:
    """SOP007 for a path holding lone surrogates (as Python spells bytes of a name not in UTF-8)."""
    return Diagnostic(
        "SOP007",
        Severity.ERROR,
        f"the name of the {what} '{printable_name(shown)}' is not valid UTF-8 text",
        at or Span.point(printable_name(shown)),
        "rename it using UTF-8 characters only (names from an old Windows zip are often in GBK)",
    )


def read_source(path: Path, shown: str, at: Span | None = None) -> Source | Diagnostic:
    """Read one file as a `Source`, or a diagnostic (at `at`, if given) saying why not."""
    shown = printable_name(shown)
    if _SURROGATE.search(str(path)):
        return _not_unicode_name(shown, at)
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


def _valid_text(program: LoadedProgram, source: Source) -> Source:
    """The source with each lone surrogate replaced by U+FFFD (so that later stages can read,
    print and serialise it), and SOP007 for the first one on each line."""
    if not _SURROGATE.search(source.text):
        return source
    lines: set[int] = set()
    for found in _SURROGATES.finditer(source.text):
        span = source.span(found.start(), found.end())
        if span.line in lines:
            continue
        lines.add(span.line)
        program.diagnostics.append(
            Diagnostic(
                "SOP007",
                Severity.ERROR,
                f"U+{ord(found.group()[0]):04X} here is a lone surrogate, not a character",
                span,
                "text given to sopdsl must be valid Unicode; lone surrogates come from decoding bytes "
                "with errors='surrogateescape': decode the file as UTF-8 instead",
            )
        )
    return Source(source.path, _SURROGATES.sub(lambda m: "\ufffd" * len(m.group()), source.text))


def _project_folder(
    program: LoadedProgram, root: str | Path | None, default: Path, shown: str
) -> Path | None:
    """The real path of the project folder (`root`, or `default`: the root file's folder), or None
    after a diagnostic at the root file saying why it cannot be one."""
    folder = Path(root) if root is not None else default
    if _SURROGATE.search(str(folder)):
        program.diagnostics.append(_not_unicode_name(str(folder), Span.point(shown), "project folder"))
        return None
    try:
        real = Path(os.path.realpath(folder))
    except (OSError, ValueError):
        real = None
    if root is not None and (real is None or not real.is_dir()):
        program.diagnostics.append(
            Diagnostic(
                "SOP001",
                Severity.ERROR,
                f"the project folder '{display_path(folder)}' does not exist or is not a folder",
                Span.point(shown),
                "name the folder that holds the playbook files and what they include",
            )
        )
        return None
    return real or folder.absolute()


def _project_file(program: LoadedProgram, written: str, base: Path, root: Path, at: Span) -> Path | None:
    """The real path of a file that a playbook names (relative to `base`, the folder of the file
    naming it) if it lies inside the project folder `root`; otherwise None after a diagnostic.
    Nothing outside is opened, so no diagnostic can quote it."""
    if _SURROGATE.search(written):  # only if a caller skipped `_valid_text`
        program.diagnostics.append(_not_unicode_name(written, at))
        return None
    path = base / written
    try:
        real = Path(os.path.realpath(path))
    except (OSError, ValueError):  # a NUL in the name
        program.diagnostics.append(
            Diagnostic("SOP001", Severity.ERROR, f"'{written}' is not a usable file name", at, _NAME_HINT)
        )
        return None
    # `..` left after resolving means a link loop stopped it: not known to be inside.
    if ".." not in real.parts and real.is_relative_to(root):
        return real
    folder = display_path(root)
    message = f"'{written}' is outside the project folder '{str(root) if folder == '.' else folder}'"
    if real != Path(os.path.normpath(path.absolute())):
        message += f": a link leads to '{display_path(real)}'"
    program.diagnostics.append(
        Diagnostic(
            "SOP006",
            Severity.ERROR,
            message,
            at,
            "includes, `file` templates and attachments may name files only in the folder of the playbook given "
            "to sopdsl (or the folder given) and below it; move the file there, or name a folder "
            "that holds both with `--root DIR` (`root=` in the Python API)",
        )
    )
    return None


def load_text(text: str, path: str = "<string>", root: str | Path | None = None) -> LoadedProgram:
    """Load a program from text in memory.

    Includes and template files are resolved from the folder of `path` (the current folder for
    the default "<string>") and must lie inside `root`, by default that same folder."""
    shown = printable_name(path)
    program = LoadedProgram(root=shown)
    if shown != path:
        program.diagnostics.append(_not_unicode_name(path, None))
        return program
    folder = _project_folder(program, root, Path(path).parent, shown)
    if folder is not None:
        _load_source(program, _valid_text(program, Source(path, text)), Path(path), [], folder)
    return program


@paused_gc
def load(path: str | Path, root: str | Path | None = None) -> LoadedProgram:
    """Load a root playbook file and everything it includes.

    Includes and template files must lie inside `root`, by default the folder of `path` (links
    are resolved first); anything outside is a diagnostic (SOP006) and is never read."""
    file_path = Path(path)
    shown = display_path(file_path)
    program = LoadedProgram(root=shown)
    if _SURROGATE.search(str(file_path)):
        program.diagnostics.append(_not_unicode_name(shown, None))
        return program
    folder = _project_folder(program, root, file_path.parent, shown)
    if folder is None:
        return program
    source = _read_into(program, file_path, shown, None)
    if source is not None:
        _load_source(program, source, file_path, [], folder)
    return program


def _load_source(program: LoadedProgram, source: Source, path: Path, stack: list[Path], root: Path) -> None:
    program.sources[source.path] = source
    try:
        tree = parse(source)
    except ParseError as exc:
        program.diagnostics.extend(exc.diagnostics)
        if exc.partial is None:
            return
        tree = exc.partial
        program.partial.add(source.path)
        if exc.mended:
            program.mended[source.path] = exc.mended
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
            _include(program, decl, path, [*stack, here], root)
        elif isinstance(decl, nodes.TemplateDecl) and decl.from_file:
            target = _project_file(program, decl.body.value, path.parent, root, decl.body.span)
            if target is None:
                continue
            loaded = _read_into(program, target, display_path(target), decl.body.span, decl.body.value)
            if loaded is not None:
                program.template_files[decl.body.value + "@" + source.path] = loaded.text
        if isinstance(decl, nodes.TemplateDecl):
            for media in attachment_files(decl):
                _attachment(program, media, path.parent, root, source.path)


def attachment_files(decl: nodes.TemplateDecl) -> list[nodes.Media]:
    """The media of a template's attachments that name a file of the project (not a media id)."""
    found: list[nodes.Media] = []
    for extra in decl.extras:
        if not isinstance(extra, nodes.Attachment):
            continue
        which = ATTACHMENT_FILE_MEDIA.get(extra.kind.text)
        if which == "first":
            found.append(extra.first)
        elif which == "cover":
            found.extend(o.value for o in extra.options if isinstance(o.value, nodes.Media))
    return [media for media in found if not media.by_id]


def _attachment(program: LoadedProgram, media: nodes.Media, base: Path, root: Path, shown: str) -> None:
    """Find an attachment file inside the project folder, recording where; SOP001/SOP006 if not."""
    written = media.value.value
    key = written + "@" + shown
    program.attachment_files[key] = None
    target = _project_file(program, written, base, root, media.value.span)
    if target is None:
        return
    if target.is_file():
        program.attachment_files[key] = target.relative_to(root).as_posix()
        return
    if target.is_dir():
        message, hint = f"the attachment '{written}' is a folder, not a file", "name a file inside it"
    elif target.exists():
        message, hint = f"the attachment '{written}' is not a regular file", "name a file"
    else:
        message, hint = f"the attachment '{written}' does not exist", _missing_hint(base / written, written)
    program.diagnostics.append(Diagnostic("SOP001", Severity.ERROR, message, media.value.span, hint))


def _include(
    program: LoadedProgram, decl: nodes.IncludeDecl, path: Path, stack: list[Path], root: Path
) -> None:
    target = _project_file(program, decl.path.value, path.parent, root, decl.path.span)
    if target is None:
        return
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
        _load_source(program, source, target, stack, root)
