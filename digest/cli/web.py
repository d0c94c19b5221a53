"""CLI: `digest web`, the subscribe, preferences, unsubscribe and archive pages."""

from __future__ import annotations

import click

from digest.cli import App, pass_app

__all__ = ["register", "web"]


@click.command("web")
@click.option("--host", help="Address to listen on (default: DIGEST_WEB_HOST).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default: DIGEST_WEB_PORT).")
@pass_app
def web(app: App, host: str | None, port: int | None) -> None:
    """Serve the subscribe, preferences, feedback, unsubscribe and archive pages.

    Needs DIGEST_SECRET_KEY (32+ characters) unless `digest demo` made one.

    Example: digest web --host 0.0.0.0 --port 8000
    """
    from digest.logs import setup_logging
    from digest.web.server import make_server  # starlette and uvicorn load only here

    settings = app.signing_settings()
    setup_logging(settings)
    server = make_server(settings, app.store, host=host, port=port)
    click.echo(
        f"serving on http://{host or settings.web_host}:{port or settings.web_port}", err=True
    )
    server.run()


def register(group: click.Group) -> None:
    """Attach this module's commands to the `digest` group."""
    group.add_command(web)
