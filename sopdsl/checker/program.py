"""Syntax trees to the checked model: name resolution, value validation and flow checks.

Input: a `LoadedProgram` (parsed root file and includes). Output: a `model.Program`, or a
`CheckError` carrying every diagnostic found; warnings travel with a successful result.
"""

from __future__ import annotations

from dataclasses import dataclass

from sopdsl.checker import model, platform
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
    platform.over_app_bytes(ctx, decls)
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
    read = len(loaded.diagnostics)  # the loader's, first: every one of them is told
    found = [
        *ctx.diagnostics[:read],
        *(d for d in ctx.diagnostics[read:] if d in ctx.unknown_fields or not _mended_away(loaded, d)),
    ]
    ordered = tuple(sorted(found, key=lambda d: (d.span.path, d.span.line, d.span.column, d.code)))
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


# What is still told of a playbook read without a broken line (`LoadedProgram.mended`): a name it
# misspells, which no line left out can explain (and a field no declaration has, `unknown_field`;
# SOP108 is also an event's missing field, which the trigger on a broken line may have given). Anything of its flow (a grant, a trigger, a guard,
# an arm on that line) may be the missing line's doing, and waits until the line parses.
_TOLD_OF_MENDED = frozenset(
    {
        "SOP104",  # unknown template
        "SOP105",  # unknown calendar
        "SOP106",  # unknown group
        "SOP107",  # unknown coupon
        "SOP109",  # unknown event
        "SOP110",  # unknown action
        "SOP112",  # unknown word: a unit, a period, an option
        "SOP118",  # unknown holiday list
        "SOP301",  # invalid time
        "SOP302",  # invalid date
        "SOP303",  # unknown time zone
        "SOP304",  # invalid cron string
        "SOP305",  # invalid duration
        "SOP405",  # invalid pattern
    }
)


def _mended_away(loaded: LoadedProgram, diagnostic: Diagnostic) -> bool:
    """Whether the checker's diagnostic lies in a playbook read without a broken line, and may
    come of that line's being left out."""
    if diagnostic.code in _TOLD_OF_MENDED:
        return False
    regions = loaded.mended.get(diagnostic.span.path, ())
    return any(start <= diagnostic.span.start < end for start, end in regions)


def check(loaded: LoadedProgram) -> model.Program:
    """Check a loaded program; raise `CheckError` with every diagnostic if any is an error."""
    result = check_program(loaded)
    if result.program is None:
        raise CheckError(result.diagnostics)
    return result.program
