""" "For me": each subscriber's relevance of an edition's papers, learned from likes and dislikes.

The text space. A paper is a unit vector in a small linear text space (``TextSpace``): the
TF-IDF of its title and abstract, the way digest.themes reads them, projected onto a few
dozen directions and centred on the mean paper, so that the words every paper shares
("model", "results") do not make everything look alike. The shipped space
(``data/relevance_space.npz``, built by ``bench/foryou.py --build-space``) joins the 20
latent directions grouping uses with 20 directions that tell arXiv categories apart, learned
once from a few thousand labelled abstracts. Measured with 200 simulated readers of the dev
file on days the space never saw (bench/foryou.py): 0.84 of their 10 papers are in their
topic with it, 0.70 with the grouping space alone (base rate 0.15). Its weak spot: a topic
absent from the corpus it learned from gets 0.63. Any space with ``vectors(papers)`` can be
swapped in (``EmbeddingSpace`` for sentence embeddings).

The profile. A subscriber's profile is the mean vector of the papers they liked, minus
``DISLIKE_WEIGHT`` times the mean of those they disliked (Rocchio's rule). Relevance is the
dot product of profile and paper: for a whole batch of subscribers, one matrix product.

The blend. Trending scores are heavy-tailed and change scale from day to day, and a profile
has no natural unit, so both are put on one scale within the edition before they are mixed:
trending as its percentile rank (ties share one rank, so a day without votes gives every
paper the same trending value), stretched to unit variance; relevance as a z-score over
the edition's papers, per subscriber. The blend is ``(1 - blend) * trending + blend *
relevance``: 0 is the trending order, 1 is pure "for me". The z-score keeps how far a paper
stands out from the rest, so one paper very close to the subscriber's likes can beat one
that is merely in the top tenth of both.

Pure: numpy (and one scipy sparse product), no I/O but ``TextSpace.load``/``save``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Protocol

import numpy as np
from scipy import sparse

from digest.models import Paper
from digest.themes.grouping import Background, text_vectors

__all__ = [
    "DEFAULT_BLEND",
    "DISLIKE_WEIGHT",
    "Choice",
    "EmbeddingSpace",
    "Ratings",
    "Space",
    "TextSpace",
    "blend_for",
    "blended",
    "choose",
    "liked_why",
    "paper_vectors",
    "profiles",
    "relevance",
    "shipped_space",
    "standard_relevance",
    "standard_trending",
    "top_k",
]

SPACE_FILE = "relevance_space.npz"
# The default once a subscriber has likes. Measured (bench/foryou.py, 200 readers, simulated
# votes): in-topic share 0.47 at 0.3, 0.68 at 0.5, 0.75 at 0.6, 0.79 at 0.7, 0.83 at 0.85,
# 0.84 at 1 (trending only 0.14). 0.7 clears the 0.7 with margin and still lets the
# day's most-voted papers in.
DEFAULT_BLEND = 0.7
DISLIKE_WEIGHT = 0.5  # a dislike pushes away half as hard as a like pulls
# Subscribers scored together. Measured at 100,000 subscribers (bench/foryou.py): 1024 adds
# about 27 MB to the process's peak RSS and 2048 about 44 MB (the nearest-liked step gathers
# batch x likes x dimensions floats), for about the same CPU time.
BATCH = 1024


class Space(Protocol):
    """What relevance needs of a text space: unit vectors of papers, one row each."""

    def vectors(self, papers: Sequence[Paper]) -> np.ndarray:
        """One unit row per paper."""
        ...


@dataclass(frozen=True)
class TextSpace:
    """A linear text space: TF-IDF over a fixed vocabulary, projected, centred, unit length."""

    basis: Background  # vocabulary, idf and the projection (dimensions x vocabulary)
    mean: np.ndarray  # the mean projected paper of the corpus the space was learned from

    @classmethod
    def uncentred(cls, background: Background) -> TextSpace:
        """The space grouping uses as it is (digest.themes' background), for comparison."""
        return cls(background, np.zeros(len(background.components)))

    def vectors(self, papers: Sequence[Paper]) -> np.ndarray:
        """One unit row per paper (float32); a paper with no known word gets a zero row."""
        if not papers:
            return np.zeros((0, len(self.mean)), dtype=np.float32)
        projected = text_vectors(papers, self.basis)
        wordless = ~projected.any(axis=1)
        centred = projected - self.mean
        centred[wordless] = 0.0
        return _unit_rows(centred).astype(np.float32)

    def save(self, path: os.PathLike | str) -> None:
        """Write the space as one compressed .npz (float32 is plenty for cosine geometry)."""
        words = sorted(self.basis.vocabulary, key=self.basis.vocabulary.__getitem__)
        np.savez_compressed(
            path,
            vocabulary=np.array("\n".join(words)),
            idf=self.basis.idf.astype(np.float32),
            components=self.basis.components.astype(np.float32),
            mean=self.mean.astype(np.float32),
        )

    @classmethod
    def load(cls, handle) -> TextSpace:
        """Read a space written by ``save`` from a path or binary file."""
        with np.load(handle) as data:
            mean = data["mean"].astype(np.float64)
        if hasattr(handle, "seek"):
            handle.seek(0)
        return cls(Background.load(handle), mean)


@dataclass(frozen=True)
class EmbeddingSpace:
    """Sentence embeddings (the ``embeddings`` extra, see digest.embeddings) as the space."""

    embed: Callable[[Sequence[str]], np.ndarray]

    def vectors(self, papers: Sequence[Paper]) -> np.ndarray:
        """One unit row per paper, embedded from "title. abstract" as grouping embeds it."""
        texts = [f"{p.title}. {p.abstract}" for p in papers]
        return _unit_rows(np.asarray(self.embed(texts), dtype=np.float64)).astype(np.float32)


@cache
def shipped_space() -> TextSpace:
    """The space shipped in ``digest/data/relevance_space.npz`` (loaded once per process)."""
    with resources.files("digest.data").joinpath(SPACE_FILE).open("rb") as handle:
        return TextSpace.load(handle)


def paper_vectors(papers: Sequence[Paper], space: Space | None = None) -> np.ndarray:
    """Unit vectors (n x d, float32) of papers in ``space``, the shipped one by default."""
    return (space or shipped_space()).vectors(papers)


@dataclass(frozen=True)
class Ratings:
    """The likes and dislikes of a run of subscribers, stored row by row (CSR layout).

    Subscriber ``s`` rated the papers ``paper[indptr[s]:indptr[s + 1]]`` (rows of the rated
    papers' vector matrix), liking those where ``liked`` is True and disliking the rest.
    """

    indptr: np.ndarray  # (subscribers + 1,) int64
    paper: np.ndarray  # (ratings,) int64 rows of the rated papers' vectors
    liked: np.ndarray  # (ratings,) bool

    @classmethod
    def from_lists(
        cls, likes: Sequence[Sequence[int]], dislikes: Sequence[Sequence[int]] | None = None
    ) -> Ratings:
        """Ratings from per-subscriber lists of rated-paper rows (dislikes default to none)."""
        dislikes = dislikes if dislikes is not None else [()] * len(likes)
        if len(dislikes) != len(likes):
            raise ValueError("likes and dislikes must have one entry per subscriber")
        counts = [len(a) + len(b) for a, b in zip(likes, dislikes, strict=True)]
        papers = [p for a, b in zip(likes, dislikes, strict=True) for p in (*a, *b)]
        flags = [
            f for a, b in zip(likes, dislikes, strict=True) for f in (*[1] * len(a), *[0] * len(b))
        ]
        return cls(
            np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]),
            np.asarray(papers, dtype=np.int64),
            np.asarray(flags, dtype=bool),
        )

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def rows(self, start: int, stop: int) -> Ratings:
        """The ratings of subscribers ``start`` to ``stop - 1``, as a Ratings of their own."""
        lo, hi = self.indptr[start], self.indptr[stop]
        return Ratings(self.indptr[start : stop + 1] - lo, self.paper[lo:hi], self.liked[lo:hi])

    def owner(self) -> np.ndarray:
        """The subscriber row of every rating."""
        return np.repeat(np.arange(len(self)), np.diff(self.indptr))

    def like_counts(self) -> np.ndarray:
        """How many papers each subscriber liked."""
        return np.bincount(self.owner()[self.liked], minlength=len(self))


