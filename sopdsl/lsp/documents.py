"""Open documents split into lines as the front end and LSP split them: at line feeds only.

Input: a document's text. Output: its lines, each with its ending. Python's `splitlines` also ends
a line at U+2028, U+0085, a form feed and the like, which operators paste in with text from the
web or WeChat; pygls splits with it, so an incremental edit below one lands on the wrong line,
and a line read for completion is not the line the editor means.
"""

from __future__ import annotations

from pygls.workspace import TextDocument, Workspace


def lines_of(text: str) -> list[str]:
    """The lines of `text`, each ending with its `\\n` (or `\\r\\n`), the last one as it ends."""
    lines = text.split("\n")
    ends = [line + "\n" for line in lines[:-1]]
    return [*ends, lines[-1]] if lines[-1] else ends


class LineFeedDocument(TextDocument):
    """A pygls document whose lines end at line feeds only."""

    @property
    def lines(self) -> list[str]:
        """The document's lines, as `lines_of` splits them."""
        return lines_of(self.source)


class LineFeedWorkspace(Workspace):
    """A pygls workspace whose documents are `LineFeedDocument`s."""

    def _create_text_document(
        self,
        doc_uri: str,
        source: str | None = None,
        version: int | None = None,
        language_id: str | None = None,
    ) -> TextDocument:
        return LineFeedDocument(
            doc_uri,
            source=source,
            version=version,
            language_id=language_id,
            sync_kind=self._sync_kind,
            position_codec=self._position_codec,
        )
