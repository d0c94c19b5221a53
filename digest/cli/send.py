"""CLI commands for sending: `preview` (below) and `send` (added by the delivery work)."""

from __future__ import annotations

import asyncio
import http.server
import threading
from datetime import date, datetime
from pathlib import Path

import click

from digest.cli import App, pass_app
from digest.cli.progress import BarProgress, LogProgress
from digest.errors import DigestError
from digest.mail.preview import make_preview_server, screenshot
from digest.models import Edition, Message, Subscriber
from digest.periods import local_today

# =========================================================================================
# preview: render an edition for one subscriber; write, serve, screenshot or test-send it.
# =========================================================================================

PREVIEW_EMAIL = "preview@example.invalid"


def _pick_edition(app: App, key: str | None, day: date | None) -> Edition:
    """The edition asked for, else the latest one; DigestError when there is none."""
    store = app.store
    if key:
        edition = store.get_edition(key)
        if edition is None:
            raise DigestError(f"no edition {key!r}; `digest status` lists them")
        return edition
    if day:
        found = next((e for e in store.list_editions(limit=500) if e.date == day), None)
        if found is None:
            raise DigestError(f"no edition for {day.isoformat()}")
        return store.get_edition(found.key)  # list_editions leaves themes out
    edition = store.latest_edition()
    if edition is None:
        raise DigestError("no edition yet; run `digest run` (or `digest demo`) first")
    return edition


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


def _render(app: App, renderer, edition: Edition, subscriber: Subscriber, prefix: str = ""):
    from digest.mail.render import select_for

    selection = select_for(edition, subscriber, app.settings)
    return renderer.prepare_digest(edition, selection, subject_prefix=prefix)


def _write(message: Message, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(message.html, encoding="utf-8")
    text_path = out.with_name(out.name + ".txt")
    text_path.write_text(message.text, encoding="utf-8")
    return text_path


def _send_test(app: App, message: Message) -> None:
    from digest.delivery.transports import make_transport

    transport = make_transport(app.settings, edition_key="preview")

    async def go() -> None:
        try:
            await transport.send(message)
        finally:
            await transport.aclose()

    asyncio.run(go())


@click.command()
@click.option("--subscriber", "email", metavar="EMAIL", help="Render what this subscriber gets.")
@click.option("--edition", "edition_key", metavar="KEY", help="Edition key (default: latest).")
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), help="The edition of this date.")
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
    out: Path | None,
    serve: bool,
    port: int,
    send_to: str | None,
    shot: Path | None,
    dark: bool,
) -> None:
    """Render an edition's email as a subscriber gets it, to check it before sending.

    Example: digest preview --subscriber ada@example.org --out preview.html
    """
    from digest.mail.render import Renderer

    app.signing_settings()  # every link in the preview is signed, as in a real email
    edition = _pick_edition(app, edition_key, day.date() if day else None)
    subscriber = _pick_subscriber(app, email)
    renderer = Renderer(app.settings)
    message = _render(app, renderer, edition, subscriber).for_subscriber(subscriber)
    did = False
    if send_to:
        # Links in a test copy carry no real subscriber's token (id 0 matches nobody).
        test = _render(app, renderer, edition, subscriber, "[TEST] ")
        _send_test(app, test.for_subscriber(Subscriber(email=send_to, id=0)))
        click.echo(f"sent a test copy of {edition.key} via {app.settings.transport}")
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


# ======================================= end preview =====================================


# =========================================================================================
# send: deliver an edition through the ledger (exactly once per subscriber).
# =========================================================================================


def _send_edition_for(app: App, edition_key: str | None, dry_run: bool) -> Edition:
    """The edition --edition names; else today's (built from collected papers if need be)."""
    from digest import pipeline
    from digest.models import Frequency

    store = app.store
    if edition_key:
        return _pick_edition(app, edition_key, None)
    if not dry_run:  # a dry run changes nothing, so it never builds an edition
        today = local_today(app.settings)  # DIGEST_TIMEZONE, as `digest run`
        built, reason = pipeline.build_edition(store, app.settings, Frequency.DAILY, today)
        if built is not None:
            return built
        click.echo(reason, err=True)
    edition = store.latest_edition()
    if edition is None:
        raise DigestError("no edition to send; collect papers first (`digest collect`)")
    return edition


@click.command("send")
@click.option("--dry-run", is_flag=True, help="Count and render what would go out; send nothing.")
@click.option("--edition", "edition_key", metavar="KEY", help="Edition key (default: latest).")
@click.option(
    "--retry-unknown",
    is_flag=True,
    help="Resend rows whose outcome is unknown after a crash (they may get a second copy).",
)
@click.option(
    "--worker",
    is_flag=True,
    help="PostgreSQL only: share the edition with other `digest send --worker` processes.",
)
@pass_app
def send(
    app: App, dry_run: bool, edition_key: str | None, retry_unknown: bool, worker: bool
) -> None:
    """Send the latest edition to every active subscriber who has not had it.

    Every delivery is recorded, so running it again sends nothing twice. After a crash, rows
    whose outcome is unknown are left alone until you pass --retry-unknown.

    Example: digest send --dry-run && digest send
    """
    import sys

    from digest.delivery import send_edition
    from digest.logs import setup_logging

    settings = app.signing_settings()
    terminal = sys.stderr.isatty()
    # On a terminal the bar shows progress; only warnings interrupt it. Elsewhere, log lines.
    setup_logging(settings, level="WARNING" if terminal else None)
    store = app.store
    edition = _send_edition_for(app, edition_key, dry_run)
    progress = BarProgress() if terminal and not dry_run else LogProgress()
    run_id = None if dry_run else store.start_run("send", edition.key)
    try:
        report = send_edition(
            store, edition, settings,
            dry_run=dry_run, retry_unknown=retry_unknown, worker=worker, progress=progress,
        )  # fmt: skip
    except BaseException as exc:
        if run_id is not None:
            store.finish_run(run_id, "failed", f"{type(exc).__name__}: {exc}"[:500])
        raise
    if run_id is not None:
        outcome = "paused" if report.paused else ("ok" if report.ok else "failed")
        store.finish_run(run_id, outcome, report.summary())
    click.echo(report.summary())
    if report.retried_unknown:
        click.echo(f"resent {report.retried_unknown} deliveries whose outcome was unknown")
    unknown = report.ledger.get("unknown", 0)
    if unknown and not dry_run:
        click.echo(
            f"{unknown} deliveries of {edition.key} have an unknown outcome (a crash or a lost "
            "connection after the message was handed over); they are not resent unless you run "
            "`digest send --retry-unknown`",
            err=True,
        )
    if report.paused:
        raise DigestError(f"sending paused: {report.paused}")
    if not report.ok:
        click.get_current_context().exit(1)


# ========================================= end send ======================================


def register(group: click.Group) -> None:
    """Attach this module's commands to the `digest` group."""
    group.add_command(preview)
    group.add_command(send)
