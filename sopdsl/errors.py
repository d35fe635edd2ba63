"""The exception hierarchy: one root, one subclass per phase.

A user's mistake never surfaces as one of these with a traceback: phases collect
`Diagnostic` values and raise once, carrying all of them, and the CLI renders them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sopdsl.diagnostics import Diagnostic
    from sopdsl.syntax.nodes import File


class SopdslError(Exception):
    """Root of every error sopdsl raises on purpose."""


class DiagnosticError(SopdslError):
    """A phase found mistakes in the user's input; `diagnostics` holds every one of them."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        first = self.diagnostics[0].message if self.diagnostics else "no diagnostics"
        super().__init__(f"{len(self.diagnostics)} problem(s); first: {first}")


class ParseError(DiagnosticError):
    """The text is not a well-formed playbook file.

    `partial`: when every syntax error is inside a playbook, the file to check the rest by, in
    the same run: a playbook with a broken line that opens or closes no block is kept without
    that line (`mended`: where each such playbook starts and ends, as offsets), any other broken
    playbook is left out; else None. A line indented with a space that is not an ordinary one
    breaks nothing there: it is read with ordinary spaces in its place."""

    def __init__(
        self,
        diagnostics: Sequence[Diagnostic],
        partial: File | None = None,
        mended: tuple[tuple[int, int], ...] = (),
    ) -> None:
        super().__init__(diagnostics)
        self.partial = partial
        self.mended = mended


class CheckError(DiagnosticError):
    """The playbooks parse but are not meaningful (unknown names, bad times, ...)."""


class PlanError(SopdslError):
    """A compiled plan could not be loaded (bad format, version or content hash)."""


class FixtureError(DiagnosticError):
    """A fixture timeline is malformed."""


class EngineError(SopdslError):
    """The engine was used wrongly or fed an event it cannot handle."""


class UnknownMemberError(EngineError, LookupError):
    """An event names a member the engine does not know and the event cannot introduce."""


class StoreError(SopdslError):
    """A state store cannot be opened or is at the wrong schema version."""
