"""CLI: init, run and demo — the whole job in one command."""

from __future__ import annotations

from datetime import datetime, time
from importlib import resources
from pathlib import Path

import click

from digest import pipeline
from digest.cli import DATE_OPTION, App, frequency_option, pass_app
from digest.logs import setup_logging
from digest.models import Frequency, Subscriber
from digest.periods import local_today, zone
from digest.store import AlreadyExists, new_holder
from digest.tokens import DEMO_SECRET_KEY, generate_secret

__all__ = [
    "DEMO_SUBSCRIBERS",
    "demo",
    "echo_run",
    "example_papers_path",
    "init",
    "register",
    "run_command",
]

# Three example readers with different interests, so the demo shows personalisation.
DEMO_SUBSCRIBERS = (
    Subscriber(email="ada@example.org", topics=("Language models",)),
    Subscriber(email="grace@example.org", topics=("Computer vision", "Multimodal models")),
    Subscriber(email="alan@example.org"),
)


def example_papers_path() -> Path:
    """The bundled examples/papers.json (shipped inside the wheel as digest.examples)."""
    return Path(str(resources.files("digest.examples") / "papers.json"))


@click.command()
@pass_app
def init(app: App) -> None:
    """Create or upgrade the database schema.

    Example: DIGEST_DATABASE_URL=sqlite:///digest.db digest init
    """
    store = app.store
    click.echo(f"database ready at schema revision {store.revision()}")


def echo_run(report: pipeline.RunReport) -> None:
    """What a run or build did, one line per source, the edition and the delivery."""
    for src in report.collect.sources:
        if src.error:
            click.echo(f"collect {src.name}: FAILED: {src.error}")
            continue
        notes = "".join(f"; {note}" for note in src.notes)
        click.echo(
            f"collect {src.name}: fetched {src.fetched}, new {src.new}, merged {src.merged}, "
            f"skipped {len(src.skipped)}{notes}"
        )
        for skipped in src.skipped[:10]:
            click.echo(f"  skipped {skipped.ref}: {skipped.reason}")
    click.echo(report.reason)
    if report.edition is not None:
        counts = "".join(f"; {t.label} ({len(t.papers)})" for t in report.edition.themes)
        click.echo(f"edition {report.edition.key}: {len(report.edition.papers)} papers{counts}")
    if report.delivery is not None:
        click.echo(report.delivery.summary())
    if report.unresolved:
        click.echo(f"error: {report.unresolved}", err=True)


@click.command("run")
@frequency_option()
@DATE_OPTION
@pass_app
def run_command(app: App, frequency: str | None, day: object) -> None:
    """Collect, build the edition once its time has come, send whoever is due: for timers.

    Safe to call every 15 minutes (recommended when subscribers pick their own hour): the
    daily edition is built once DIGEST_SCHEDULE's time has come today (the weekly one once
    it has come this week), and each subscriber gets the newest edition at their own hour,
    once. With --date it builds and sends that day's edition of --frequency (default daily)
    at once, as before. With DIGEST_APPROVAL=required it builds the edition and stops until
    `digest approve KEY`. Exit codes: 0 done, nothing to do or waiting for approval, 1 a
    failure, 2 a configuration error.

    Example: digest run
    """
    settings = app.signing_settings()
    setup_logging(settings)
    tz = zone(settings)
    holder = new_holder()
    if day:  # "Today" is the date in DIGEST_TIMEZONE, as for `digest serve`.
        fire_time = datetime.combine(day.date(), time(12), tz)  # type: ignore[attr-defined]
        wanted = Frequency(frequency or "daily")
        _run_edition(app, wanted, fire_time, holder)
        return
    from digest.schedule import build_due

    now = datetime.now(tz)
    frequencies = [Frequency(frequency)] if frequency else list(Frequency)
    ok = True
    for wanted in frequencies:
        fire_time = build_due(settings, app.store, wanted, now)
        if fire_time is not None:
            ok = _run_edition(app, wanted, fire_time, holder, fail=False) and ok
    for report in pipeline.send_due(
        settings, app.store, now, holder=holder, frequencies=frequencies
    ):
        click.echo(f"at their own hour: {report.reason}; {report.delivery.summary()}")  # type: ignore[union-attr]
        ok = ok and report.ok
    if not ok:
        raise click.exceptions.Exit(1)


def _run_edition(
    app: App, frequency: Frequency, fire_time: datetime, holder: str, *, fail: bool = True
) -> bool:
    """Build (collecting first) and send the edition of ``fire_time``'s day; False if it failed."""
    report = pipeline.run_scheduled(
        app.signing_settings(), app.store, frequency, fire_time, holder=holder
    )
    if report is None:
        click.echo("another digest process is running this edition right now; nothing to do")
        return True
    echo_run(report)
    if not report.ok and fail:
        raise click.exceptions.Exit(1)
    return report.ok


@click.command()
@pass_app
def demo(app: App) -> None:
    """Run the whole job on the bundled example papers, into ./outbox.

    Creates the database, keeps a generated secret key in it, adds three example
    subscribers, collects examples/papers.json, builds today's edition and writes one
    .eml (and .html) per subscriber to the outbox. Safe to run again.

    Example: digest demo
    """
    from digest.sources import make_source

    store = app.store
    if not app.settings.secret_key and store.get_meta(DEMO_SECRET_KEY) is None:
        store.set_meta(DEMO_SECRET_KEY, generate_secret())
    settings = app.signing_settings()
    added = 0
    for subscriber in DEMO_SUBSCRIBERS:
        try:
            store.add_subscriber(subscriber)
            added += 1
        except AlreadyExists:
            pass  # already there from an earlier demo
    click.echo(f"database: {settings.database_url} ({added} example subscribers added)")
    source = make_source("file", settings, path=example_papers_path())
    report = pipeline.run(
        settings,
        store,
        frequency=Frequency.DAILY,
        today=local_today(settings),
        sources=[source],
    )
    echo_run(report)
    outbox = settings.outbox.resolve()
    if report.edition is not None:
        folder = outbox / report.edition.key
        emails = sorted(folder.glob("*.eml")) if folder.exists() else []
        click.echo(f"outbox: {folder} holds {len(emails)} emails")
        if emails:
            click.echo(f"look at: {emails[0].with_suffix('.html')} in a browser")
    if not report.ok:
        raise click.exceptions.Exit(1)


def register(group: click.Group) -> None:
    """Attach this module's commands to the `digest` group."""
    for command in (init, run_command, demo):
        group.add_command(command)
