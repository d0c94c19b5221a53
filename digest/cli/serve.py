"""CLI: `digest serve`, the scheduler daemon."""

from __future__ import annotations

import asyncio

import click

from digest.cli import App, pass_app

__all__ = ["register", "serve"]


@click.command()
@click.option("--web", is_flag=True, help="Also serve the web app (subscribe, archive) here.")
@pass_app
def serve(app: App, web: bool) -> None:
    """Run the scheduler: send each edition on DIGEST_SCHEDULE until SIGTERM.

    The daily edition fires on the cron expression DIGEST_SCHEDULE in DIGEST_TIMEZONE, the
    weekly one at the same time on DIGEST_WEEKLY_DAY. SIGTERM lets the run in flight finish.

    Example: DIGEST_SCHEDULE="0 7 * * mon-fri" DIGEST_TIMEZONE=Europe/Berlin digest serve --web
    """
    from digest.logs import setup_logging
    from digest.schedule import serve as serve_forever
    from digest.schedule import triggers

    triggers(app.settings)  # a bad schedule stops here, before the database is touched
    settings = app.signing_settings()  # every email link is signed
    setup_logging(settings)
    asyncio.run(serve_forever(settings, app.store, web=web))


def register(group: click.Group) -> None:
    """Attach this module's commands to the `digest` group."""
    group.add_command(serve)
