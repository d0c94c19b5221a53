"""A paper as the archive pages show it, after the Hugging Face papers page it seeds from.

Title, summary, authors, organisation, date, upvotes, code and project links, and the
source's thumbnail where there is one. Shaping only: escaping is the templates' job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from digest.mail.text import clean, format_authors, safe_url, shorten, summarize, thumbnail
from digest.models import Paper

__all__ = ["PaperCard", "long_date", "short_date"]

TITLE_CHARS = 300


def long_date(day: date) -> str:
    """``Friday 25 October 2024``: how an edition is named."""
    return f"{day:%A} {day.day} {day:%B %Y}"


def short_date(when: datetime | date) -> str:
    """``25 Oct 2024``: how a paper's date is shown."""
    return f"{when.day} {when:%b %Y}"


def _count(n: int) -> str:
    return f"{n / 1000:.1f}k".replace(".0k", "k") if n >= 1000 else str(n)


@dataclass(frozen=True, slots=True)
class PaperCard:
    """What an archive page shows of one paper."""

    anchor: str
    title: str
    url: str
    authors: str
    organization: str
    summary: str
    upvotes: int
    comments: int
    day: str
    day_iso: str
    links: tuple[tuple[str, str], ...]
    thumbnail: str | None

    @classmethod
    def of(cls, paper: Paper) -> PaperCard:
        """Shape ``paper`` for an archive page."""
        when = paper.published_at or paper.listed_at
        links = []
        if github := safe_url(paper.github_url):
            stars = f" ★ {_count(paper.github_stars)}" if paper.github_stars else ""
            links.append((f"Code{stars}", github))
        if project := safe_url(paper.project_url):
            links.append(("Project", project))
        links.append(
            ("arXiv", paper.abs_url) if paper.url != paper.abs_url else ("PDF", paper.pdf_url)
        )
        return cls(
            anchor=f"p-{paper.arxiv_id}",
            title=shorten(clean(paper.title[: TITLE_CHARS * 4]), TITLE_CHARS) or paper.arxiv_id,
            url=paper.url,
            authors=format_authors(paper.authors),
            organization=clean(paper.organization),
            summary=summarize(paper),
            upvotes=paper.upvotes,
            comments=paper.comments,
            day=short_date(when) if when else "",
            day_iso=when.date().isoformat() if when else "",
            links=tuple(links),
            thumbnail=thumbnail(paper.thumbnail_url),
        )
