"""Text files as the user saved them: bytes to text, or a diagnostic saying why they are not
UTF-8 text (saved as UTF-16 or GBK, holding NUL bytes, too large), located at the first bad byte
with how to save the file again. Used for playbooks (`syntax.loader`) and fixtures (`dryrun`).
Also where a TOML file's syntax error is, for the project file and the executors file."""

from __future__ import annotations

import re
import tomllib

from sopdsl.diagnostics import Diagnostic, Severity
from sopdsl.source import Source, Span

# Larger files are surely a mistake (a log passed by accident); a limit keeps CI responsive.
MAX_FILE_BYTES = 16 * 1024 * 1024

BOM = b"\xef\xbb\xbf"


def decode(path: str, data: bytes) -> Source | Diagnostic:
    """Decode file bytes as UTF-8 text, or explain why they are not a playbook."""
    if len(data) > MAX_FILE_BYTES:
        return too_large(path, len(data))
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
    data = data.removeprefix(BOM)
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


def too_large(path: str, size: int) -> Diagnostic:
    """SOP004: a file over MAX_FILE_BYTES, which is surely not a playbook."""
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


_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)")


def toml_error(exc: tomllib.TOMLDecodeError) -> tuple[int, int, str]:
    """A TOML syntax error's 1-based line and column, and its message without them (0, 0 if unknown)."""
    # Python 3.14 gives .lineno/.colno; before, only the message says where ("(at line L, column C)").
    found = _TOML_AT.search(str(exc))
    line = getattr(exc, "lineno", None) or (int(found.group(1)) if found else 0)
    column = getattr(exc, "colno", None) or (int(found.group(2)) if found else 0)
    message = getattr(exc, "msg", None) or _TOML_AT.sub("", str(exc))
    return line, column, str(message)
