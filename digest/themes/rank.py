"""What is trending, in what order themes appear, and which papers each subscriber gets.

The trending score (documented in the README):

    engagement = upvotes + 2 * comments + 3 * log2(1 + github_stars) + 1
    score      = engagement * 0.5 ** (min(age_days, 7) / 2)

Comments count double (people talk about papers they care about); stars are logarithmic so a
famous repository cannot drown out the day's votes; the +1 lets a paper nobody voted for yet
still rank by freshness. The score halves every 2 days of age, so today's paper with 30
upvotes (31) beats a 3-day-old one with 40 (41 * 0.35 = 14.5). Age runs from when a listing
showed the paper (``listed_at``), else its arXiv date, else when digest first saw it.
Age stops counting after a week: the decay is there to let today's papers compete with the
week's, and past a week every paper is simply old, so its votes alone decide (otherwise a
backlog of year-old papers would sort by listing date, whatever their votes).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from digest.config import Settings
from digest.models import (
    REMAINDER_LABEL,
    Edition,
    Paper,
    SelectedPaper,
    SelectedTheme,
    Selection,
    Subscriber,
    Theme,
)
from digest.themes.foryou import ForMe, Lookup, Scores
from digest.themes.people import Follows
from digest.themes.relevance import Space, liked_why
from digest.themes.taxonomy import Taxonomy, keyword_pattern, load_taxonomy

__all__ = [
    "for_me",
    "full_selection",
    "select_for",
    "HALF_LIFE_DAYS",
    "MAX_AGE_DAYS",
    "signals",
    "order_themes",
    "select",
    "selection_key",
    "trending_score",
]

HALF_LIFE_DAYS = 2.0
MAX_AGE_DAYS = 7.0
_TOP = 3  # a theme's rank is the sum of its best three papers' scores


def trending_score(paper: Paper, now: datetime) -> float:
    """The paper's trending score at ``now`` (see the module docs for the formula)."""
    engagement = (
        paper.upvotes + 2 * paper.comments + 3 * math.log2(1 + max(0, paper.github_stars or 0)) + 1
    )
    return engagement * 0.5 ** (_age_days(paper, now) / HALF_LIFE_DAYS)


def _age_days(paper: Paper, now: datetime) -> float:
    seen = paper.listed_at or paper.published_at or paper.first_seen_at
    if seen is None:
        return 0.0
    return min(MAX_AGE_DAYS, max(0.0, (now - seen).total_seconds() / 86400))


def _by_score(papers: Iterable[Paper], now: datetime) -> list[Paper]:
    # Ties (say, no votes yet) fall back to the arXiv id, newest first, so order is stable.
    return sorted(papers, key=lambda p: (-trending_score(p, now), _newest_first(p.arxiv_id)))


def _newest_first(arxiv_id: str) -> tuple:
    return tuple(-ord(c) for c in arxiv_id)


def _is_remainder(label: str) -> bool:
    return label == REMAINDER_LABEL


def _theme_rank(scores: Sequence[float]) -> float:
    return sum(sorted(scores, reverse=True)[:_TOP])


def order_themes(themes: Sequence[Theme], now: datetime) -> list[Theme]:
    """Papers by score within each theme; themes by their best papers; the remainder last.

    A theme ranks by the summed scores of its top three papers, so one hit and two strong
    papers both count, and a big theme of unvoted papers does not win by size alone.
    """
    ordered = [Theme(t.label, tuple(_by_score(t.papers, now))) for t in themes]

    def key(theme: Theme) -> tuple:
        rank = _theme_rank([trending_score(p, now) for p in theme.papers])
        return (_is_remainder(theme.label), -rank, -len(theme.papers), theme.label)

    return sorted(ordered, key=key)


