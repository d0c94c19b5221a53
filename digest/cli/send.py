"""CLI: `digest send`, an edition through the ledger, exactly once per subscriber."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from digest.cli import App, frequency_option, pass_app
from digest.cli.progress import BarProgress, LogProgress
from digest.editions import Picked, may_send, pick_edition
from digest.errors import DigestError
from digest.models import Edition, Frequency

if TYPE_CHECKING:  # the delivery package loads rendering and SMTP: only a send imports it
    from digest.delivery.report import DeliveryReport
    from digest.store import Store

__all__ = ["register", "send"]


def _picked(app: App, edition_key: str | None, frequency: str | None, dry_run: bool) -> Picked:
    """The edition by the one rule; `send` builds today's if need be, a dry run never stores."""
    picked = pick_edition(
        app.store, app.settings, key=edition_key,
        frequency=Frequency(frequency) if frequency else None, build=not dry_run,
    )  # fmt: skip
    if picked.reason:  # built just now, or nothing new and the newest one instead
        click.echo(picked.reason, err=True)
    key = picked.edition.key
    waiting = not may_send(picked.edition, app.settings)
    if waiting and not dry_run:
        raise DigestError(
            f"edition {key} awaits approval (DIGEST_APPROVAL=required): look at it with "
            f"`digest preview --edition {key}`, then `digest approve {key}`"
        )
    if not picked.stored:
        click.echo(
            f"{key} is not built yet: `digest send` would build it from the papers now collected"
        )
    if waiting:
        click.echo(f"{key} awaits approval: `digest send` refuses it until `digest approve {key}`")
    return picked


@click.command("send")
@click.option("--dry-run", is_flag=True, help="Count and render what would go out; send nothing.")
@click.option("--edition", "edition_key", metavar="KEY", help="Edition key (default: today's).")
@frequency_option()
@click.option(
    "--retry-unknown",
    is_flag=True,
    help="Resend rows whose outcome is unknown after a crash (they may get a second copy).",
)
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Queue failed rows again whose cause may be fixed; never hard bounces (5.1.x).",
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
    frequency: str | None,
    retry_unknown: bool,
    retry_failed: bool,
    accept_unknown: bool,
    worker: bool,
) -> None:
    """Send today's edition to every active subscriber of its frequency who has not had it.

    The edition is --edition KEY, else today's of --frequency (built from the collected papers
    if need be), else the newest one; `preview` and `--dry-run` pick by the same rule. Every
    delivery is recorded, so running it again sends nothing twice. After a crash, rows whose
    outcome is unknown are never resent on their own, and every send exits 1 until you resend
    them (--retry-unknown) or count them as sent (--accept-unknown); failed rows whose cause
    you fixed (a setting, a template, a relay's policy) wait for --retry-failed.

    Example: digest send --dry-run && digest send
    """
    import sys

    from digest.delivery import send_edition
    from digest.logs import setup_logging
    from digest.pipeline import remember_link_key
    from digest.store import new_holder

    settings = app.signing_settings()
    terminal = sys.stderr.isatty()
    # On a terminal the bar shows progress; only warnings interrupt it. Elsewhere, log lines.
    setup_logging(settings, level="WARNING" if terminal else None)
    store = app.store
    edition = _picked(app, edition_key, frequency, dry_run).edition
    if dry_run and retry_failed and edition.id is not None:
        click.echo(
            f"--retry-failed would queue {store.retryable_failures(edition.id)} failed "
            f"deliveries of {edition.key} again"
        )
    progress = BarProgress() if terminal and not dry_run else LogProgress()
    holder = new_holder()
    with store.alive(holder):  # from the run record on, others can tell if this process dies
        run_id = None
        if not dry_run:
            remember_link_key(store, settings)
            run_id = store.start_run("send", edition.key, holder)
        try:
            report = send_edition(
                store, edition, settings, dry_run=dry_run, retry_unknown=retry_unknown,
                retry_failed=retry_failed, accept_unknown=accept_unknown, worker=worker,
                progress=progress, holder=holder,
            )  # fmt: skip
        except BaseException as exc:
            if run_id is not None:
                store.finish_run(run_id, "failed", f"{type(exc).__name__}: {exc}"[:500])
            raise
        if run_id is not None:
            outcome = "paused" if report.paused else ("ok" if report.ok else "failed")
            store.finish_run(run_id, outcome, _run_detail(report))
    _echo_report(report, store, edition, retry_failed)


def _run_detail(report: DeliveryReport) -> str:
    """The runs table's one line for a send: the summary, and what an admin resolved."""
    detail = report.summary()
    if report.retried_unknown:
        detail += f"; resent {report.retried_unknown} whose outcome was unknown"
    if report.accepted_unknown:
        detail += f"; accepted {report.accepted_unknown} whose outcome was unknown as sent"
    return detail[:500]


def _echo_report(
    report: DeliveryReport, store: Store, edition: Edition, retry_failed: bool
) -> None:
    """The summary, what to do about unknown and failed rows, and the exit code."""
    key, dry_run = edition.key, report.dry_run
    click.echo(report.summary())
    if report.retried_unknown:
        click.echo(f"resent {report.retried_unknown} deliveries whose outcome was unknown")
    if report.accepted_unknown:
        click.echo(
            f"counted {report.accepted_unknown} deliveries whose outcome was unknown as sent"
        )
    if retry_failed and not dry_run:
        click.echo(f"queued {report.retried_failed} failed deliveries again")
    failed = report.ledger.get("failed", 0)
    if failed and not dry_run:
        retryable = store.retryable_failures(edition.id)  # type: ignore[arg-type]
        click.echo(
            f"{failed} deliveries of {key} failed (`digest status` groups them by cause); "
            f"{retryable} may go again once the cause is fixed: "
            f"`digest send --retry-failed --edition {key}`",
            err=True,
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
