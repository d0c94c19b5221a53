""" "For me" over one edition: each reader's blended score of its papers, batch by batch.

An edition is scored for many readers: its papers' vectors and trending ranks are computed
once here, the papers readers liked or disliked are looked up (``lookup``, the store's
``get_papers``) and turned into vectors once per edition, and ``prepare`` scores a batch of
readers with one sparse product and one matrix product (digest.themes.relevance). The send
calls ``prepare`` on each claimed batch; ``scores`` then hands `select` one reader's row.
Readers with the same likes, dislikes and blend share one row.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
from threadpoolctl import ThreadpoolController

from digest.models import Paper, Subscriber
from digest.themes.people import Byline, Follows, byline

if TYPE_CHECKING:  # relevance pulls in SciPy and scikit-learn: imported once someone rated
    from digest.themes.relevance import Ratings, Space

__all__ = ["ForMe", "Lookup", "Scores"]

# arXiv ids -> the stored papers among them (missing ids are simply absent).
Lookup = Callable[[Collection[str]], Mapping[str, Paper]]


@dataclass(frozen=True)
class Scores:
    """One reader's view of the edition: the blend used, and per paper blended and relevance."""

    blend: float
    blended: np.ndarray  # (papers,) what selection orders by
    relevance: np.ndarray | None  # (papers,) z-scores; None when the reader rated nothing known
    liked: np.ndarray | None = None  # rows of the rated vectors the reader liked


_KEPT = 4096  # rows kept beside a prepared batch: about 5 MB at 150 papers


def _key(subscriber: Subscriber) -> Hashable:
    return (subscriber.likes, subscriber.dislikes, subscriber.blend)


