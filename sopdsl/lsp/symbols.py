"""The names a program declares, where, and the tags it uses: what completion, hover and
go-to-definition offer.

Input: a `LoadedProgram` (a document's syntax trees with those of its includes). Output:
`Symbols`, one `Definition` per declared name and kind (the first, when one is declared twice:
the checker reports the second), and every tag written anywhere.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sopdsl.syntax import nodes as n

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from sopdsl.source import Source, Span
    from sopdsl.syntax.loader import LoadedProgram

# The declarations that name something another place can refer to, by the word that declares them.
_KINDS: dict[type, str] = {
    n.TemplateDecl: "template",
    n.CalendarDecl: "calendar",
    n.HolidaysDecl: "holidays",
    n.CouponDecl: "coupon",
    n.GroupDecl: "group",
    n.EventDecl: "event",
    n.ActionDecl: "action",
    n.AttributeDecl: "attribute",
    n.CounterDecl: "counter",
    n.PlaybookDecl: "playbook",
}


@dataclass(frozen=True)
class Definition:
    """One declared name: its kind (the declaring word), where the name and the whole
    declaration are, its title and, for a template, its text."""

    kind: str
    name: str
    span: Span
    declaration: Span
    title: str | None
    text: str | None = None


@dataclass
class Symbols:
    """What a program declares, by kind and name, the tags it writes, and the sources they are in."""

    definitions: dict[str, dict[str, Definition]] = field(default_factory=dict)
    tags: set[str] = field(default_factory=set)
    sources: dict[str, Source] = field(default_factory=dict)

    def of_kind(self, kind: str) -> dict[str, Definition]:
        """The definitions of one kind by name (empty if none)."""
        return self.definitions.get(kind, {})

    def with_tags_of(self, earlier: Symbols | None) -> Symbols:
        """These names, with the tags of `earlier` too: those written in playbooks since left out."""
        if earlier is None:
            return self
        return dataclasses.replace(self, tags=self.tags | earlier.tags)

    def find(self, name: str, kinds: Iterable[str] | None = None) -> Definition | None:
        """The definition of `name` among `kinds` (in that order), or among every kind."""
        for kind in kinds if kinds is not None else self.definitions:
            found = self.of_kind(kind).get(name)
            if found is not None:
                return found
        return None


def collect(loaded: LoadedProgram) -> Symbols:
    """The names and tags of every file of a loaded program."""
    symbols = Symbols(sources=dict(loaded.sources))
    for file in loaded.files:
        for decl in file.declarations:
            if isinstance(decl, n.SymbolDecl | n.PlaybookDecl):
                text = _template_text(loaded, file, decl) if isinstance(decl, n.TemplateDecl) else None
                title = decl.title.value if decl.title is not None else None
                definition = Definition(
                    _KINDS[type(decl)], decl.name.text, decl.name.span, decl.span, title, text
                )
                symbols.definitions.setdefault(definition.kind, {}).setdefault(decl.name.text, definition)
        for node in _walk(file.declarations):
            symbols.tags.update(tag.value for tag in _tags(node))
    return symbols


def _template_text(loaded: LoadedProgram, file: n.File, decl: n.TemplateDecl) -> str | None:
    if not decl.from_file:
        return decl.body.value
    # The loader keys a `file` template's text by the name written and the file that wrote it.
    return loaded.template_files.get(decl.body.value + "@" + file.path)


def _walk(node: object) -> Iterator[object]:
    """A node and every node under it."""
    if isinstance(node, tuple):
        for item in node:
            yield from _walk(item)
    elif dataclasses.is_dataclass(node) and not isinstance(node, type):
        yield node
        for f in dataclasses.fields(node):
            if f.name != "span":
                yield from _walk(getattr(node, f.name))


def _tags(node: object) -> Iterator[n.Str]:
    """Every tag written in a node: the `tag`/`tags` fields (scopes, conditions, tag steps,
    templates, the policy, event patterns) and a group's `tagged` option."""
    values = getattr(node, "tag", None), *getattr(node, "tags", ())
    if isinstance(node, n.GroupOption) and node.kind is n.GroupOptionKind.TAGS:
        values = node.values
    return (v for v in values if isinstance(v, n.Str))
