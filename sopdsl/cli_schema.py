"""`sopdsl schema`: print the JSON Schema of a file format, for editors and validators.

Imported when the command runs (see `sopdsl.cli.COMMANDS`).
"""

from __future__ import annotations

import click


@click.command()
@click.argument("format_name", metavar="FORMAT", type=click.Choice(["fixture"]))
def schema(format_name: str) -> None:
    """Print the JSON Schema of a file format: `fixture` (dry-run fixture timelines)."""
    from sopdsl.dryrun.fixture_schema import schema_text

    click.echo(schema_text(), nl=False)
