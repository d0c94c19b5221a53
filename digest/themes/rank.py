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
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

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
from digest.themes.people import Follows
from digest.themes.taxonomy import Taxonomy, keyword_pattern, load_taxonomy


class SelectionIndex(Protocol):
    """An edition's matches worked out once (digest.themes.matching.EditionIndex)."""

    def handles(self, subscriber: Subscriber) -> bool:
        """Whether it can answer for ``subscriber``."""

    def select(self, subscriber: Subscriber, default_max: int) -> Selection:
        """What `select` gives ``subscriber``."""


if TYPE_CHECKING:  # "for me" pulls in NumPy, SciPy and scikit-learn: only when selecting
    from digest.themes.foryou import ForMe, Lookup, Scores
    from digest.themes.relevance import Space

__all__ = [
    "for_me",
    "full_selection",
    "select_for",
    "SelectionIndex",
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
    import numpy as np

    from digest.themes.foryou import ForMe, Shown

    papers = edition.papers
    scores = [trending_score(p, now) for p in papers]
    # Each paper's place in the trending order (rank's tie-break): selection's last resort.
    order = sorted(
        range(len(papers)), key=lambda i: (-scores[i], _newest_first(papers[i].arxiv_id))
    )
    position = np.empty(len(papers), dtype=np.int64)
    position[order] = np.arange(len(papers))
    # What every selection shows of a paper, worked out once per edition, not per reader.
    # The theme of each paper: edition.papers runs theme by theme.
    groups = [g for g, theme in enumerate(edition.themes) for _ in theme.papers]
    shown = Shown([round(s, 3) for s in scores], [_signals_line(p) for p in papers], groups)
    return ForMe(papers, scores, shown, lookup, space, position)


def select(
    edition: Edition,
    subscriber: Subscriber,
    *,
    taxonomy: Taxonomy,
    default_max: int,
    now: datetime,
    index: SelectionIndex | None = None,
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
    ``index``: the edition's topic and keyword matches worked out once, for subscribers whose
    selection depends on nothing else (same result, microseconds instead of milliseconds).
    """
    if index is not None and index.handles(subscriber):
        return index.select(subscriber, default_max)
    import numpy as np

    scorer = scorer or for_me(edition, now)
    columns, followed, reasons = _candidates(scorer, subscriber, taxonomy)
    scores = scorer.scores(subscriber)
    cols = np.asarray(columns, dtype=np.int64)
    # Followed papers first; then the blend; ties keep the edition's trending order.
    keys = (scorer.position[cols], -scores.blended[cols])
    order = np.lexsort((*keys, [c not in followed for c in columns]) if followed else keys)
    kept = cols[order[: _limit(subscriber, default_max)]].tolist()
    whys = _whys(scorer, subscriber, scores, kept, followed, reasons)
    return _selection(edition, scorer, kept, whys, len(columns))


def _limit(subscriber: Subscriber, default_max: int) -> int:
    """How many papers the subscriber gets at most."""
    # The site-wide maximum caps everyone: it keeps an email under Gmail's clipping size.
    return max(0, min(subscriber.max_papers or default_max, default_max))


def _selection(
    edition: Edition, scorer: ForMe, kept: list[int], whys: list[str], candidates: int
) -> Selection:
    """The kept columns with their why lines, shown in the edition's themes and their order.

    Within a theme the papers keep the selection's order; the other ``candidates`` are omitted.
    """
    papers, scores, groups = scorer.papers, scorer.shown.scores, scorer.shown.groups
    by_theme: dict[int, list[SelectedPaper]] = {}
    for c, why in zip(kept, whys, strict=True):
        chosen, group = SelectedPaper(papers[c], scores[c], why), groups[c]
        if group in by_theme:
            by_theme[group].append(chosen)
        else:
            by_theme[group] = [chosen]
    themes = tuple(
        SelectedTheme(edition.themes[g].label, tuple(by_theme[g])) for g in sorted(by_theme)
    )
    return Selection(themes, omitted=candidates - len(kept))


def _candidates(
    scorer: ForMe, subscriber: Subscriber, taxonomy: Taxonomy
) -> tuple[list[int], dict[int, str], dict[int, list[str]]]:
    """The columns the subscriber may get, the follow phrase and the matched topics of each."""
    matcher = _Matcher(subscriber, taxonomy)
    follows = Follows(subscriber.follow_authors, subscriber.follow_orgs)
    rated = {*subscriber.likes, *subscriber.dislikes}
    skip = {scorer.columns[a] for a in rated if a in scorer.columns}
    floor = subscriber.min_score
    followed = {c: why for c, why in scorer.followed(follows).items() if c not in skip}
    reasons: dict[int, list[str]] = {}
    if matcher.everything and floor is None:
        # Every paper but the rated ones: no per-paper work (most readers, at any list size).
        return [c for c in range(len(scorer.papers)) if c not in skip], followed, reasons
    columns = []
    for column, paper in enumerate(scorer.papers):
        if column in skip:
            continue
        found = matcher.reasons(paper)
        if column not in followed and (
            found is None or (floor is not None and scorer.trending[column] < floor)
        ):
            continue
        columns.append(column)
        if found:
            reasons[column] = found
    return columns, followed, reasons


def _whys(
    scorer: ForMe,
    subscriber: Subscriber,
    scores: Scores,
    kept: list[int],
    followed: dict[int, str],
    reasons: dict[int, list[str]],
) -> list[str]:
    """The why line of each kept paper: a follow, the liked paper it resembles, signals, topics."""
    return _lines(scorer, kept, followed, _near(scorer, subscriber, scores, kept), reasons)


def _near(scorer: ForMe, subscriber: Subscriber, scores: Scores, kept: list[int]) -> dict[int, str]:
    """The kept papers that owe something to a liked one, with the phrase naming it."""
    # Only when the blend listens to likes and the paper stands above the edition's average
    # relevance to them.
    near: dict[int, str] = {}
    if scores.blend > 0 and scores.relevance is not None:
        from digest.themes.relevance import liked_why  # loaded already: they rated papers

        above = (scores.relevance[kept] > 0).tolist()
        owed = [c for c, yes in zip(kept, above, strict=True) if yes]
        for c, liked in zip(owed, scorer.nearest_liked(subscriber, owed), strict=True):
            if liked:
                near[c] = liked_why(liked)
    return near


def _lines(
    scorer: ForMe,
    kept: list[int],
    followed: dict[int, str],
    near: dict[int, str],
    reasons: dict[int, list[str]],
) -> list[str]:
    """The why lines of the kept papers, from their parts."""
    signals = scorer.shown.signals
    if not followed and not reasons:  # most readers with likes: as _why joins it, faster
        return [f"{near[c]} · {signals[c]}" if c in near else signals[c] for c in kept]
    return [
        _why(signals[c], reasons.get(c, ()), [p for p in (followed.get(c), near.get(c)) if p])
        for c in kept
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


def _signals_line(paper: Paper) -> str:
    """The paper's signals as the why line starts them: "12 upvotes · 3 comments", or "new"."""
    return " · ".join(signals(paper) or ["new"])


def _why(signals_line: str, reasons: Sequence[str], personal: Sequence[str] = ()) -> str:
    """One short line for the email: a follow or a like, the paper's signals line, topics."""
    return " · ".join([*personal, signals_line, *reasons[:2]])


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