def profiles(ratings: Ratings, rated_vectors: np.ndarray) -> np.ndarray:
    """One profile row per subscriber: mean liked vector - DISLIKE_WEIGHT * mean disliked one.

    A subscriber with no ratings gets a zero profile (every paper equally relevant).
    """
    owner = ratings.owner()
    likes = np.bincount(owner[ratings.liked], minlength=len(ratings))
    dislikes = np.bincount(owner[~ratings.liked], minlength=len(ratings))
    weight = np.where(
        ratings.liked,
        1.0 / np.maximum(likes[owner], 1),
        -DISLIKE_WEIGHT / np.maximum(dislikes[owner], 1),
    )
    # The weights as a sparse subscribers x rated-papers matrix: one sparse product sums them.
    weights = sparse.csr_matrix(
        (weight.astype(np.float32), ratings.paper, ratings.indptr),
        shape=(len(ratings), len(rated_vectors)),
    )
    return np.asarray(weights @ rated_vectors, dtype=np.float32)


def relevance(profile_matrix: np.ndarray, paper_matrix: np.ndarray) -> np.ndarray:
    """Relevance of every paper to every subscriber (subscribers x papers): one matrix product."""
    # A contiguous copy of the small transposed side: BLAS is several times faster with it.
    return profile_matrix @ np.ascontiguousarray(paper_matrix.T)


