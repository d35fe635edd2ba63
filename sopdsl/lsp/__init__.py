"""`sopdsl lsp`: a language server for playbook files, on pygls.

Input: LSP messages from an editor (open, change, completion, formatting, hover, definition).
Output: diagnostics, completions, edits and locations computed by the project's own front end
(`sopdsl.syntax.loader`, `sopdsl.checker`, `sopdsl.syntax.formatter`) on the text being edited.
`positions.py` converts between spans and the editor's positions, `symbols.py` reads the names a
program declares, `analysis.py` runs the front end on one document, `server.py` holds the
protocol handlers and `command.py` the click command.
"""
