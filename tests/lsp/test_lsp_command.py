"""`sopdsl lsp` as an editor starts it: a process speaking LSP on its standard input and output."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from click.testing import CliRunner
from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient

from sopdsl.cli import main


def test_the_command_serves_a_session_over_stdio_and_exits_cleanly(tmp_path: Path) -> None:
    (tmp_path / "a.sop").write_text('timezone "Asia/Shanghai"\ntemplate 早安 = "早"\n', encoding="utf-8")

    async def run() -> int | None:
        client = LanguageClient("sopdsl-tests", "1")
        published: asyncio.Queue[lsp.PublishDiagnosticsParams] = asyncio.Queue()

        @client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)  # type: ignore[untyped-decorator]  # pygls's client leaves feature() unannotated
        def on_diagnostics(params: lsp.PublishDiagnosticsParams) -> None:
            published.put_nowait(params)

        await client.start_io(sys.executable, "-m", "sopdsl", "lsp", cwd=str(tmp_path))
        result = await asyncio.wait_for(
            client.initialize_async(lsp.InitializeParams(capabilities=lsp.ClientCapabilities())), 60
        )
        assert result.server_info is not None and result.server_info.name == "sopdsl"
        capabilities = result.capabilities
        assert capabilities.completion_provider is not None
        assert capabilities.document_formatting_provider
        assert capabilities.hover_provider and capabilities.definition_provider
        client.initialized(lsp.InitializedParams())
        uri = (tmp_path / "a.sop").as_uri()
        text = 'timezone "Asia/Shanghai"\nplaybook p { on member joins do { send 早 to member } }\n'
        client.text_document_did_open(
            lsp.DidOpenTextDocumentParams(text_document=lsp.TextDocumentItem(uri, "sopdsl", 1, text))
        )
        params = await asyncio.wait_for(published.get(), 60)
        assert [d.code for d in params.diagnostics] == ["SOP104"]
        await client.shutdown_async(None)
        client.exit(None)
        assert client._server is not None
        code = await asyncio.wait_for(client._server.wait(), 60)
        await client.stop()  # type: ignore[no-untyped-call]  # pygls leaves stop() unannotated
        return code

    assert asyncio.run(run()) == 0


def test_the_command_is_listed_and_takes_a_project_folder() -> None:
    runner = CliRunner()
    listed = runner.invoke(main, ["--help"])
    assert "lsp" in listed.output
    help_text = runner.invoke(main, ["lsp", "--help"])
    assert help_text.exit_code == 0
    assert "--root" in help_text.output