def standard_trending(scores: np.ndarray) -> np.ndarray:
    """Trending scores as percentile ranks stretched to unit variance (ties share a rank).

    Percentiles, not the scores: upvotes are heavy-tailed, and one paper with 500 votes must
    not flatten the rest of the day. Equal scores (a day without votes) all map to 0.
    """
    scores = np.asarray(scores, dtype=np.float64)
    n = len(scores)
    if n < 2:
        return np.zeros(n, dtype=np.float32)
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(n)
    ranks[order] = np.arange(n, dtype=np.float64)
    # Ties share the mean of their ranks.
    _, group, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ranks = np.bincount(group, weights=ranks)[group] / counts[group]
    uniform_sd = math.sqrt((n * n - 1) / 12.0)  # the standard deviation of ranks 0..n-1
    return ((ranks - (n - 1) / 2.0) / uniform_sd).astype(np.float32)


def standard_relevance(scores: np.ndarray) -> np.ndarray:
    """Each row as z-scores over the edition's papers; a flat row (no profile) becomes 0."""
    mean = scores.mean(axis=1, keepdims=True)
    sd = scores.std(axis=1, keepdims=True)
    return np.divide(scores - mean, sd, out=np.zeros_like(scores), where=sd > 1e-9)


def blend_for(setting: float | None, likes: int) -> float:
    """The blend a subscriber gets: their own setting, else DEFAULT_BLEND once they like a paper.

    Before the first like there is nothing to learn from, so the order is pure trending.
    """
    if setting is not None:
        if not 0.0 <= setting <= 1.0:
            raise ValueError(f"blend must be between 0 and 1, not {setting}")
        return float(setting)
    return DEFAULT_BLEND if likes > 0 else 0.0


def blended(trending: np.ndarray, relevant: np.ndarray, blends: np.ndarray) -> np.ndarray:
    """(1 - blend) * trending + blend * relevance, per subscriber (both already standard)."""
    blends = np.asarray(blends, dtype=np.float32)[:, None]
    return (1.0 - blends) * trending[None, :] + blends * relevant


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """The columns of the k best scores of each row, best first (-1 pads rows short of k).

    Ties go to the lower column, so with papers given in trending order a tie keeps that
    order. Columns scored -inf are never chosen.
    """
    rows, n = scores.shape
    k = min(k, n)
    if k <= 0 or rows == 0:
        return np.full((rows, max(k, 0)), -1, dtype=np.int64)
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1 : k]
    above = scores > kth
    tied = scores == kth
    room = k - above.sum(axis=1, keepdims=True)
    chosen = above | (tied & (np.cumsum(tied, axis=1) <= room))
    columns = np.nonzero(chosen)[1].reshape(rows, k)
    values = np.take_along_axis(scores, columns, axis=1)
    order = np.lexsort((columns, -values), axis=1)
    best = np.take_along_axis(columns, order, axis=1)
    return np.where(np.take_along_axis(values, order, axis=1) > -np.inf, best, -1)


