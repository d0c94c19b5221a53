"""CLI: `digest build` and `digest approve`, an edition's life before it is sent."""

from __future__ import annotations

from datetime import datetime

import click

from digest.cli import DATE_OPTION, App, frequency_option, pass_app
from digest.cli.core import echo_run
from digest.errors import DigestError
from digest.models import Frequency

__all__ = ["approve", "build", "register"]


@click.command()
@frequency_option("daily")
@DATE_OPTION
@click.option("--no-collect", is_flag=True, help="Build from the papers already collected.")
@pass_app
def build(app: App, frequency: str, day: datetime | None, no_collect: bool) -> None:
    """Collect papers and build the edition without sending it, to preview and approve it.

    The daily edition collects from DIGEST_SOURCES first (not with --no-collect); the weekly
    one gathers what the daily runs collected. An edition, once built, keeps its papers:
    building again the same day changes nothing. `preview`, `send --dry-run`, `approve` and
    `send` then act on it.

    Example: digest build && digest preview --out preview.html
    """
    from digest import pipeline
    from digest.editions import may_send
    from digest.logs import setup_logging
    from digest.periods import edition_key, local_today

    settings, store = app.settings, app.store
    setup_logging(settings)
    wanted = Frequency(frequency)
    today = day.date() if day else local_today(settings)  # DIGEST_TIMEZONE, as `digest run`
    run_id = store.start_run("build", edition_key(wanted, today))
    report = pipeline.prepare(
        settings, store, frequency=wanted, today=today, collect_first=not no_collect
    )
    edition = report.edition
    outcome = ("ok" if edition else "nothing") if report.ok else "failed"
    store.finish_run(run_id, outcome, report.reason[:500])
    echo_run(report)
    if edition is not None:
        if not may_send(edition, settings):
            click.echo(
                f"it awaits approval: look at it with `digest preview --edition {edition.key}`, "
                f"then `digest approve {edition.key}`"
            )
        else:
            click.echo(
                f"look at it with `digest preview --edition {edition.key}`; "
                f"`digest send --edition {edition.key}` sends it"
            )
    if not report.ok:
        raise click.exceptions.Exit(1)


@click.command()
@click.argument("key", required=False)
@frequency_option()
@click.option("--send", "send_now", is_flag=True, help="Send it at once, as `digest send`.")
@pass_app
@click.pass_context
def approve(
    ctx: click.Context, app: App, key: str | None, frequency: str | None, send_now: bool
) -> None:
    """Release a built edition so it may be sent (for DIGEST_APPROVAL=required).

    KEY defaults to the edition `digest send` would send: today's of --frequency (default
    daily) once built, else the newest one. Scheduled runs then send it when they next run
    for its day; `digest send` (or --send here) sends it now. An edition approved or sent
    already is left as it is.

    Example: digest approve daily-2026-11-26 --send
    """
    from digest.editions import approve_edition, pick_edition

    if key is None:  # the one rule, as `send` picks, but an edition must be built to approve
        picked = pick_edition(
            app.store, app.settings, frequency=Frequency(frequency) if frequency else None
        )
        if not picked.stored:
            raise DigestError(
                f"{picked.edition.key} is not built yet: `digest build` builds it, "
                "`digest preview` shows it, then approve it"
            )
        key = picked.edition.key
    edition, approved = approve_edition(app.store, key)
    if approved:
        click.echo(f"approved {key} ({len(edition.papers)} papers)")
    else:
        click.echo(f"{key} is {edition.status} already; nothing to approve")
    if send_now:
        from digest.cli.send import send

        ctx.invoke(send, edition_key=key)
    elif approved:
        click.echo(f"`digest send --edition {key}` sends it now")


def register(group: click.Group) -> None:
    """Attach this module's commands to the `digest` group."""
    for command in (build, approve):
        group.add_command(command)
