"""Which papers of an edition match which topic and keyword, worked out once per edition.

``rank.select`` asks, for every subscriber and every paper, whether the paper matches each of
the subscriber's topics (several regular expressions over title, keywords and abstract) and
keywords. With 100,000 subscribers that was 84% of a send. Here the edition is looked at once:
papers are put in trending order, and each taxonomy topic (and each keyword anyone asks for,
remembered as it comes) becomes one column of a paper x topic boolean matrix, stored as a
Python int whose bit i says whether the i-th best paper matches. A subscriber's candidates are
then the OR of a few ints, and their best papers the lowest set bits: microseconds, whatever
the size of the edition. The Selection is the one ``rank.select`` gives (tests/test_matching.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from digest.models import Edition, SelectedPaper, SelectedTheme, Selection, Subscriber
from digest.themes.rank import _newest_first, _signals_line, trending_score
from digest.themes.taxonomy import Taxonomy, Topic, keyword_pattern

__all__ = ["EditionIndex"]

_KEYWORD_MEMO = 4096  # distinct keywords remembered per edition (each is one int)
_CHOSEN_MEMO = 50_000  # papers with their reasons remembered (small, frozen, shared)


@dataclass(frozen=True, slots=True)
class _Ranked:
    """One paper of the edition at its place in trending order."""

    selected: SelectedPaper  # score rounded and why as `select` gives them, without reasons
    signals: str  # the start of its "why" line
    themes: tuple[int, ...]  # indexes of the edition's themes that hold it


class EditionIndex:
    """An edition's papers in trending order with one bit column per topic and keyword."""

    def __init__(self, edition: Edition, taxonomy: Taxonomy, now: datetime) -> None:
        scored = [(trending_score(p, now), p) for p in edition.papers]
        scored.sort(key=lambda c: (-c[0], _newest_first(c[1].arxiv_id)))
        themes_of: dict[str, list[int]] = {}
        for ti, theme in enumerate(edition.themes):
            for p in theme.papers:
                themes_of.setdefault(p.arxiv_id, []).append(ti)
        self.scores = [s for s, _ in scored]
        self.papers = [p for _, p in scored]
        lines = [_signals_line(p) for _, p in scored]
        self.ranked = [
            _Ranked(SelectedPaper(p, round(s, 3), line), line, tuple(themes_of.get(p.arxiv_id, ())))
            for (s, p), line in zip(scored, lines, strict=True)
        ]
        self.labels = [t.label for t in edition.themes]
        self.taxonomy = taxonomy
        self._texts = [" \n ".join((p.title, p.abstract, *p.keywords)) for p in self.papers]
        self._topics: dict[str, int] = {t.name: self._column_of(t) for t in taxonomy.entries}
        self._keywords: dict[str, int] = {}
        # Per topic name as subscribers write it: its (reason, column), None for a free-text
        # topic; per paper and reasons, what it shows. Both repeat across a list's readers.
        self._found: dict[str, tuple[str, int] | None] = {}
        self._chosen: dict[tuple[int, tuple[str, ...]], SelectedPaper] = {}
        self.everyone = (1 << len(self.papers)) - 1

    def _column_of(self, topic: Topic) -> int:
        bits = 0
        for i, paper in enumerate(self.papers):
            if topic.matches(paper):
                bits |= 1 << i
        return bits

    def keyword_column(self, keyword: str) -> int:
        """The bit column of one keyword (as `select` matches it), computed on first use."""
        bits = self._keywords.get(keyword)
        if bits is None:
            pattern = keyword_pattern(keyword)
            bits = 0
            for i, text in enumerate(self._texts):
                if pattern.search(text):
                    bits |= 1 << i
            if len(self._keywords) >= _KEYWORD_MEMO:
                self._keywords.clear()
            self._keywords[keyword] = bits
        return bits

    @staticmethod
    def handles(subscriber: Subscriber) -> bool:
        """Whether the selection depends on nothing but topics, keywords and limits."""
        s = subscriber
        return not (s.likes or s.dislikes or s.follow_authors or s.follow_orgs)

    def candidates(self, subscriber: Subscriber) -> tuple[list[tuple[str, int]], int]:
        """The subscriber's (reason, column) pairs in `select`'s order, and the bits of the
        papers their topics, keywords and minimum score let in (no topic or keyword: all)."""
        wanted: list[tuple[str, int]] = []
        keywords = [k for k in subscriber.keywords if k.strip()]
        for name in subscriber.topics:
            if not name.strip():
                continue
            found = self._found.get(name, False)
            if found is False:
                if len(self._found) >= _KEYWORD_MEMO:
                    self._found.clear()
                topic = self.taxonomy.find(name)
                found = self._found[name] = (
                    None if topic is None else (f"matches {topic.name}", self._topics[topic.name])
                )
            if found is not None:
                wanted.append(found)  # type: ignore[arg-type]
            else:
                keywords.append(name)  # a free-text topic: treat it as a keyword
        wanted += [
            (f'mentions "{k.strip()}"', self.keyword_column(k)) for k in dict.fromkeys(keywords)
        ]
        mask = self.everyone
        if wanted:
            mask = 0
            for _, column in wanted:
                mask |= column
        if subscriber.min_score is not None:  # scores fall with the bit index
            above = _count_at_least(self.scores, subscriber.min_score)
            mask &= (1 << above) - 1
        return wanted, mask

    def select(self, subscriber: Subscriber, default_max: int) -> Selection:
        """What `rank.select` gives ``subscriber`` (who must be one this index ``handles``)."""
        wanted, mask = self.candidates(subscriber)
        limit = max(0, min(subscriber.max_papers or default_max, default_max))
        kept: list[int] = []
        rest = mask
        while rest and len(kept) < limit:
            low = rest & -rest
            kept.append(low.bit_length() - 1)
            rest ^= low
        groups: dict[int, list[SelectedPaper]] = {}
        for i in kept:
            ranked = self.ranked[i]
            chosen = ranked.selected
            if wanted:
                bit = 1 << i
                reasons = tuple([r for r, column in wanted if column & bit][:2])
                key = (i, reasons)
                shown = self._chosen.get(key)
                if shown is None:
                    if len(self._chosen) >= _CHOSEN_MEMO:
                        self._chosen.clear()
                    why = " · ".join([ranked.signals, *reasons])
                    shown = self._chosen[key] = SelectedPaper(chosen.paper, chosen.score, why)
                chosen = shown
            for ti in ranked.themes:
                groups.setdefault(ti, []).append(chosen)
        themes = tuple(SelectedTheme(self.labels[ti], tuple(groups[ti])) for ti in sorted(groups))
        return Selection(themes, omitted=mask.bit_count() - len(kept))


def _count_at_least(scores: Sequence[float], floor: float) -> int:
    """How many of ``scores`` (descending) are at least ``floor``."""
    lo, hi = 0, len(scores)
    while lo < hi:
        mid = (lo + hi) // 2
        if scores[mid] >= floor:
            lo = mid + 1
        else:
            hi = mid
    return lo