def selection_key(subscriber: Subscriber) -> Hashable:
    """What a subscriber's selection depends on: equal keys get equal Selections.

    Lets delivery prepare each distinct digest once, however many subscribers share it.
    Likes, dislikes, the blend and follows count too (a reader with likes rarely shares a key).
    """
    # Case is kept: a keyword in capitals ("RAG") matches differently from "rag".
    return (
        tuple(sorted({t.strip() for t in subscriber.topics if t.strip()})),
        tuple(sorted({k.strip() for k in subscriber.keywords if k.strip()})),
        subscriber.max_papers,
        subscriber.min_score,
        tuple(sorted(subscriber.likes)),
        tuple(sorted(subscriber.dislikes)),
        subscriber.blend,
        tuple(sorted(subscriber.follow_authors)),
        tuple(sorted(subscriber.follow_orgs)),
    )


def for_me(
    edition: Edition, now: datetime, lookup: Lookup | None = None, space: Space | None = None
) -> ForMe:
    """The edition's "for me" scorer: trending computed once, rated papers through ``lookup``.

    Build one per edition and pass it to every `select` of that edition.
    """
    papers = edition.papers
    return ForMe(papers, [trending_score(p, now) for p in papers], lookup, space)


@dataclass(frozen=True)
class _Candidate:
    column: int
    paper: Paper
    score: float  # trending
    rank: float  # blended trending and relevance: what the selection orders by
    followed: str | None  # the why phrase of a follow
    reasons: list[str]

    def order(self) -> tuple:
        # Followed papers first; then the blend; ties keep the trending order (rank's tie-break).
        return (self.followed is None, -self.rank, -self.score, _newest_first(self.paper.arxiv_id))


def select(
    edition: Edition,
    subscriber: Subscriber,
    *,
    taxonomy: Taxonomy,
    default_max: int,
    now: datetime,
    scorer: ForMe | None = None,
) -> Selection:
    """The papers of ``edition`` one subscriber gets, grouped as the edition groups them.

    A paper qualifies if it matches one of the subscriber's topics (via the taxonomy; a topic
    the taxonomy does not know is matched as a keyword) or keywords; with neither, every
    paper does. Papers under the subscriber's minimum score are dropped. A paper by an author
    or organisation the subscriber follows always qualifies, whatever the topics, minimum
    score or blend, and comes first; a paper they liked or disliked never does. The best
    ``max_papers`` (the subscriber's if fewer than ``default_max``) by trending blended with
    relevance to their likes (``scorer``, see digest.themes.foryou) are kept; the rest count
    in ``omitted``. Themes keep the edition's order; each paper carries a one-line "why".
    """
    scorer = scorer or for_me(edition, now)
    matcher = _Matcher(subscriber, taxonomy)
    follows = Follows(subscriber.follow_authors, subscriber.follow_orgs)
    rated = {*subscriber.likes, *subscriber.dislikes}
    scores = scorer.scores(subscriber)
    # The site-wide maximum caps everyone: it keeps an email under Gmail's clipping size.
    limit = max(0, min(subscriber.max_papers or default_max, default_max))
    candidates: list[_Candidate] = []
    for column, paper in enumerate(scorer.papers):
        if paper.arxiv_id in rated:
            continue
        followed = follows.match(paper) if follows else None
        reasons = matcher.reasons(paper)
        score = float(scorer.trending[column])
        if followed is None and (
            reasons is None or (subscriber.min_score is not None and score < subscriber.min_score)
        ):
            continue
        rank = float(scores.blended[column])
        candidates.append(_Candidate(column, paper, score, rank, followed, reasons or []))
    candidates.sort(key=_Candidate.order)
    kept = candidates[:limit]
    whys = _whys(scorer, subscriber, scores, kept)
    position = {c.paper.arxiv_id: i for i, c in enumerate(kept)}

    themes = []
    for theme in edition.themes:
        picked = sorted(position[p.arxiv_id] for p in theme.papers if p.arxiv_id in position)
        if picked:
            papers = tuple(
                SelectedPaper(kept[i].paper, round(kept[i].score, 3), whys[i]) for i in picked
            )
            themes.append(SelectedTheme(theme.label, papers))
    return Selection(tuple(themes), omitted=len(candidates) - len(kept))


