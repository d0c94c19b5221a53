"""CLI commands for themes (filled in by its issue)."""

import click


def register(group: click.Group) -> None:
    """Attach this module's commands to the `digest` group."""
