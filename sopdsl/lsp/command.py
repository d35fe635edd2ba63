"""`sopdsl lsp`: the language server over standard input and output.

Imported when the command runs (see `sopdsl.cli.COMMANDS`), so no other command loads pygls,
which is an optional dependency (`pip install 'sopdsl[lsp]'`).
"""

from __future__ import annotations

import importlib.util

import click

from sopdsl.cli import root_option, root_path


@click.command()
@root_option
def lsp_command(root: str | None) -> None:
    """Serve the Language Server Protocol on stdin/stdout: diagnostics, completion, formatting, hover."""
    if importlib.util.find_spec("pygls") is None:
        raise click.UsageError("`sopdsl lsp` needs pygls: install it with pip install 'sopdsl[lsp]'")
    from sopdsl.lsp.server import build_server

    build_server(root_path(root)).start_io()
