"""Syntax trees to the checked model: name resolution, value validation and flow checks.

Input: a `LoadedProgram` (parsed root file and includes). Output: a `model.Program`, or a
`CheckError` carrying every diagnostic found; warnings travel with a successful result.
"""

from __future__ import annotations

from dataclasses import dataclass

from sopdsl.checker import model
from sopdsl.checker.context import Context
from sopdsl.checker.declarations import collect
from sopdsl.checker.playbooks import check_playbook
from sopdsl.diagnostics import Diagnostic
from sopdsl.errors import CheckError
from sopdsl.gcpause import paused_gc
from sopdsl.source import Span
from sopdsl.syntax import nodes
from sopdsl.syntax.loader import LoadedProgram

__all__ = ["CheckResult", "check", "check_program"]


@dataclass(frozen=True)
class CheckResult:
    """The checked program (None if there were errors) and every diagnostic found."""

    program: model.Program | None
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        """Whether no diagnostic is an error."""
        return not any(d.is_error for d in self.diagnostics)


@paused_gc
def check_program(loaded: LoadedProgram) -> CheckResult:
    """Check a loaded program, collecting every diagnostic instead of stopping at the first."""
    ctx = Context(loaded)
    ctx.diagnostics.extend(loaded.diagnostics)
    zone, policy = collect(ctx, loaded.files)
    playbooks: list[model.Playbook] = []
    decls = [d for f in loaded.files for d in f.declarations if isinstance(d, nodes.PlaybookDecl)]
    for decl in decls:
        if not ctx.declare("playbook", decl.name.text, decl.name.span, None):
            continue
        playbook = check_playbook(ctx, decl, policy)
        if playbook is not None:
            playbooks.append(playbook)
    needs_zone = bool(decls) or bool(ctx.table("calendar"))
    # A zone that was declared but is invalid has its own diagnostic (SOP303).
    declared = any(isinstance(d, nodes.TimezoneDecl) for f in loaded.files for d in f.declarations)
    unreadable = any(d.is_error for d in loaded.diagnostics)  # the zone may be in a file not read
    if zone is None and needs_zone and loaded.files and not declared and not unreadable:
        ctx.error(
            "SOP307",
            "no time zone is declared",
            Span.point(loaded.files[0].path),
            'add `timezone "Asia/Shanghai"` at the top of the file (or of a file it includes)',
        )
    ordered = tuple(sorted(ctx.diagnostics, key=lambda d: (d.span.path, d.span.line, d.span.column, d.code)))
    if any(d.is_error for d in ordered):
        return CheckResult(None, ordered)
    program = model.Program(
        timezone=zone or "UTC",
        attributes={k: s.value for k, s in ctx.table("attribute").items()},
        counters={k: s.value for k, s in ctx.table("counter").items()},
        events={k: s.value for k, s in ctx.table("event").items()},
        actions={k: s.value for k, s in ctx.table("action").items()},
        coupons={k: s.value for k, s in ctx.table("coupon").items()},
        groups={k: s.value for k, s in ctx.table("group").items()},
        calendars={k: s.value for k, s in ctx.table("calendar").items()},
        templates={k: s.value for k, s in ctx.table("template").items()},
        policy=policy,
        platform=ctx.platform,
        playbooks=tuple(playbooks),
        files=tuple(f.path for f in loaded.files),
    )
    return CheckResult(program, ordered)


def check(loaded: LoadedProgram) -> model.Program:
    """Check a loaded program; raise `CheckError` with every diagnostic if any is an error."""
    result = check_program(loaded)
    if result.program is None:
        raise CheckError(result.diagnostics)
    return result.program
