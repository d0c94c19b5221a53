""" "Since you last saw it": which papers of a reader's earlier emails have news worth telling.

News is a code repository or a project page the paper did not have when the email showed it,
a newer arXiv version, or a surge: upvotes or GitHub stars at least doubled and at least
SURGE_MIN_GAIN more. Each paper is told once per reader (the store keeps that), at most
MAX_FOLLOWUPS per email, strongest news first. Pure: the store gives the snapshots.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import timedelta

from digest.models import Paper
from digest.store.shown import SURGE_MIN_GAIN, Seen

__all__ = [
    "FOLLOWUP_WINDOW",
    "MAX_FOLLOWUPS",
    "Followup",
    "choose_followups",
    "news_of",
    "order_followups",
    "pick_followups",
    "surged",
]

MAX_FOLLOWUPS = 5  # a short section: the edition's own papers stay the email's point
FOLLOWUP_WINDOW = timedelta(days=30)  # papers shown longer ago are not followed (nor refreshed)

# The kinds of news, strongest first: it orders the section and breaks ties.
_CODE, _PROJECT, _VERSION, _SURGE = range(4)


@dataclass(frozen=True, slots=True)
class Followup:
    """One paper to tell a reader about again, and what happened to it since."""

    paper: Paper
    seen: Seen
    news: tuple[str, ...]  # e.g. ("code released", "upvotes 12 → 48")
    rank: int = 0  # the strongest kind of news (0 code .. 3 surge), for ordering


def surged(before: int | None, now: int | None) -> bool:
    """At least doubled and at least SURGE_MIN_GAIN more (an unknown "before" never surges)."""
    if before is None or now is None:
        return False
    return now >= 2 * before and now - before >= SURGE_MIN_GAIN


def news_of(seen: Seen, paper: Paper) -> list[tuple[int, str]]:
    """What happened to ``paper`` since ``seen``: (kind, words) pairs, strongest first."""
    news: list[tuple[int, str]] = []
    if paper.github_url and not seen.github_url:
        news.append((_CODE, "code released"))
    if paper.project_url and not seen.project_url:
        news.append((_PROJECT, "project page"))
    if paper.version and seen.version and paper.version > seen.version:
        news.append((_VERSION, f"arXiv v{paper.version} (you saw v{seen.version})"))
    if surged(seen.upvotes, paper.upvotes):
        news.append((_SURGE, f"upvotes {seen.upvotes:,} → {paper.upvotes:,}"))
    if seen.github_url and surged(seen.github_stars, paper.github_stars):
        news.append((_SURGE, f"GitHub stars {seen.github_stars:,} → {paper.github_stars:,}"))
    return news


def order_followups(candidates: Iterable[tuple[Seen, Paper]]) -> list[Followup]:
    """The candidates with news as Followups, strongest first (code, project, version, surge).

    Among equals the bigger upvote gain comes first, then the earlier shown.
    """
    found = []
    for seen, paper in candidates:
        news = news_of(seen, paper)
        if news:
            found.append(Followup(paper, seen, tuple(words for _, words in news), news[0][0]))
    found.sort(key=lambda f: (f.rank, -(f.paper.upvotes - f.seen.upvotes), f.seen.shown_at))
    return found


def pick_followups(
    ordered: Iterable[Followup],
    wanted: Callable[[Followup], bool],
    *,
    exclude: Collection[str] = (),
    limit: int = MAX_FOLLOWUPS,
) -> tuple[Followup, ...]:
    """The first ``limit`` of ``ordered`` that ``wanted`` keeps, one per paper.

    ``exclude``: arXiv ids the email shows anyway (its own edition's papers).
    """
    picked: list[Followup] = []
    names: set[str] = set()
    for followup in ordered:
        arxiv_id = followup.paper.arxiv_id
        if arxiv_id in names or arxiv_id in exclude or not wanted(followup):
            continue
        picked.append(followup)
        names.add(arxiv_id)
        if len(picked) == limit:
            break
    return tuple(picked)


def choose_followups(
    candidates: Iterable[tuple[Seen, Paper]],
    *,
    exclude: Collection[str] = (),
    limit: int = MAX_FOLLOWUPS,
) -> tuple[Followup, ...]:
    """The follow-ups of one email: papers with news, strongest first, at most ``limit``."""
    return pick_followups(order_followups(candidates), lambda _: True, exclude=exclude, limit=limit)
