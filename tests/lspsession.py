"""An LSP client connected in-process to `sopdsl lsp`'s server, for tests of the server.

The client (pygls's own `LanguageClient`) and the server exchange real LSP messages, with
their `Content-Length` headers, over two in-memory streams in one event loop: no process, no
thread. Every diagnostics notification is queued per document, and any error the server
reports out of band (`window/showMessage` of an exception) is kept, so a test can assert none.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from lsprotocol import types as lsp
from pygls.io_ import run_async
from pygls.lsp.client import LanguageClient

from sopdsl.lsp.server import SopdslServer, build_server

TIMEOUT = 20.0


class _Pipe:
    """The writing end of a stream: what one side writes, the other side's reader reads."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader

    def write(self, data: bytes) -> None:
        self.reader.feed_data(data)

    def close(self) -> None:
        self.reader.feed_eof()


@dataclass
class Session:
    """A connected client, the server it talks to, and what the server sent on its own."""

    client: LanguageClient
    server: SopdslServer
    published: defaultdict[str, asyncio.Queue[lsp.PublishDiagnosticsParams]]
    shown: list[str] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)

    def open(self, path: Path | str, text: str) -> str:
        """Open a document (`textDocument/didOpen`) with `text`: a file, or a URI (`untitled:…`)."""
        uri = path.as_uri() if isinstance(path, Path) else path
        self.versions[uri] = 1
        self.client.text_document_did_open(
            lsp.DidOpenTextDocumentParams(
                text_document=lsp.TextDocumentItem(uri=uri, language_id="sopdsl", version=1, text=text)
            )
        )
        return uri

    def change(self, uri: str, text: str) -> None:
        """Replace a document's whole text (`textDocument/didChange`)."""
        self.versions[uri] += 1
        self.client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=self.versions[uri]),
                content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )

    def edit(self, uri: str, at: lsp.Range, text: str) -> None:
        """Replace a range of a document (an incremental `textDocument/didChange`)."""
        self.versions[uri] += 1
        self.client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=self.versions[uri]),
                content_changes=[lsp.TextDocumentContentChangePartial(range=at, text=text)],
            )
        )

    async def diagnostics(self, uri: str) -> list[lsp.Diagnostic]:
        """The next diagnostics published for a document."""
        params = await asyncio.wait_for(self.published[uri].get(), TIMEOUT)
        return list(params.diagnostics)

    async def completion(self, uri: str, line: int, character: int) -> list[lsp.CompletionItem]:
        result = await self.client.text_document_completion_async(
            lsp.CompletionParams(
                text_document=lsp.TextDocumentIdentifier(uri=uri),
                position=lsp.Position(line=line, character=character),
            )
        )
        assert isinstance(result, lsp.CompletionList)
        return list(result.items)

    async def formatting(self, uri: str) -> list[lsp.TextEdit] | None:
        result = await self.client.text_document_formatting_async(
            lsp.DocumentFormattingParams(
                text_document=lsp.TextDocumentIdentifier(uri=uri),
                options=lsp.FormattingOptions(tab_size=4, insert_spaces=True),
            )
        )
        return None if result is None else list(result)

    async def hover(self, uri: str, line: int, character: int) -> lsp.Hover | None:
        return await self.client.text_document_hover_async(
            lsp.HoverParams(
                text_document=lsp.TextDocumentIdentifier(uri=uri),
                position=lsp.Position(line=line, character=character),
            )
        )

    async def definition(self, uri: str, line: int, character: int) -> lsp.Location | None:
        result = await self.client.text_document_definition_async(
            lsp.DefinitionParams(
                text_document=lsp.TextDocumentIdentifier(uri=uri),
                position=lsp.Position(line=line, character=character),
            )
        )
        assert result is None or isinstance(result, lsp.Location)
        return result


@asynccontextmanager
async def connected(
    folder: Path, *, encodings: list[str] | None = None, delay: float = 0.0
) -> AsyncIterator[Session]:
    """A session with a new server whose workspace is `folder`, initialised; shut down after.
    `encodings`: the position encodings the client offers (the server picks the first it knows);
    `delay`: the server's pause after an edit before it analyses (none, unless a test needs it)."""
    server = build_server(delay=delay)
    client = LanguageClient("sopdsl-tests", "1")
    to_server, to_client = asyncio.StreamReader(), asyncio.StreamReader()
    server.protocol.set_writer(_Pipe(to_client))
    client.protocol.set_writer(_Pipe(to_server))
    session = Session(client, server, defaultdict(asyncio.Queue))

    @client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)  # type: ignore[untyped-decorator]  # pygls's client leaves feature() unannotated
    def on_diagnostics(params: lsp.PublishDiagnosticsParams) -> None:
        session.published[params.uri].put_nowait(params)

    @client.feature(lsp.WINDOW_SHOW_MESSAGE)  # type: ignore[untyped-decorator]  # pygls's client leaves feature() unannotated
    def on_message(params: lsp.ShowMessageParams) -> None:
        session.shown.append(params.message)

    stop = threading.Event()
    loops = [
        asyncio.create_task(run_async(stop_event=stop, reader=to_server, protocol=server.protocol)),
        asyncio.create_task(run_async(stop_event=stop, reader=to_client, protocol=client.protocol)),
    ]
    general = lsp.GeneralClientCapabilities(position_encodings=encodings) if encodings else None
    await client.initialize_async(
        lsp.InitializeParams(
            capabilities=lsp.ClientCapabilities(general=general),
            root_uri=folder.as_uri(),
            workspace_folders=[lsp.WorkspaceFolder(uri=folder.as_uri(), name=folder.name)],
        )
    )
    client.initialized(lsp.InitializedParams())
    try:
        yield session
    finally:
        await asyncio.wait_for(client.shutdown_async(None), TIMEOUT)
        stop.set()
        to_server.feed_eof()
        to_client.feed_eof()
        await asyncio.gather(*loops)
