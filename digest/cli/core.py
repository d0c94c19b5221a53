"""CLI: init, run and demo."""

from __future__ import annotations

import click

from digest.cli import App, pass_app


@click.command()
@pass_app
def init(app: App) -> None:
    """Create or upgrade the database schema.

    Example: DIGEST_DATABASE_URL=sqlite:///digest.db digest init
    """
    store = app.store
    click.echo(f"database ready at schema revision {store.revision()}")


def register(group: click.Group) -> None:
    """Attach this module's commands to the `digest` group."""
    group.add_command(init)
