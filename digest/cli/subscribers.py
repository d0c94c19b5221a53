"""CLI: `digest subscribers add|import|export|list|remove|delete` and `digest web`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from digest import subscribers as subs
from digest.cli import App, pass_app
from digest.models import Frequency, Subscriber, SubscriberStatus

__all__ = ["profile_options", "register", "subscribers_group"]

F = TypeVar("F", bound=Callable[..., Any])
FREQUENCY = click.Choice([f.value for f in Frequency])


def _send_confirmations(app: App, added: Sequence[Subscriber]) -> str:
    """Email each new unconfirmed subscriber a confirmation link; say how ("sent", "written to")."""
    from digest.delivery.report import handed_over
    from digest.delivery.transports import make_transport
    from digest.mail.render import Renderer

    settings = app.signing_settings()
    renderer = Renderer(settings)
    transport = make_transport(settings, edition_key="subscriptions")

    async def send_all() -> None:
        try:
            for subscriber in added:
                await subs.send_confirmation(
                    app.store, subscriber, renderer=renderer, transport=transport
                )
        finally:
            await transport.aclose()

    asyncio.run(send_all())
    return handed_over(transport.outbox)


@click.group("subscribers")
def subscribers_group() -> None:
    """Manage the subscriber list: add, import, export, list, remove, delete."""


def profile_options(changing: bool) -> Callable[[F], F]:
    """The reader's profile flags, shared by `add` and `set` (``changing``: also the undo flags)."""
    ids = "an arXiv id or abs/pdf URL of a stored paper; repeatable"
    options = [
        click.option("--like", "like", multiple=True, metavar="ID", help=f"Like a paper ({ids})."),
        click.option("--dislike", "dislike", multiple=True, metavar="ID", help=f"Dislike a paper ({ids})."),
        click.option("--max-papers", type=int, metavar="N", help="Papers per email at most (0: the site default)."),
        click.option("--blend", metavar="X", help='0 "Trending" to 1 "For me" (default: 0.7 once they like a paper, 0 before; "" resets).'),
        click.option("--follow-author", "follow_authors", multiple=True, metavar="NAME", help="Always include this author's papers (repeatable)."),
        click.option("--follow-org", "follow_orgs", multiple=True, metavar="NAME", help="Always include this organisation's papers (repeatable)."),
        click.option("--timezone", metavar="TZ", help='IANA time zone of their hour, e.g. Europe/Berlin ("" resets to DIGEST_TIMEZONE).'),
        click.option("--hour", metavar="H", help='Local hour to send at, 0-23 ("" resets to DIGEST_SCHEDULE\'s).'),
        click.option("--empty-days", type=click.Choice(["skip", "roll"]), help="A day with nothing new: skip it, or roll it into the next email."),
    ]  # fmt: skip
    if changing:
        options += [
            click.option("--unlike", "unrate", multiple=True, metavar="ID", help="Forget a like or dislike (repeatable)."),
            click.option("--unfollow-author", "unfollow_authors", multiple=True, metavar="NAME", help="Stop following an author (repeatable)."),
            click.option("--unfollow-org", "unfollow_orgs", multiple=True, metavar="NAME", help="Stop following an organisation (repeatable)."),
            click.option("--followups/--no-followups", default=None, help='The "Since you last saw it" section on or off.'),
        ]  # fmt: skip
    else:
        options.append(
            click.option("--no-followups", "no_followups", is_flag=True, help='No "Since you last saw it" section.')
        )  # fmt: skip

    def decorate(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _change(options: dict) -> subs.ProfileChange:
    """The profile flags of a command as a ProfileChange."""
    if options.pop("no_followups", False):
        options["followups"] = False
    return subs.ProfileChange(**options)


@subscribers_group.command("add")
@click.argument("email")
@click.option("--topic", "topics", multiple=True, help="A taxonomy topic to follow (repeatable).")
@click.option("--keyword", "keywords", multiple=True, help="A keyword to match (repeatable).")
@click.option("--frequency", type=FREQUENCY, default="daily", show_default=True)
@click.option(
    "--double-opt-in", is_flag=True, help="Add unconfirmed and email a confirmation link."
)
@profile_options(changing=False)
@pass_app
def add(
    app: App,
    email: str,
    topics: tuple[str, ...],
    keywords: tuple[str, ...],
    frequency: str,
    double_opt_in: bool,
    **profile: object,
) -> None:
    """Add one subscriber, confirmed (an admin vouches for them) unless --double-opt-in.

    Example: digest subscribers add jane@example.org --topic "AI agents" --like 2411.01234
    --follow-author "Kaiming He" --blend 0.7 --timezone Europe/Berlin --hour 7
    """
    settings = app.signing_settings()
    chosen = subs.resolve_topics(topics, subs.known_topics(settings)) if topics else ()
    fields = subs.profile_fields(app.store, Subscriber(email=email), _change(profile))
    added = subs.add(
        app.store,
        settings.secret_key,
        email,
        topics=chosen,
        keywords=keywords,
        frequency=Frequency(frequency),
        confirmed=not double_opt_in,
        **fields,
    )
    if double_opt_in:
        how = _send_confirmations(app, [added])
        click.echo(f"added {added.email} (unconfirmed); confirmation email {how}")
    else:
        click.echo(f"added {added.email} ({added.status})")


@subscribers_group.command("set")
@click.argument("email")
@profile_options(changing=True)
@pass_app
def set_(app: App, email: str, **profile: object) -> None:
    """Change a subscriber's likes, blend, follows, hour or papers per email; the rest stays.

    Example: digest subscribers set jane@example.org --like 2411.01234 --unlike 2410.17243
    --unfollow-author "Kaiming He" --blend ""
    """
    subscriber = subs.change_profile(app.store, subs.normalize_email(email), _change(profile))
    click.echo(f"{subscriber.email}: {subs.describe_profile(subscriber)}")


@subscribers_group.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--double-opt-in",
    is_flag=True,
    help="Add active rows unconfirmed; email every new unconfirmed subscriber a confirmation.",
)
@pass_app
def import_(app: App, file: Path, double_opt_in: bool) -> None:
    """Add the subscribers of a CSV or JSON file, as `export` writes them.

    JSON when the file starts with [ (a list of objects), else CSV with a header row. Only
    email is required; status, topics, keywords, frequency, max_papers, min_score, created_at
    and confirmed_at are kept as given (no status: active). Addresses already on the list are
    left as they are and deleted ones are skipped, so nobody is re-activated. No email is sent
    unless --double-opt-in. Bad rows are reported (FILE:LINE, or FILE:#N in JSON) and skipped.

    Example: digest subscribers import people.csv
    """
    settings = app.signing_settings()
    report = subs.import_subscribers(
        app.store,
        settings.secret_key,
        file,
        known=subs.known_topics(settings),
        double_opt_in=double_opt_in,
    )
    for where, reason in report.problems:
        click.echo(f"{file}:{where}: skipped: {reason}", err=True)
    if double_opt_in and report.added:
        waiting = [s for s in report.added if s.status is SubscriberStatus.UNCONFIRMED]
        _send_confirmations(app, waiting)
    click.echo(
        f"imported {len(report.added)}; already on the list {report.existing}; "
        f"suppressed {report.suppressed}; repeated in the file {report.duplicates}; "
        f"bad rows {len(report.problems)}"
    )


