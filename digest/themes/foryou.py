""" "For me" over one edition: each reader's blended score of its papers, batch by batch.

An edition is scored for many readers: its papers' vectors and trending ranks are computed
once here, the papers readers liked or disliked are looked up (``lookup``, the store's
``get_papers``) and turned into vectors once per edition, and ``prepare`` scores a batch of
readers with one sparse product and one matrix product (digest.themes.relevance). The send
calls ``prepare`` on each claimed batch; ``batch`` then hands digest.themes.batches the whole
batch's rows at once (and the nearest liked papers, ``nearest_liked_batch``), and ``scores``
hands `select` one reader's row. Readers with the same likes, dislikes and blend share one row.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import repeat
from typing import TYPE_CHECKING

import numpy as np
from threadpoolctl import ThreadpoolController

from digest.models import Paper, Subscriber
from digest.themes.people import Byline, Follows, byline

if TYPE_CHECKING:  # relevance pulls in SciPy and scikit-learn: imported once someone rated
    from digest.themes.relevance import Ratings, Space

__all__ = ["Batch", "ForMe", "Lookup", "Scores", "Shown"]

# arXiv ids -> the stored papers among them (missing ids are simply absent).
Lookup = Callable[[Collection[str]], Mapping[str, Paper]]


@dataclass(frozen=True)
class Scores:
    """One reader's view of the edition: the blend used, and per paper blended and relevance."""

    blend: float
    blended: np.ndarray  # (papers,) what selection orders by
    relevance: np.ndarray | None  # (papers,) z-scores; None when the reader rated nothing known
    liked: np.ndarray | None = None  # rows of the rated vectors the reader liked


@dataclass(frozen=True)
class Shown:
    """What every selection shows of each paper, worked out once per edition (rank.for_me)."""

    scores: list[float]  # the trending score, rounded
    signals: list[str]  # the start of its why line: "12 upvotes · 3 comments", or "new"
    groups: list[int]  # the edition theme it is shown in


@dataclass(frozen=True)
class Batch:
    """Readers of the prepared batch, one row each, the papers in the edition's trending order."""

    blended: np.ndarray  # (readers, papers) what selection orders by; papers they rated: -inf
    relevance: np.ndarray  # (readers, papers) z-scores; 0 where the reader rated nothing known
    owes: np.ndarray  # (readers,) the blend listens to likes and they rated a known paper
    liked: np.ndarray  # (readers, most likes) rows of the rated vectors they liked; -1 pads
    crowded: np.ndarray  # (readers,) liked more than _LIKES_AT_ONCE: their ``liked`` row is empty


@dataclass(frozen=True)
class _Prepared:
    """The last prepared batch: a row per distinct (likes, dislikes, blend), as ``_score`` made them."""

    rows: dict[Hashable, int]
    blended: np.ndarray  # (rows, papers), the edition's column order
    relevance: np.ndarray
    blends: np.ndarray  # (rows,)
    rated: np.ndarray  # (rows,) rated a known paper
    ratings: Ratings


_KEPT = 4096  # rows kept beside a prepared batch: about 5 MB at 150 papers
# Readers whose likes `Batch.liked` holds: one who seeded hundreds from a library would make
# the whole batch's padded rows that wide (MBs per batch); such readers go one by one.
_LIKES_AT_ONCE = 64


def _key(subscriber: Subscriber) -> Hashable:
    return (subscriber.likes, subscriber.dislikes, subscriber.blend)


