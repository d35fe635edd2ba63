"""The language server: LSP messages in, the front end's findings out.

Input: a client's messages over a pygls connection. Output: diagnostics published as a document
is opened, edited and saved; completions of declared names, tags and keywords; the formatter's
edit; hover text and definitions of declared names. Each document is analysed as its own root
file, with its includes read from disk inside the project folder (`project_folder`). A document
that does not parse still gets its diagnostics; completion, hover and definition then use the
names of the last version that parsed, whole or but for its broken playbooks.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from sopdsl import __version__
from sopdsl.errors import ParseError
from sopdsl.kinds import GROUP_FIELDS, MEMBER_FIELDS
from sopdsl.lsp.analysis import Analysis, analyse
from sopdsl.lsp.context import in_text, keywords, wanted
from sopdsl.lsp.documents import LineFeedWorkspace, lines_of
from sopdsl.lsp.next_words import next_words
from sopdsl.lsp.positions import column_of, end_of, span_range
from sopdsl.lsp.reporting import lsp_diagnostics, uri_of
from sopdsl.lsp.symbols import Definition, Symbols
from sopdsl.source import Source
from sopdsl.syntax.formatter import format_source
from sopdsl.vocabulary import COUPON_FIELDS

logger = logging.getLogger(__name__)

# Kinds of name that completion, hover and definition look up, by the `Wanted` kind.
_NAMED = ("template", "calendar", "coupon", "group", "event", "action")
_ITEM_KINDS = {
    "template": lsp.CompletionItemKind.Text,
    "calendar": lsp.CompletionItemKind.Event,
    "coupon": lsp.CompletionItemKind.Value,
    "group": lsp.CompletionItemKind.Module,
    "event": lsp.CompletionItemKind.Event,
    "action": lsp.CompletionItemKind.Function,
}
_HOVER_LINES = 30


class SopdslServer(LanguageServer):
    """The server and what it knows of each open document."""

    def __init__(self, root: Path | None = None, delay: float = 0.2) -> None:
        super().__init__("sopdsl", __version__)
        self.root = root  # `--root`: the project folder of every document
        self.delay = delay  # seconds of quiet after an edit before the document is analysed again
        self.analyses: dict[str, Analysis] = {}
        self.last_parsed: dict[str, Symbols] = {}
        self.pending: dict[str, asyncio.Task[None]] = {}  # analyses waiting for typing to pause

    def units(self, text: str) -> int:
        """The length of `text` in the position units agreed with the client."""
        return int(self.workspace.position_codec.client_num_units(text))

    def project_folder(self, path: Path) -> Path | None:
        """`--root`, else the innermost workspace folder holding `path`, else None (its own folder)."""
        if self.root is not None:
            return self.root
        folders = [to_fs_path(f.uri) for f in self.workspace.folders.values()]
        folders.append(self.workspace.root_path)
        inside = [Path(f) for f in folders if f and path.is_relative_to(f)]
        return max(inside, key=lambda f: len(f.parts)) if inside else None

    def refresh(self, uri: str) -> None:
        """Analyse a document's current text and publish its diagnostics."""
        document = self.workspace.get_text_document(uri)
        fs_path = to_fs_path(uri) if uri.startswith("file:") else None
        path = str(Path(fs_path).absolute()) if fs_path else uri
        try:
            analysis = analyse(document.source, path, self.project_folder(Path(path)) if fs_path else None)
        except Exception as exc:
            # A bug of sopdsl, not of the playbook: say so in the document, keep serving.
            logger.exception("analysing %s failed", uri)
            self.publish(uri, [_internal_error(exc)], document.version)
            return
        self.analyses[uri] = analysis
        if analysis.parsed:
            self.last_parsed[uri] = analysis.symbols
        elif analysis.file is not None:
            # Parsed but for its broken playbooks (`ParseError.partial`): every other declaration
            # is in the tree, so its names are today's (a template declared meanwhile, one
            # renamed); the tags the broken playbooks wrote are those of the version before.
            self.last_parsed[uri] = analysis.symbols.with_tags_of(self.last_parsed.get(uri))
        self.publish(uri, lsp_diagnostics(analysis, self.units), document.version)

    def refresh_later(self, uri: str) -> None:
        """Analyse a document once edits have paused for `delay` seconds."""
        pending = self.pending.pop(uri, None)
        if pending is not None:
            pending.cancel()

        async def later() -> None:
            await asyncio.sleep(self.delay)
            self.pending.pop(uri, None)
            if uri in self.workspace.text_documents:
                self.refresh(uri)

        self.pending[uri] = asyncio.get_running_loop().create_task(later())

    def publish(self, uri: str, diagnostics: list[lsp.Diagnostic], version: int | None = None) -> None:
        """Send a document's diagnostics."""
        self.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=version)
        )

    def symbols(self, uri: str) -> Symbols:
        """The names to offer in a document: its own, or those of its last version that parsed
        (whole, or but for its broken playbooks)."""
        analysis = self.analyses.get(uri)
        if analysis is not None and analysis.parsed:
            return analysis.symbols
        return self.last_parsed.get(uri) or (analysis.symbols if analysis else Symbols())

    def text_of(self, uri: str) -> str | None:
        """A document's text: as the client has it open, else as on disk; None if it cannot be read."""
        try:
            return self.workspace.get_text_document(uri).source
        except (OSError, UnicodeDecodeError):
            # A request for a document never opened, since deleted (or not text): answered as
            # about an empty one, not with an internal error the editor shows the user.
            return None

    def line_at(self, uri: str, position: lsp.Position) -> tuple[str, int, str]:
        """The text of the position's line, the position's character index in it, and the
        document's text before the line."""
        lines = lines_of(self.text_of(uri) or "")
        text = lines[position.line].rstrip("\r\n") if position.line < len(lines) else ""
        return text, column_of(text, position.character, self.units), "".join(lines[: position.line])

    def definition_at(self, uri: str, position: lsp.Position) -> tuple[Definition, lsp.Range] | None:
        """The declared name under the cursor, and the range of the word."""
        text, column, above = self.line_at(uri, position)
        start, end = column, column
        while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
            start -= 1
        while end < len(text) and (text[end].isalnum() or text[end] == "_"):
            end += 1
        word = text[start:end]
        if not word or word[0].isdigit() or in_text(above + text[:start]):
            return None
        want = wanted(text[:start])
        kinds = [want.kind] if want is not None and want.kind in _NAMED else None
        found = self.symbols(uri).find(word, kinds)
        if found is None:
            return None
        word_range = lsp.Range(
            start=lsp.Position(line=position.line, character=self.units(text[:start])),
            end=lsp.Position(line=position.line, character=self.units(text[:end])),
        )
        return found, word_range


