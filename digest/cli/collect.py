"""`digest collect`: fetch papers from the sources into the database and say what happened."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from digest.cli import App, pass_app
from digest.errors import DigestError
from digest.sources import SOURCE_NAMES, make_source

if TYPE_CHECKING:
    from digest.pipeline import SourceReport

__all__ = ["collect", "register"]

SHOWN_SKIPS = 20  # per source; the rest are counted, so a broken feed does not flood the screen


def _day(_ctx: click.Context, _param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected YYYY-MM-DD, got {value!r}") from None


def _print(report: SourceReport) -> None:
    if report.error:
        click.echo(f"error: {report.name}: failed: {_strip(report.error, report.name)}", err=True)
        return
    notes = "".join(f"; {note}" for note in report.notes)
    click.echo(
        f"{report.name}: fetched {report.fetched}, new {report.new}, merged {report.merged}, "
        f"unchanged {report.unchanged}, skipped {len(report.skipped)}{notes}"
    )
    for skip in report.skipped[:SHOWN_SKIPS]:
        click.echo(f"  skipped {skip.ref}: {skip.reason}")
    if len(report.skipped) > SHOWN_SKIPS:
        click.echo(f"  ... and {len(report.skipped) - SHOWN_SKIPS} more skipped")


def _strip(message: str | None, name: str) -> str:
    return (message or "").removeprefix(f"{name}: ")


@click.command()
@click.option(
    "--source",
    "names",
    multiple=True,
    type=click.Choice(SOURCE_NAMES),
    help="Source to collect from (repeatable). Default: DIGEST_SOURCES, or file with --file.",
)
@click.option(
    "--file",
    "path",
    type=click.Path(path_type=Path),
    help="Papers file for the file source: HF daily-papers JSON or JSON Lines.",
)
@click.option(
    "--date",
    "day",
    callback=_day,
    metavar="YYYY-MM-DD",
    help="HF listing day (default: today, UTC; earlier days per DIGEST_HF_LOOKBACK_DAYS "
    "are read too). arXiv always gives its latest announcement.",
)
@pass_app
def collect(app: App, names: tuple[str, ...], path: Path | None, day: date | None) -> None:
    """Fetch newly listed papers into the database; print per source what changed.

    A source that fails is reported and the others still run; the exit code is 1 only
    when every source failed.

    Example: digest collect --file examples/papers.json
    """
    if not names:
        names = ("file",) if path is not None else tuple(app.settings.sources)
    if path is not None and "file" not in names:
        raise DigestError("--file is for the file source: add --source file")
    from digest.pipeline import collect as collect_into  # loads themes/rank: only when used
    from digest.pipeline import refresh

    known = app.store.ids_with_categories  # the arXiv details already stored are not asked again
    sources = [make_source(name, app.settings, path=path, known=known) for name in names]
    reports = collect_into(app.store, sources, day).sources
    # followups: the signals of papers recent emails showed (code, upvotes, arXiv versions).
    today = day or datetime.now(UTC).date()
    if (refreshed := refresh(app.store, app.settings, today, names=names)) is not None:
        reports.append(refreshed)
    for report in reports:
        _print(report)
    if all(r.error for r in reports):
        raise click.exceptions.Exit(1)
    if not any(r.new for r in reports):
        usable = sum(r.merged + r.unchanged for r in reports if not r.error)
        why = (
            "every paper fetched was already collected"
            if usable
            else "the sources listed no papers (a weekend, a holiday, or not announced yet)"
        )
        click.echo(f"nothing new: {why}")


def register(group: click.Group) -> None:
    """Attach this module's commands to the `digest` group."""
    group.add_command(collect)
