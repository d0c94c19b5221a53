"""What the "Since you last saw it" section of an email shows of each follow-up."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from digest.mail.text import clean, safe_url, shorten
from digest.themes.followups import Followup

__all__ = ["FollowupView", "followup_views"]

TITLE_CHARS = 200


@dataclass(frozen=True, slots=True)
class FollowupView:
    """One follow-up as the templates show it (escaping is the template's job)."""

    title: str
    url: str
    news: str  # "code released · upvotes 12 → 48"
    seen: str  # "in your email of 24 Nov"
    links: tuple[tuple[str, str], ...]


def followup_views(followups: Iterable[Followup]) -> list[FollowupView]:
    """Shape follow-ups for display: title, what is new, when the reader saw it, new links."""
    views = []
    for f in followups:
        paper = f.paper
        links = []
        for label, url, was in (
            ("Code", paper.github_url, f.seen.github_url),
            ("Project", paper.project_url, f.seen.project_url),
        ):
            if safe_url(url) and not was:  # the links that are news; the rest is on the paper
                links.append((label, safe_url(url)))
        links.append(("arXiv", paper.abs_url))
        day = f.seen.shown_at
        views.append(
            FollowupView(
                title=shorten(clean(paper.title), TITLE_CHARS) or paper.arxiv_id,
                url=paper.url,
                news=" · ".join(f.news),
                seen=f"in your email of {day.day} {day:%b}",
                links=tuple(links),
            )
        )
    return views