class ForMe:
    """The papers of one edition in the text space, and readers' scores over them."""

    def __init__(
        self,
        papers: Sequence[Paper],
        trending: Sequence[float],
        shown: Shown,
        lookup: Lookup | None = None,
        space: Space | None = None,
        position: np.ndarray | None = None,
    ) -> None:
        self.papers = tuple(papers)
        n = len(self.papers)
        # Each paper's place in the trending order (ties broken as the edition's owner wants),
        # and the column at each place.
        self.position = np.arange(n) if position is None else position
        self.order = np.argsort(self.position)
        self.shown = shown  # what selections show of each paper (rank.for_me works it out)
        self.columns = {p.arxiv_id: i for i, p in enumerate(self.papers)}
        self.trending = np.asarray(trending, dtype=np.float64)
        # Readers who rated nothing are ordered by trending alone: a flat score, then position.
        self._flat = np.zeros(n, dtype=np.float32)
        self._lookup, self._space = lookup, space
        self._edition_vectors: np.ndarray | None = None
        self._rated: dict[str, int] = {}  # arXiv id -> row of _vectors; absent: not looked up
        self._unknown: set[str] = set()  # looked up, not stored: no text, no vector
        self._ids: list[str] = []  # arXiv id of each row of _vectors
        self._rated_columns = np.zeros(0, dtype=np.int64)  # edition column of each row, or -1
        self._prepared: _Prepared | None = None
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
        held = np.array([self.columns.get(a, -1) for a in ids], dtype=np.int64)
        self._rated_columns = np.concatenate([self._rated_columns, held])

    def _ratings(self, readers: Sequence[Subscriber]) -> Ratings:
        """The readers' likes and dislikes as rows of the rated vectors (unknown papers left out).

        Rated papers not seen yet are looked up and projected first, all at once.
        """
        from digest.themes.relevance import Ratings

        ids = [a for s in readers for a in (*s.likes, *s.dislikes)]
        rows = self._rows_of(ids)
        missing = {ids[i] for i in np.flatnonzero(rows < 0).tolist()} - self._unknown
        if missing:
            self._load(missing)
            rows = self._rows_of(ids)
        # Each reader's likes, then their dislikes.
        sizes = np.array([(len(s.likes), len(s.dislikes)) for s in readers], dtype=np.int64)
        liked = np.repeat(np.tile([True, False], len(readers)), sizes.reshape(-1))
        owner = np.repeat(np.arange(len(readers)), sizes.sum(axis=1))
        known = rows >= 0
        indptr = np.zeros(len(readers) + 1, dtype=np.int64)
        np.cumsum(np.bincount(owner[known], minlength=len(readers)), out=indptr[1:])
        return Ratings(indptr, rows[known], liked[known])

    def _rows_of(self, arxiv_ids: list[str]) -> np.ndarray:
        """The row of each rated paper's vector, -1 for one not loaded (or not stored)."""
        rows = map(self._rated.get, arxiv_ids, repeat(-1))
        return np.fromiter(rows, dtype=np.int64, count=len(arxiv_ids))

    def prepare(self, subscribers: Sequence[Subscriber]) -> None:
        """Score a batch of readers at once; `scores` and `batch` then answer without more work.

        Only the last batch is kept, so memory stays flat at any list size.
        """
        self._rows.clear()
        self._prepared = self._score(subscribers)

    def _score(self, subscribers: Sequence[Subscriber]) -> _Prepared | None:
        """One row per distinct (likes, dislikes, blend) of ``subscribers``; None: nobody rated."""
        from digest.themes import relevance as rel

        todo: dict[Hashable, Subscriber] = {}
        for s in subscribers:
            if s.likes or s.dislikes:
                todo.setdefault(_key(s), s)
        if not todo:
            return None
        readers = list(todo.values())
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
        rows = {key: i for i, key in enumerate(todo)}
        return _Prepared(rows, mixed, relevant, blends, rated, ratings)

    def _scores_of(self, prepared: _Prepared, row: int) -> Scores:
        """One row of a scored batch as a reader's Scores."""
        ratings = prepared.ratings
        lo, hi = ratings.indptr[row], ratings.indptr[row + 1]
        rated = bool(prepared.rated[row])
        return Scores(
            float(prepared.blends[row]),
            prepared.blended[row],
            prepared.relevance[row] if rated else None,
            ratings.paper[lo:hi][ratings.liked[lo:hi]],
        )

    def batch(self, subscribers: Sequence[Subscriber]) -> Batch:
        """The prepared batch's scores of ``subscribers``, one row each, for choosing at once.

        Each of them must have been in the last `prepare` (or have rated nothing).
        """
        n, prepared = len(self.papers), self._prepared
        # Readers who rated nothing take the last row: zeros, the trending order.
        last = 0 if prepared is None else len(prepared.rows)
        rows = np.array(
            [
                prepared.rows[_key(s)] if prepared and (s.likes or s.dislikes) else last
                for s in subscribers
            ],
            dtype=np.int64,
        )
        blended = np.zeros((last + 1, n), dtype=np.float32)
        relevance = np.zeros((last + 1, n), dtype=np.float32)
        owes = np.zeros(last + 1, dtype=bool)
        liked = np.full((last + 1, 0), -1, dtype=np.int64)
        crowded = np.zeros(last + 1, dtype=bool)
        if prepared is not None:
            blended[:last], relevance[:last] = prepared.blended, prepared.relevance
            owes[:last] = (prepared.blends > 0) & prepared.rated
            ratings = prepared.ratings
            # A paper the reader liked or disliked is never chosen again.
            columns = self._rated_columns[ratings.paper]
            held = columns >= 0
            blended[ratings.owner()[held], columns[held]] = -np.inf
            crowded[:last] = ratings.like_counts() > _LIKES_AT_ONCE
            liked = _padded_likes(ratings, last + 1, crowded)
        cells = np.ix_(rows, self.order)
        return Batch(blended[cells], relevance[cells], owes[rows], liked[rows], crowded[rows])

    def nearest_liked_batch(
        self, liked: np.ndarray, columns: np.ndarray
    ) -> tuple[list[list[str | None]], np.ndarray]:
        """For each of ``columns`` (readers x k, -1 for none), the arXiv id of the closest of
        the reader's ``liked`` rows (`Batch.liked`; None: no likes), and whether float32
        rounding cannot have decided it.

        Ties and near ties within rounding are not clear: where it matters the caller asks
        `nearest_liked` itself, which rounds as it always has.
        """
        readers, k = columns.shape
        if liked.shape[1] == 0 or k == 0:
            return [[None] * k for _ in range(readers)], np.ones((readers, k), dtype=bool)
        like_vectors = self._vectors[np.maximum(liked, 0)]  # readers x likes x d
        chosen_vectors = self.edition_vectors[np.maximum(columns, 0)]  # readers x k x d
        similarity = np.matmul(chosen_vectors, like_vectors.transpose(0, 2, 1))
        similarity += np.where(liked < 0, -np.inf, 0).astype(np.float32)[:, None, :]  # padding
        best = similarity.argmax(axis=2)
        nearest = np.where(liked[:, :1] >= 0, np.take_along_axis(liked, best, axis=1), -1)
        ids = [[self._ids[j] if j >= 0 else None for j in row] for row in nearest.tolist()]
        if liked.shape[1] < 2:
            return ids, np.ones((readers, k), dtype=bool)
        top = np.take_along_axis(similarity, best[:, :, None], axis=2)[:, :, 0]
        np.put_along_axis(similarity, best[:, :, None], -np.inf, axis=2)
        with np.errstate(invalid="ignore"):  # no likes: -inf - -inf, and clear below
            gap = top - similarity.max(axis=2)
        # A dot product of unit float32 rows of d numbers is within d * 2^-24 of the exact
        # value however it is summed, so a gap over 4 times that (twice, with a margin) is
        # decided the same way by the reader's own product. One liked paper: clear.
        rounding = self._vectors.shape[1] * np.finfo(np.float32).eps / 2
        return ids, (gap > 4 * rounding) | (liked[:, 1:2] < 0)

    def scores(self, subscriber: Subscriber) -> Scores:
        """The reader's scores: from the prepared batch, else computed for them alone."""
        if not (subscriber.likes or subscriber.dislikes):
            # Whatever their blend, nothing to be relevant to: the trending order.
            return Scores(subscriber.blend or 0.0, self._flat, None)
        key = _key(subscriber)
        found = self._rows.get(key)
        if found is None:
            prepared = self._prepared
            if prepared is not None and key in prepared.rows:
                found = self._scores_of(prepared, prepared.rows[key])
            else:
                # Not in the prepared batch (a preview, a retried row): scored alone, and
                # kept for the rest of the batch, within a bound.
                found = self._scores_of(self._score([subscriber]), 0)  # type: ignore[arg-type]
            if len(self._rows) >= _KEPT:
                self._rows.clear()
            self._rows[key] = found
        return found

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


def _padded_likes(ratings: Ratings, rows: int, crowded: np.ndarray) -> np.ndarray:
    """Each reader's liked rows in the order they rated them, padded with -1: rows x most
    likes (a ``crowded`` reader's row left empty)."""
    likes = ratings.like_counts()
    owner = ratings.owner()[ratings.liked]
    slot = np.arange(len(owner)) - np.concatenate([[0], np.cumsum(likes)])[owner]
    keep = ~crowded[owner]
    width = int(likes[~crowded[: len(likes)]].max(initial=0))
    padded = np.full((rows, width), -1, dtype=np.int64)
    padded[owner[keep], slot[keep]] = ratings.paper[ratings.liked][keep]
    return padded
