"""CLI: `digest preview`, an edition as one subscriber gets it: written, served, shot or test-sent."""

from __future__ import annotations

import http.server
import threading
from datetime import date, datetime
from pathlib import Path

import click

from digest.cli import DATE_OPTION, App, frequency_option, pass_app
from digest.editions import Picked, pick_edition
from digest.errors import DigestError
from digest.mail.preview import make_preview_server, screenshot
from digest.models import Edition, Frequency, Message, Subscriber

__all__ = ["preview", "preview_server", "register"]

PREVIEW_EMAIL = "preview@example.invalid"


def _pick_subscriber(app: App, email: str | None) -> Subscriber:
    """The subscriber named by --subscriber, else a stand-in who gets everything."""
    if not email:
        return Subscriber(email=PREVIEW_EMAIL, id=0)
    subscriber = app.store.find_subscriber(email.strip().lower()) or app.store.find_subscriber(
        email.strip()
    )
    if subscriber is None:
        raise DigestError(f"no subscriber {email!r}; `digest subscribers list` shows them")
    return subscriber


def _picked(
    app: App, email: str | None, frequency: str | None, key: str | None, day: date | None
) -> tuple[Picked, Subscriber]:
    """The subscriber, and the edition by the one rule: of their frequency, never another."""
    subscriber = _pick_subscriber(app, email)
    wanted = Frequency(frequency) if frequency else None
    if email:
        if wanted is not None and wanted is not subscriber.frequency:
            raise DigestError(f"{email} gets the {subscriber.frequency} edition, not the {wanted}")
        wanted = subscriber.frequency
    picked = pick_edition(app.store, app.settings, frequency=wanted, key=key, day=day)
    if not picked.stored:
        click.echo(
            f"{picked.edition.key} is not built yet: this is what it would hold now "
            f"({picked.reason}); `digest build` builds it"
        )
    return picked, subscriber


def _render(app: App, renderer, edition: Edition, subscriber: Subscriber, prefix: str = ""):
    from digest.themes.rank import select_for

    selection = select_for(edition, subscriber, app.settings, app.store.get_papers)
    return renderer.prepare_digest(edition, selection, subject_prefix=prefix)


def _write(message: Message, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(message.html, encoding="utf-8")
    text_path = out.with_name(out.name + ".txt")
    text_path.write_text(message.text, encoding="utf-8")
    return text_path


@click.command()
@click.option("--subscriber", "email", metavar="EMAIL", help="Render what this subscriber gets.")
@click.option("--edition", "edition_key", metavar="KEY", help="Edition key (default: today's).")
@DATE_OPTION
@frequency_option()
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the HTML here and the text part beside it as FILE.txt (default preview.html).",
)
@click.option("--serve", is_flag=True, help="Serve on 127.0.0.1; reloads when a template changes.")
@click.option("--port", default=8025, show_default=True, help="Port for --serve.")
@click.option("--send-to", metavar="ADDR", help="Send a [TEST] copy via the configured transport.")
@click.option(
    "--screenshot",
    "shot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="PNG at phone (375 px) and desktop (600 px) width, via headless Chromium.",
)
@click.option("--dark", is_flag=True, help="Screenshot in dark mode.")
@pass_app
def preview(
    app: App,
    email: str | None,
    edition_key: str | None,
    day: datetime | None,
    frequency: str | None,
    out: Path | None,
    serve: bool,
    port: int,
    send_to: str | None,
    shot: Path | None,
    dark: bool,
) -> None:
    """Render an edition's email as a subscriber gets it, to check it before sending.

    The edition is picked as `digest send` picks it (--edition KEY, or today's of the
    subscriber's frequency, or the newest); papers collected but not built into an edition
    yet are shown as the edition would hold them, and nothing is stored.

    Example: digest preview --subscriber ada@example.org --out preview.html
    """
    from digest.delivery import send_message
    from digest.mail.render import Renderer

    app.signing_settings()  # every link in the preview is signed, as in a real email
    picked, subscriber = _picked(app, email, frequency, edition_key, day.date() if day else None)
    edition = picked.edition
    renderer = Renderer(app.settings)
    message = _render(app, renderer, edition, subscriber).for_subscriber(subscriber)
    did = False
    if send_to:
        # Links in a test copy carry no real subscriber's token (id 0 matches nobody).
        test = _render(app, renderer, edition, subscriber, "[TEST] ")
        how = send_message(
            app.settings, test.for_subscriber(Subscriber(email=send_to, id=0)), folder="preview"
        )
        click.echo(f"test copy of {edition.key} {how}")
        did = True
    if shot:
        screenshot(message.html, shot, dark=dark)
        click.echo(f"wrote {shot}")
        did = True
    if out or not (did or serve):
        path = out or Path("preview.html")
        text_path = _write(message, path)
        click.echo(
            f"wrote {path} and {text_path} ({edition.key}, {len(message.html):,} bytes HTML)"
        )
    if serve:
        _serve(app, edition, subscriber, port)


def preview_server(
    app: App, edition: Edition, subscriber: Subscriber, port: int
) -> http.server.ThreadingHTTPServer:
    """The `preview --serve` server: re-renders when a template file changes."""
    from digest.mail.render import Renderer
    from digest.mail.templates import TemplateSet

    state: dict = {}
    lock = threading.Lock()

    def build() -> tuple[Message, str]:
        with lock:
            mtimes = TemplateSet(app.settings.templates_dir).mtimes()
            if state.get("mtimes") != mtimes:
                state.clear()
                state["mtimes"] = mtimes  # a broken template is retried only after a change
                try:
                    prepared = _render(app, Renderer(app.settings), edition, subscriber)
                    state["message"] = prepared.for_subscriber(subscriber)
                except DigestError as exc:
                    state["error"] = str(exc)
            if "error" in state:
                raise DigestError(state["error"])
            return state["message"], str(hash(mtimes))

    return make_preview_server(build, port)


def _serve(app: App, edition: Edition, subscriber: Subscriber, port: int) -> None:
    server = preview_server(app, edition, subscriber, port)
    click.echo(f"serving {edition.key} on http://127.0.0.1:{server.server_port}/ (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def register(group: click.Group) -> None:
    """Attach this module's commands to the `digest` group."""
    group.add_command(preview)