def _whys(
    scorer: ForMe, subscriber: Subscriber, scores: Scores, kept: list[_Candidate]
) -> list[str]:
    """The why line of each kept paper: a follow, the liked paper it resembles, signals, topics."""
    # A paper owes something to a liked one only when the blend listens to likes and the
    # paper stands above the edition's average relevance to them.
    near = [None] * len(kept)
    if scores.blend > 0 and scores.relevance is not None:
        owed = [i for i, c in enumerate(kept) if scores.relevance[c.column] > 0]
        for i, liked in zip(
            owed, scorer.nearest_liked(subscriber, [kept[i].column for i in owed]), strict=True
        ):
            near[i] = liked
    return [
        _why(c.paper, c.reasons, [p for p in (c.followed, near[i] and liked_why(near[i])) if p])
        for i, c in enumerate(kept)
    ]


class _Matcher:
    """Which of a subscriber's topics and keywords a paper matches."""

    def __init__(self, subscriber: Subscriber, taxonomy: Taxonomy) -> None:
        self.topics = []
        keywords = [k for k in subscriber.keywords if k.strip()]
        for name in subscriber.topics:
            if not name.strip():
                continue
            topic = taxonomy.find(name)
            if topic is not None:
                self.topics.append(topic)
            else:
                keywords.append(name)  # a free-text topic: treat it as a keyword
        self.keywords = [(k.strip(), keyword_pattern(k)) for k in dict.fromkeys(keywords)]
        self.everything = not self.topics and not self.keywords

    def reasons(self, paper: Paper) -> list[str] | None:
        """What the paper matched (empty when the subscriber takes everything), or None."""
        if self.everything:
            return []
        found = [f"matches {t.name}" for t in self.topics if t.matches(paper)]
        text = " \n ".join((paper.title, paper.abstract, *paper.keywords))
        found += [f'mentions "{word}"' for word, pattern in self.keywords if pattern.search(text)]
        return found or None


def signals(paper: Paper) -> list[str]:
    """The paper's rank signals as short phrases: "42 upvotes", "3 comments", "1.2k GitHub stars"."""
    parts = []
    if paper.upvotes:
        parts.append(_count(paper.upvotes, "upvote"))
    if paper.comments:
        parts.append(_count(paper.comments, "comment"))
    if paper.github_stars:
        parts.append(_count(paper.github_stars, "GitHub star"))
    return parts


def _why(paper: Paper, reasons: list[str], personal: Sequence[str] = ()) -> str:
    """One short line for the email: a follow or a like, the paper's signals (or "new"), topics."""
    return " · ".join([*personal, *(signals(paper) or ["new"]), *reasons[:2]])


def _count(n: int, noun: str) -> str:
    shown = f"{n / 1000:.1f}k".replace(".0k", "k") if n >= 1000 else str(n)
    return f"{shown} {noun}{'' if n == 1 else 's'}"


def full_selection(edition: Edition, max_papers: int | None = None) -> Selection:
    """Every paper of ``edition`` as one Selection, the rest past ``max_papers`` omitted.

    For previews when no per-subscriber selection applies.
    """
    left = max_papers if max_papers is not None else len(edition.papers)
    themes = []
    for theme in edition.themes:
        take = theme.papers[: max(left, 0)]
        left -= len(take)
        if take:
            themes.append(SelectedTheme(theme.label, tuple(SelectedPaper(p) for p in take)))
    shown = sum(len(t.papers) for t in themes)
    return Selection(tuple(themes), omitted=len(edition.papers) - shown)


def select_for(
    edition: Edition, subscriber: Subscriber, settings: Settings, lookup: Lookup | None = None
) -> Selection:
    """What ``subscriber`` gets of ``edition`` now, as `select` chooses it.

    Used by previews (``lookup`` finds the papers they rated); delivery calls `select` itself.
    """
    taxonomy = load_taxonomy(settings.taxonomy_file)
    now = datetime.now(UTC)
    return select(
        edition,
        subscriber,
        taxonomy=taxonomy,
        default_max=settings.max_papers,
        now=now,
        scorer=for_me(edition, now, lookup),
    )
