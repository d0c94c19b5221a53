"""CLI: `digest send`, an edition through the ledger, exactly once per subscriber."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from digest.cli import App, pass_app
from digest.cli.preview import pick_edition
from digest.cli.progress import BarProgress, LogProgress
from digest.errors import DigestError
from digest.models import Edition
from digest.periods import local_today

if TYPE_CHECKING:  # the delivery package loads rendering and SMTP: only a send imports it
    from digest.delivery.report import DeliveryReport

__all__ = ["register", "send"]


def _send_edition_for(app: App, edition_key: str | None, dry_run: bool) -> Edition:
    """The edition --edition names; else today's (built from collected papers if need be)."""
    from digest import pipeline
    from digest.models import Frequency

    store = app.store
    if edition_key:
        return pick_edition(app, edition_key, None)
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
    "--accept-unknown",
    is_flag=True,
    help="Count rows whose outcome is unknown after a crash as sent (recorded in the ledger).",
)
@click.option(
    "--worker",
    is_flag=True,
    help="PostgreSQL only: share the edition with other `digest send --worker` processes.",
)
@pass_app
def send(
    app: App,
    dry_run: bool,
    edition_key: str | None,
    retry_unknown: bool,
    accept_unknown: bool,
    worker: bool,
) -> None:
    """Send the latest edition to every active subscriber who has not had it.

    Every delivery is recorded, so running it again sends nothing twice. After a crash, rows
    whose outcome is unknown are never resent on their own, and every send exits 1 until you
    resend them (--retry-unknown) or count them as sent (--accept-unknown).

    Example: digest send --dry-run && digest send
    """
    import sys

    from digest.delivery import send_edition
    from digest.logs import setup_logging
    from digest.store import new_holder

    settings = app.signing_settings()
    terminal = sys.stderr.isatty()
    # On a terminal the bar shows progress; only warnings interrupt it. Elsewhere, log lines.
    setup_logging(settings, level="WARNING" if terminal else None)
    store = app.store
    edition = _send_edition_for(app, edition_key, dry_run)
    progress = BarProgress() if terminal and not dry_run else LogProgress()
    holder = new_holder()
    with store.alive(holder):  # from the run record on, others can tell if this process dies
        run_id = None if dry_run else store.start_run("send", edition.key, holder)
        try:
            report = send_edition(
                store, edition, settings, dry_run=dry_run, retry_unknown=retry_unknown,
                accept_unknown=accept_unknown, worker=worker, progress=progress, holder=holder,
            )  # fmt: skip
        except BaseException as exc:
            if run_id is not None:
                store.finish_run(run_id, "failed", f"{type(exc).__name__}: {exc}"[:500])
            raise
        if run_id is not None:
            outcome = "paused" if report.paused else ("ok" if report.ok else "failed")
            store.finish_run(run_id, outcome, _run_detail(report))
    _echo_report(report)


def _run_detail(report: DeliveryReport) -> str:
    """The runs table's one line for a send: the summary, and what an admin resolved."""
    detail = report.summary()
    if report.retried_unknown:
        detail += f"; resent {report.retried_unknown} whose outcome was unknown"
    if report.accepted_unknown:
        detail += f"; accepted {report.accepted_unknown} whose outcome was unknown as sent"
    return detail[:500]


def _echo_report(report: DeliveryReport) -> None:
    """Print the send's summary; exit 1 (one line on stderr) unless all is well."""
    click.echo(report.summary())
    if report.retried_unknown:
        click.echo(f"resent {report.retried_unknown} deliveries whose outcome was unknown")
    if report.accepted_unknown:
        click.echo(
            f"counted {report.accepted_unknown} deliveries whose outcome was unknown as sent"
        )
    if report.paused:
        raise DigestError(f"sending paused: {report.paused}")
    if report.unresolved and not report.dry_run:
        raise DigestError(report.unresolved)
    if not report.ok:
        click.get_current_context().exit(1)


def register(group: click.Group) -> None:
    """Attach this module's commands to the `digest` group."""
    group.add_command(send)