@subscribers_group.command("export")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True
)
@click.option(
    "--out", type=click.Path(path_type=Path, dir_okay=False), help="Write to FILE, not stdout."
)
@pass_app
def export(app: App, fmt: str, out: Path | None) -> None:
    """Write every subscriber with status, preferences and dates; `import` reads either format.

    Example: digest subscribers export --format json --out subscribers.json
    """
    text = subs.export(app.store.list_subscribers(), fmt)
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"wrote {out}", err=True)


@subscribers_group.command("list")
@click.option(
    "--status",
    type=click.Choice([s.value for s in SubscriberStatus]),
    help="Only subscribers in this status.",
)
@pass_app
def list_(app: App, status: str | None) -> None:
    """Show each address with its status, frequency and topics.

    Example: digest subscribers list --status active
    """
    rows = app.store.list_subscribers(SubscriberStatus(status) if status else None)
    if not rows:
        click.echo("no subscribers")
        return
    width = max(len(s.email) for s in rows)
    for s in rows:
        topics = ", ".join(s.topics) or "all topics"
        click.echo(f"{s.email:<{width}}  {s.status:<12}  {s.frequency:<6}  {topics}")
    counts = app.store.count_subscribers()
    click.echo(", ".join(f"{n} {name}" for name, n in sorted(counts.items())))


@subscribers_group.command("remove")
@click.argument("email")
@pass_app
def remove(app: App, email: str) -> None:
    """Unsubscribe an address (it stays on the list, marked unsubscribed).

    Example: digest subscribers remove jane@example.org
    """
    subscriber = subs.remove(app.store, email)
    click.echo(f"{subscriber.email} is {subscriber.status}")


@subscribers_group.command("delete")
@click.argument("email")
@pass_app
def delete(app: App, email: str) -> None:
    """Erase an address's data; only a salted hash stays so it is never added again.

    Example: digest subscribers delete jane@example.org
    """
    settings = app.signing_settings()
    address = subs.normalize_email(email)
    if subs.delete(app.store, settings.secret_key, address):
        click.echo(f"deleted {address}; it stays on the suppression list")
    else:
        click.echo(f"{address} was not on the list; it is now on the suppression list")


def register(group: click.Group) -> None:
    """Attach this module's commands to the `digest` group."""
    group.add_command(subscribers_group)
