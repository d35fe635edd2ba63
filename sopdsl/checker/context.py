"""The state one checking run shares across passes: diagnostics and symbol tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sopdsl.diagnostics import Diagnostic, Severity, did_you_mean

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sopdsl.checker import model
    from sopdsl.source import Span
    from sopdsl.syntax.loader import LoadedProgram


@dataclass
class Symbol:
    """A declared name: where it was declared and what it became in the model."""

    span: Span
    value: Any


@dataclass
class Context:
    """Diagnostics collected so far and the names each declaration kind defines."""

    loaded: LoadedProgram
    diagnostics: list[Diagnostic] = field(default_factory=list)
    tables: dict[str, dict[str, Symbol]] = field(default_factory=dict)
    templates_by_name: dict[str, model.Template] = field(default_factory=dict)
    platform: model.Platform | None = None  # the `platform` declaration, once checked
    # Errors of a field no declaration has, whatever else the playbook says (see `unknown_field`).
    unknown_fields: set[Diagnostic] = field(default_factory=set)

    def error(self, code: str, message: str, span: Span, hint: str | None = None) -> None:
        """Record an error."""
        self.diagnostics.append(Diagnostic(code, Severity.ERROR, message, span, hint))

    def unknown_field(self, code: str, message: str, span: Span, hint: str | None = None) -> None:
        """Record an error of a member or group field, or a counter, that neither the language nor
        any declaration has: a misspelling whatever the playbook's trigger, so told even of a
        playbook read without a broken line (an event's field, which the trigger gives, is not)."""
        diagnostic = Diagnostic(code, Severity.ERROR, message, span, hint)
        self.diagnostics.append(diagnostic)
        self.unknown_fields.add(diagnostic)

    def warning(self, code: str, message: str, span: Span, hint: str | None = None) -> None:
        """Record a warning."""
        self.diagnostics.append(Diagnostic(code, Severity.WARNING, message, span, hint))

    def table(self, kind: str) -> dict[str, Symbol]:
        """The symbol table of one declaration kind ("template", "group", ...)."""
        return self.tables.setdefault(kind, {})

    def declare(self, kind: str, name: str, span: Span, value: Any) -> bool:
        """Add a name to a table; report a duplicate and return False if it is taken."""
        table = self.table(kind)
        if name in table:
            self.error(
                "SOP111",
                f"{kind} '{name}' is declared twice",
                span,
                f"the first declaration is at {where(table[name].span, span)}; rename one of them",
            )
            return False
        table[name] = Symbol(span, value)
        return True

    def lookup(self, kind: str, code: str, name: str, span: Span, extra: Iterable[str] = ()) -> Any:
        """The value of a declared name, or None after reporting it unknown with a suggestion."""
        table = self.table(kind)
        if name in table:
            return table[name].value
        candidates = [*table, *extra]
        hint = did_you_mean(name, candidates)
        if hint is None:
            hint = (
                f"declare it with `{kind} {name} ...`"
                if not candidates
                else ("known: " + ", ".join(sorted(candidates)[:8]))
            )
        self.error(code, f"unknown {kind} '{name}'", span, hint)
        return None


def where(span: Span, here: Span) -> str:
    """Where `span` is, said from `here`: "line 3" in the same file, else "path:line"."""
    return f"line {span.line}" if span.path == here.path else f"{span.path}:{span.line}"


def loc(span: Span) -> str:
    """A short "path:line" location for the model, used in explanations."""
    return f"{span.path}:{span.line}"


def first_set(first: Span, again: Span) -> str:
    """Where a setting given twice was first given: its line, and its file when that is another."""
    if first.path == again.path:
        return f"first set at line {first.line}"
    return f"first set in {first.path} at line {first.line}"