def _internal_error(exc: Exception) -> lsp.Diagnostic:
    return lsp.Diagnostic(
        range=lsp.Range(start=lsp.Position(line=0, character=0), end=lsp.Position(line=0, character=0)),
        message=f"sopdsl could not check this file: internal error {exc!r} (a bug in sopdsl, please report it)",
        severity=lsp.DiagnosticSeverity.Error,
        source="sopdsl",
    )


def build_server(root: Path | None = None, delay: float = 0.2) -> SopdslServer:
    """A language server for playbook files, its handlers registered; `root` as `--root`."""
    server = SopdslServer(root, delay)

    @server.feature(lsp.INITIALIZED)
    def initialized(params: lsp.InitializedParams) -> None:
        # pygls made its workspace on `initialize`, before any document: from now on its
        # documents split lines as the front end does (see `documents`).
        server.workspace.__class__ = LineFeedWorkspace

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(params: lsp.DidOpenTextDocumentParams) -> None:
        server.refresh(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(params: lsp.DidChangeTextDocumentParams) -> None:
        server.refresh_later(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    def did_save(params: lsp.DidSaveTextDocumentParams) -> None:
        # The saved file may be included by other open documents: check them all again.
        for uri in list(server.analyses):
            if uri in server.workspace.text_documents:
                server.refresh(uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(params: lsp.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        pending = server.pending.pop(uri, None)
        if pending is not None:
            pending.cancel()
        server.analyses.pop(uri, None)
        server.last_parsed.pop(uri, None)
        server.publish(uri, [])

    # `"` opens a tag, `.` a field (`member.`): the editor asks on them without a word typed yet.
    @server.feature(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=['"', "."]))
    def completion(params: lsp.CompletionParams) -> lsp.CompletionList:
        # Asked on a `.` that opens no field (`3.`, `1.5`), the editor shows no list unasked.
        after_dot = params.context is not None and params.context.trigger_character == "."
        return _completions(server, params.text_document.uri, params.position, fields_only=after_dot)

    @server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
    def formatting(params: lsp.DocumentFormattingParams) -> list[lsp.TextEdit] | None:
        document = server.workspace.get_text_document(params.text_document.uri)
        current = server.text_of(params.text_document.uri)
        if current is None:
            return None
        source = Source(document.path or document.uri, current)
        # The formatter writes LF but keeps a text block's own endings: format the LF text and
        # give the file back its CRLF, so one file does not end up with both.
        crlf = "\r\n" in current
        try:
            text = format_source(Source(source.path, current.replace("\r\n", "\n")) if crlf else source)
        except ParseError:
            return None  # the diagnostics already say where; nothing to format until it parses
        if crlf:
            text = text.replace("\n", "\r\n")
        if text == current:
            return []
        whole = lsp.Range(start=lsp.Position(line=0, character=0), end=end_of(source, server.units))
        return [lsp.TextEdit(range=whole, new_text=text)]

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def hover(params: lsp.HoverParams) -> lsp.Hover | None:
        found = server.definition_at(params.text_document.uri, params.position)
        if found is None:
            return None
        definition, word = found
        text = _hover_text(definition, server.symbols(params.text_document.uri))
        return lsp.Hover(contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=text), range=word)

    @server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    def definition(params: lsp.DefinitionParams) -> lsp.Location | None:
        found = server.definition_at(params.text_document.uri, params.position)
        if found is None:
            return None
        target = found[0].span
        source = server.symbols(params.text_document.uri).sources.get(target.path) or Source(target.path, "")
        return lsp.Location(uri=uri_of(target.path), range=span_range(source, target, server.units))

    return server


def _completions(
    server: SopdslServer, uri: str, position: lsp.Position, fields_only: bool = False
) -> lsp.CompletionList:
    text, column, above = server.line_at(uri, position)
    want = wanted(above + text[:column])
    if want is None or (fields_only and not want.kind.endswith(" field")):
        return lsp.CompletionList(is_incomplete=False, items=[])
    typed = lsp.Range(
        start=lsp.Position(line=position.line, character=server.units(text[: want.start])), end=position
    )
    symbols = server.symbols(uri)

    def item(
        label: str, kind: lsp.CompletionItemKind, detail: str | None = None, doc: str | None = None
    ) -> lsp.CompletionItem:
        return lsp.CompletionItem(
            label=label,
            kind=kind,
            detail=detail,
            documentation=doc,
            text_edit=lsp.TextEdit(range=typed, new_text=label),
        )

    if want.kind == "member field":
        declared = {**symbols.of_kind("attribute"), **symbols.of_kind("counter")}
        items = [item(name, lsp.CompletionItemKind.Field, "built-in") for name in MEMBER_FIELDS]
        items += [
            item(name, lsp.CompletionItemKind.Field, _detail(d)) for name, d in sorted(declared.items())
        ]
    elif want.kind == "group field":
        items = [item(name, lsp.CompletionItemKind.Field, "built-in") for name in GROUP_FIELDS]
    elif want.kind == "coupon field":
        items = [item(name, lsp.CompletionItemKind.Field, "built-in") for name in COUPON_FIELDS]
    elif want.kind == "tag":
        items = [item(tag, lsp.CompletionItemKind.EnumMember, "tag") for tag in sorted(symbols.tags)]
    elif want.kind == "keyword":
        # The words the parser can take here; every word where the text before does not parse.
        offered = next_words(above + text[: want.start])
        if offered is None:
            offered = keywords()
        items = [item(word, lsp.CompletionItemKind.Keyword) for word in offered]
    else:
        items = [
            item(name, _ITEM_KINDS[want.kind], _detail(d), d.text)
            for name, d in sorted(symbols.of_kind(want.kind).items())
        ]
    return lsp.CompletionList(is_incomplete=False, items=items)


def _detail(definition: Definition) -> str:
    return f"{definition.kind} {definition.title}" if definition.title else definition.kind


def _hover_text(definition: Definition, symbols: Symbols) -> str:
    """A template's text, or the declaration as written, under a heading naming it."""
    head = f"**{definition.kind} {definition.name}**" + (f" — {definition.title}" if definition.title else "")
    if definition.text is not None:
        body = definition.text
    else:
        source = symbols.sources.get(definition.declaration.path)
        body = source.text[definition.declaration.start : definition.declaration.end] if source else ""
    lines = body.splitlines()
    if len(lines) > _HOVER_LINES:
        lines = [*lines[:_HOVER_LINES], "…"]
    fence = "````" if "```" in body else "```"
    return f"{head}\n\n{fence}\n" + "\n".join(lines) + f"\n{fence}"