class ForMe:
    """The papers of one edition in the text space, and readers' scores over them."""

    def __init__(
        self,
        papers: Sequence[Paper],
        trending: Sequence[float],
        lookup: Lookup | None = None,
        space: Space | None = None,
        position: np.ndarray | None = None,
        groups: np.ndarray | None = None,
    ) -> None:
        self.papers = tuple(papers)
        n = len(self.papers)
        # Each paper's place in the trending order (ties broken as the edition's owner wants),
        # and the theme it is shown in.
        self.position = np.arange(n) if position is None else position
        self.groups = np.zeros(n, dtype=np.int64) if groups is None else groups
        self.columns = {p.arxiv_id: i for i, p in enumerate(self.papers)}
        self.trending = np.asarray(trending, dtype=np.float64)
        # Readers who rated nothing are ordered by trending alone: a flat score, then position.
        self._flat = np.zeros(n, dtype=np.float32)
        self._lookup, self._space = lookup, space
        self._edition_vectors: np.ndarray | None = None
        self._rated: dict[str, int] = {}  # arXiv id -> row of _vectors; absent: not looked up
        self._unknown: set[str] = set()  # looked up, not stored: no text, no vector
        self._ids: list[str] = []  # arXiv id of each row of _vectors
        self._vectors = np.zeros((0, 0), dtype=np.float32)
        self._rows: dict[Hashable, Scores] = {}
        self._bylines: list[Byline] = []  # folded authors, built with _surnames on first need
        self._surnames: dict[str, list[int]] | None = None

    @cached_property
    def standard(self) -> np.ndarray:
        """Trending as standard percentile ranks (relevance.standard_trending), on first need."""
        from digest.themes.relevance import standard_trending

        return standard_trending(self.trending)

    @cached_property
    def _blas(self) -> ThreadpoolController:
        # Made on first need: it inspects the loaded libraries, so only once NumPy works.
        return ThreadpoolController()

    @property
    def edition_vectors(self) -> np.ndarray:
        """The edition's papers as unit rows, computed on first need (nobody rated: never)."""
        if self._edition_vectors is None:
            from digest.themes.relevance import paper_vectors

            self._edition_vectors = paper_vectors(self.papers, self._space)
        return self._edition_vectors

    def _load(self, arxiv_ids: Collection[str]) -> None:
        """Vectors of rated papers not seen yet: one lookup and one projection for all of them."""
        wanted = {a for a in arxiv_ids if a not in self._rated and a not in self._unknown}
        if not wanted:
            return
        found = dict(self._lookup(wanted)) if self._lookup else {}
        for arxiv_id in wanted:  # a paper of this edition needs no lookup
            if arxiv_id not in found and arxiv_id in self.columns:
                found[arxiv_id] = self.papers[self.columns[arxiv_id]]
        self._unknown.update(wanted - found.keys())
        if not found:
            return
        from digest.themes.relevance import paper_vectors

        ids = sorted(found)
        new = paper_vectors([found[a] for a in ids], self._space)
        start = len(self._rated)
        self._vectors = new if start == 0 else np.vstack([self._vectors, new])
        self._rated.update({a: start + i for i, a in enumerate(ids)})
        self._ids += ids  # row -> arXiv id

    def _ratings(self, readers: Sequence[Subscriber]) -> Ratings:
        """The readers' likes and dislikes as rows of the rated vectors (unknown papers left out)."""
        rows, flags, counts = [], [], []
        get = self._rated.get
        for s in readers:
            likes = [r for r in map(get, s.likes) if r is not None]
            dislikes = [r for r in map(get, s.dislikes) if r is not None]
            rows += likes
            rows += dislikes
            flags += [True] * len(likes) + [False] * len(dislikes)
            counts.append(len(likes) + len(dislikes))
        from digest.themes.relevance import Ratings

        indptr = np.zeros(len(readers) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return Ratings(indptr, np.asarray(rows, dtype=np.int64), np.asarray(flags, dtype=bool))

    def prepare(self, subscribers: Sequence[Subscriber]) -> None:
        """Score a batch of readers at once; `scores` then answers for them without more work.

        Only the last batch is kept, so memory stays flat at any list size.
        """
        self._rows.clear()
        self._score(subscribers)

    def _score(self, subscribers: Sequence[Subscriber]) -> None:
        from digest.themes import relevance as rel

        todo: dict[Hashable, Subscriber] = {}
        for s in subscribers:
            if s.likes or s.dislikes:
                todo.setdefault(_key(s), s)
        if not todo:
            return
        readers = list(todo.values())
        known, unknown = self._rated, self._unknown
        self._load(
            [
                a
                for s in readers
                for a in (*s.likes, *s.dislikes)
                if a not in known and a not in unknown
            ]
        )
        ratings = self._ratings(readers)
        rated = ratings.indptr[1:] > ratings.indptr[:-1]
        if not rated.any():
            relevant = np.zeros((len(readers), len(self.papers)), dtype=np.float32)
        else:
            # One thread: the products are small, and OpenBLAS waking its threads on a busy
            # 2-core machine cost 27 ms per batch of 200 against 0.08 ms for the product.
            with self._blas.limit(limits=1, user_api="blas"):
                profile = rel.profiles(ratings, self._vectors)
                relevant = rel.standard_relevance(rel.relevance(profile, self.edition_vectors))
        blends = np.array([rel.blend_for(s.blend, len(s.likes)) for s in readers])
        mixed = rel.blended(self.standard, relevant, blends)
        bounds = ratings.indptr.tolist()
        for i, key in enumerate(todo):
            lo, hi = bounds[i], bounds[i + 1]
            liked = ratings.paper[lo:hi][ratings.liked[lo:hi]]
            self._rows[key] = Scores(
                float(blends[i]), mixed[i], relevant[i] if rated[i] else None, liked
            )

    def scores(self, subscriber: Subscriber) -> Scores:
        """The reader's scores: from the prepared batch, else computed for them alone."""
        if not (subscriber.likes or subscriber.dislikes):
            # Whatever their blend, nothing to be relevant to: the trending order.
            return Scores(subscriber.blend or 0.0, self._flat, None)
        key = _key(subscriber)
        if key not in self._rows:
            # Not in the prepared batch (a preview, a retried row): scored alone, and the
            # batch's rows kept for the rest of it, within a bound.
            if len(self._rows) >= _KEPT:
                self._rows.clear()
            self._score([subscriber])
        return self._rows[key]

    def followed(self, follows: Follows) -> dict[int, str]:
        """The columns of papers by people or organisations the reader follows, with the why.

        Authors are folded once per edition and indexed by surname, so a reader's follows
        are checked against the few papers with a namesake, not against every paper.
        """
        if not follows:
            return {}
        if self._surnames is None:
            self._bylines = [byline(p) for p in self.papers]
            self._surnames = {}
            for column, folded in enumerate(self._bylines):
                for surname in folded.authors:
                    self._surnames.setdefault(surname, []).append(column)
        maybe = {c for person in follows.people for c in self._surnames.get(person.surname, ())}
        if follows.orgs:
            maybe.update(c for c, folded in enumerate(self._bylines) if folded.organization)
        found = {}
        for column in sorted(maybe):
            why = follows.match(self.papers[column], self._bylines[column])
            if why:
                found[column] = why
        return found

    def nearest_liked(self, subscriber: Subscriber, columns: Sequence[int]) -> list[str | None]:
        """For each edition column, the reader's liked paper closest to it (None: no likes)."""
        liked = self.scores(subscriber).liked
        if liked is None or not len(liked) or not columns:
            return [None] * len(columns)
        similarity = self.edition_vectors[columns] @ self._vectors[liked].T
        return [self._ids[j] for j in liked[similarity.argmax(axis=1)].tolist()]
