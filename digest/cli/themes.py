"""`digest themes PATH`: group any papers file by theme, without touching the database."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click

from digest.cli import App, pass_app
from digest.models import Paper
from digest.sources.jsonfile import load_papers
from digest.themes.embeddings import load_embedder
from digest.themes.rank import order_themes, trending_score

__all__ = ["register", "themes"]

SHOWN_SKIPS = 10


@click.command()
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the themes as JSON.")
@pass_app
def themes(app: App, path: Path, as_json: bool) -> None:
    """Group the papers of PATH by theme and show labels, sizes and rank signals.

    PATH is a Hugging Face daily-papers JSON list or JSON Lines with id, title and abstract.
    With --json prints {"themes": [{"label": ..., "papers": [id, ...]}, ...]}, every paper
    of the file in exactly one theme. The database is not used. DIGEST_THEMES_EMBEDDINGS=true
    groups with sentence embeddings (the `embeddings` extra).

    Example: digest themes examples/papers.json --json
    """
    from digest.themes.grouping import group  # numpy and the space: only this command

    result = load_papers(path)
    for skip in result.skipped[:SHOWN_SKIPS]:
        click.echo(f"skipped {skip}", err=True)
    if len(result.skipped) > SHOWN_SKIPS:
        click.echo(f"... and {len(result.skipped) - SHOWN_SKIPS} more skipped", err=True)
    now = _file_now(result.papers)
    embed = load_embedder() if app.settings.themes_embeddings else None
    grouped = order_themes(group(result.papers, embed=embed), now)
    if as_json:
        out = {
            "themes": [
                {"label": t.label, "papers": [p.arxiv_id for p in t.papers]} for t in grouped
            ]
        }
        click.echo(json.dumps(out, indent=2, ensure_ascii=False))
        return
    click.echo(f"{len(result.papers)} papers in {len(grouped)} themes")
    for theme in grouped:
        click.echo(f"\n{theme.label} ({len(theme.papers)})")
        for paper in theme.papers:
            signals = f"{paper.upvotes:>4} up {paper.comments:>3} cm"
            if paper.github_stars:
                signals += f" {paper.github_stars:>6} stars"
            score = trending_score(paper, now)
            click.echo(f"  {score:7.1f}  {signals}  {paper.arxiv_id}  {_short(paper.title)}")


def _file_now(papers: list[Paper]) -> datetime:
    """The newest date in the file, so an old export ranks as it did on its own day."""
    dates = [d for p in papers for d in (p.listed_at, p.published_at) if d is not None]
    return max(dates, default=datetime.now(UTC))


def _short(title: str, width: int = 80) -> str:
    title = " ".join(title.split())
    return title if len(title) <= width else title[: width - 1] + "…"


def register(group: click.Group) -> None:
    """Attach this module's commands to the `digest` group."""
    group.add_command(themes)
