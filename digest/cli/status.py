"""CLI: `digest status`, what ran, what is queued and what runs next."""

from __future__ import annotations

import json
from datetime import datetime, tzinfo

import click

from digest.cli import App, pass_app
from digest.logs import mask_email
from digest.store import FailureGroup, Store

__all__ = ["register", "status"]


@click.command()
@click.option("--runs", "limit", default=10, show_default=True, help="How many runs to list.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@pass_app
def status(app: App, limit: int, as_json: bool) -> None:
    """Show the last runs, editions, deliveries by state, the next run and what needs you.

    What needs you: a paused or crashed run (one whose process died, with its unknown
    outcomes), editions awaiting approval, failed deliveries by cause, and deliveries whose
    outcome is unknown, by edition, with the command that resolves them.

    Sending hours: how many subscribers are due now (their hour has passed and the newest
    edition has not reached them yet) and how many have their hour in each of the coming 24
    hours, in DIGEST_TIMEZONE.

    Example: digest status --runs 5
    """
    from digest.editions import waiting_for_approval
    from digest.periods import zone
    from digest.schedule import next_runs

    settings, store = app.settings, app.store
    tz = zone(settings)
    now = datetime.now(tz)
    facts = {
        "now": now.isoformat(timespec="seconds"),
        "timezone": settings.timezone,
        "schedule": settings.schedule,
        "next": {
            str(f): t.isoformat(timespec="seconds") if t else None
            for f, t in next_runs(settings, now).items()
        },
        "runs": [_run(r, tz, store) for r in store.recent_runs(limit)],
        "paused": [_run(r, tz, store) for r in store.paused_runs()],
        "editions": [
            {"key": e.key, "status": str(e.status), "date": e.date.isoformat()}
            for e in store.list_editions(limit=5)
        ],
        "deliveries": store.delivery_counts(),
        "awaiting_approval": [
            {"key": e.key, "built_at": e.created_at.astimezone(tz).isoformat(timespec="seconds")}
            for e in waiting_for_approval(store, settings)
            if e.created_at is not None
        ],
        "failures": [_failure(g) for g in store.failure_groups()],
        "unknown": store.unknown_counts(),
        **_hours(app, now),
    }
    if as_json:
        click.echo(json.dumps(facts, indent=2))
        return
    _print_status(facts, now)


def _hours(app: App, now: datetime) -> dict:
    """Who is due now, and how many sending times fall in each of the coming 24 hours."""
    from digest.editions import coming_hours, due_editions
    from digest.models import Frequency
    from digest.schedule import next_runs

    settings, store = app.settings, app.store
    due_now = sum(
        store.count_lacking(due.edition.id, frequency, due.groups)  # type: ignore[arg-type]
        for frequency in Frequency
        for due in due_editions(store, settings, frequency, now)
    )
    coming = [
        {"hour": hour.isoformat(timespec="minutes"), **counts}
        for hour, counts in coming_hours(store, settings, now, next_runs(settings, now))
    ]
    return {"due_now": due_now, "coming_hours": coming}


def _failure(group: FailureGroup) -> dict:
    """One cause of failed deliveries, for people and for monitoring."""
    kind = group.failure
    label = kind.label if kind else "cause not recorded"
    if group.detail:  # an email that could not be built: the error says what to fix
        label += f": {mask_email(group.detail.removeprefix('render: '))}"
    return {
        "reason": " ".join(part for part in (group.code, label) if part),
        "cause": str(kind) if kind else None,
        "code": group.code,
        "count": group.count,
        "retryable": group.retryable,
        "editions": list(group.editions),
    }


def _run(row: dict, tz: tzinfo, store: Store) -> dict:
    def at(value: datetime | None) -> str | None:
        return value.astimezone(tz).isoformat(timespec="seconds") if value else None

    outcome, detail, holder = row["outcome"], row["detail"] or "", row["holder"]
    fact = {"id": row["id"], "kind": row["kind"], "edition": row["edition_key"]}
    # A run still marked running whose process is gone crashed; no later run has noticed yet.
    if outcome == "running" and holder and store.holder_gone(holder):
        outcome, detail = "crashed", "the process is gone (killed or crashed)"
    if outcome == "crashed" and holder:
        fact["unknown"] = store.holder_unknown(holder)
        detail = f"{detail.partition(';')[0]}; {fact['unknown']} deliveries have an unknown outcome"
    return {
        **fact,
        "outcome": outcome,
        "started_at": at(row["started_at"]),
        "finished_at": at(row["finished_at"]),
        "detail": detail,
    }


def _print_status(facts: dict, now: datetime) -> None:
    echo = click.echo
    echo(f"Schedule: {facts['schedule']!r} in {facts['timezone']}")
    for frequency, when in facts["next"].items():
        if when:
            wait = datetime.fromisoformat(when) - now
            hours, rest = divmod(int(wait.total_seconds()), 3600)
            echo(f"Next {frequency} edition: {when} (in {hours}h {rest // 60:02d}m)")
    _print_hours(facts)
    for key, count in facts["unknown"].items():
        echo(
            click.style("UNKNOWN", fg="red")
            + f" {count} deliveries of {key}: resend with `digest send --edition {key} "
            "--retry-unknown` or count them as sent with `--accept-unknown`"
        )
    for run in facts["paused"]:
        echo(
            click.style("PAUSED", fg="yellow")
            + f" run #{run['id']} of {run['edition']}: {run['detail'] or 'no reason recorded'}"
        )
    for waiting in facts["awaiting_approval"]:
        echo(
            click.style("AWAITING APPROVAL", fg="yellow")
            + f" {waiting['key']} (built {waiting['built_at']}): `digest approve {waiting['key']}`"
        )
    echo("")
    echo("Last runs:" if facts["runs"] else "Last runs: none yet")
    for run in facts["runs"]:
        ended = run["finished_at"] or ("-" if run["outcome"] == "crashed" else "still running")
        edition = run["edition"] or "-"
        line = f"  #{run['id']:<4} {run['kind']:<8} {edition:<18} {run['outcome']:<8} {run['started_at']} -> {ended}"
        echo(line + (f"  {run['detail']}" if run["detail"] else ""))
    echo("")
    echo("Editions:" if facts["editions"] else "Editions: none yet")
    for edition in facts["editions"]:
        echo(f"  {edition['key']:<18} {edition['status']:<8} {edition['date']}")
    counts = facts["deliveries"]
    shown = ", ".join(f"{state} {n}" for state, n in sorted(counts.items())) or "none yet"
    echo(f"\nDeliveries: {shown}")
    _print_failures(facts["failures"])


def _print_hours(facts: dict) -> None:
    """Due now, and the subscribers' sending times hour by hour (only hours that have any)."""
    click.echo(f"Due now (their hour has passed, the newest edition not sent): {facts['due_now']}")
    if not facts["coming_hours"]:
        return
    click.echo("Sending hours, next 24 h:")
    for entry in facts["coming_hours"]:
        counts = ", ".join(f"{f} {n}" for f, n in entry.items() if f != "hour")
        click.echo(f"  {entry['hour']}  {counts}")


def _print_failures(failures: list[dict]) -> None:
    if not failures:
        return
    click.echo("Failed deliveries by cause:")
    for group in failures:
        editions = ", ".join(group["editions"][:3]) + (" ..." if len(group["editions"]) > 3 else "")
        click.echo(f"  {group['count']:>6}  {group['reason']}  ({editions})")
    retryable = sum(g["retryable"] for g in failures)
    if retryable:
        click.echo(
            f"{retryable} of them may go again once the cause is fixed: "
            "`digest send --retry-failed --edition KEY`"
        )


def register(group: click.Group) -> None:
    """Attach this module's commands to the `digest` group."""
    group.add_command(status)