@dataclass(frozen=True)
class Choice:
    """What each subscriber gets: edition columns best first, and why (-1 marks nothing)."""

    papers: np.ndarray  # (subscribers, k) edition columns
    nearest_liked: np.ndarray  # (subscribers, k) rated-paper row of the closest liked paper


def choose(
    ratings: Ratings,
    rated_vectors: np.ndarray,
    rated_columns: np.ndarray,
    edition_vectors: np.ndarray,
    trending_scores: np.ndarray,
    blends: np.ndarray,
    k: int,
    *,
    batch: int = BATCH,
) -> Choice:
    """Each subscriber's k papers of an edition: relevance blended with trending, batch by batch.

    ``rated_columns[r]`` is the edition column of rated paper ``r``, or -1 when the edition
    does not hold it: a paper a subscriber liked or disliked is never chosen again. Give the
    edition's papers in trending order so that ties keep it.
    """
    width = min(k, len(trending_scores))
    if width <= 0 or len(ratings) == 0:  # nothing to choose from, or nobody to choose for
        empty = np.full((len(ratings), max(width, 0)), -1, dtype=np.int32)
        return Choice(empty, empty.copy())
    trending = standard_trending(trending_scores)
    papers, nearest = [], []
    for start in range(0, len(ratings), batch):
        stop = min(start + batch, len(ratings))
        part = ratings.rows(start, stop)
        profile = profiles(part, rated_vectors)
        scores = blended(
            trending, standard_relevance(relevance(profile, edition_vectors)), blends[start:stop]
        )
        _exclude_rated(scores, part, rated_columns)
        chosen = top_k(scores, k)
        papers.append(chosen.astype(np.int32))
        near = _nearest_liked(part, rated_vectors, edition_vectors, chosen)
        # A paper chosen on trending alone owes nothing to a liked one.
        nearest.append(np.where(blends[start:stop, None] > 0, near, -1).astype(np.int32))
    return Choice(np.vstack(papers), np.vstack(nearest))


def _exclude_rated(scores: np.ndarray, ratings: Ratings, rated_columns: np.ndarray) -> None:
    columns = rated_columns[ratings.paper]
    held = columns >= 0
    scores[ratings.owner()[held], columns[held]] = -np.inf


def _nearest_liked(
    ratings: Ratings, rated_vectors: np.ndarray, edition_vectors: np.ndarray, chosen: np.ndarray
) -> np.ndarray:
    """For each chosen paper, the subscriber's liked paper most similar to it (-1: no likes)."""
    rows, k = chosen.shape
    likes = ratings.like_counts()
    width = int(likes.max()) if rows else 0
    if width == 0 or k == 0:
        return np.full((rows, k), -1, dtype=np.int64)
    # Liked papers per subscriber, padded to a rectangle: rows x width.
    owner = ratings.owner()[ratings.liked]
    slot = np.arange(len(owner)) - np.concatenate([[0], np.cumsum(likes)])[owner]
    liked = np.full((rows, width), -1, dtype=np.int64)
    liked[owner, slot] = ratings.paper[ratings.liked]
    like_vectors = rated_vectors[np.maximum(liked, 0)]  # rows x width x d
    chosen_vectors = edition_vectors[np.maximum(chosen, 0)]  # rows x k x d
    # optimize=True lets einsum hand this to BLAS: several times faster than plain einsum.
    similarity = np.einsum("rkd,rwd->rkw", chosen_vectors, like_vectors, optimize=True)
    similarity[np.broadcast_to((liked < 0)[:, None, :], similarity.shape)] = -np.inf
    best = np.take_along_axis(liked, similarity.argmax(axis=2), axis=1)
    return np.where((chosen >= 0) & (likes[:, None] > 0), best, -1)


def liked_why(arxiv_id: str) -> str:
    """The "why" phrase for a paper picked for its likeness to one the subscriber liked."""
    return f"like {arxiv_id} you liked"


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
