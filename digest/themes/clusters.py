"""Clusters at the grain a reader wants: k-means, then the shape rules of an edition.

The rules (issue 15): no theme holds more than ``MAX_SHARE`` of an edition of ``SPLIT_FROM``
papers or more (a big cluster is split into sub-clusters, shown as "Parent: sub-theme"); the
remainder ("Other papers") holds at most ``MAX_REMAINDER``; no theme of one paper. numpy only:
scikit-learn took a second to import, most of `digest themes` on 150 papers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from digest.themes.space import WordRows

__all__ = ["MAX_REMAINDER", "MAX_SHARE", "SPLIT_FROM", "Cluster", "kmeans", "shape"]

MAX_SHARE = 0.30
MAX_REMAINDER = 0.15
SPLIT_FROM = 20
LONER_SIMILARITY = 0.05  # cosine of TF-IDF rows below which a paper shares nothing with any
RESTARTS = 8  # k-means from this many seeded starts, the tightest kept
ROUNDS = 60


@dataclass(frozen=True)
class Cluster:
    """Row indices of one theme; ``parent`` groups the sub-clusters of a split theme."""

    rows: tuple[int, ...]
    parent: int | None = None


def kmeans(features: np.ndarray, k: int, *, seed: int = 0) -> np.ndarray:
    """Cluster index per row: Lloyd's k-means from k-means++ starts, the tightest of a few.

    Deterministic for the same rows in the same order (the caller sorts them).
    """
    n = len(features)
    k = max(1, min(k, n))
    rng = np.random.default_rng(seed)
    squares = (features**2).sum(axis=1)
    best, best_cost = np.zeros(n, dtype=np.int64), math.inf
    for _ in range(RESTARTS):
        centres = features[_plus_plus(features, squares, k, rng)].copy()
        labels = np.full(n, -1)
        for _ in range(ROUNDS):
            distance = squares[:, None] - 2 * features @ centres.T + (centres**2).sum(axis=1)
            fresh = distance.argmin(axis=1)
            if (fresh == labels).all():
                break
            labels = fresh
            for j in range(k):
                mine = labels == j
                if mine.any():
                    centres[j] = features[mine].mean(axis=0)
        cost = float(distance[np.arange(n), labels].sum())
        if cost < best_cost - 1e-12:
            best, best_cost = labels, cost
    return best


def _plus_plus(features, squares, k, rng) -> list[int]:
    """k-means++ seeding: each next centre far from the ones chosen, with odds by distance²."""
    chosen = [int(rng.integers(len(features)))]
    nearest = np.full(len(features), np.inf)
    for _ in range(1, k):
        last = features[chosen[-1]]
        nearest = np.minimum(nearest, np.maximum(squares - 2 * features @ last + last @ last, 0))
        total = nearest.sum()
        if total <= 0:  # fewer distinct rows than k: repeat one, its cluster stays empty
            chosen.append(chosen[-1])
            continue
        chosen.append(int(rng.choice(len(features), p=nearest / total)))
    return chosen


def shape(features: np.ndarray, labels: np.ndarray, words: WordRows) -> list[Cluster]:
    """Clusters obeying the edition's shape rules, biggest first; rows left out are the remainder.

    ``features``: unit rows clustered; ``labels``: k-means' cluster per row; ``words``: unit
    TF-IDF rows, to tell a paper sharing no word with its cluster (a misfit) from a member.
    """
    n = len(labels)
    labels = _without_loners(labels, words)
    labels = _small_to_nearest(features, labels, max(2, math.ceil(n / 40)))
    labels = _remainder_capped(features, labels, math.floor(MAX_REMAINDER * n))
    clusters: list[Cluster] = []
    limit = math.floor(MAX_SHARE * n) if n >= SPLIT_FROM else n
    parents = 0
    for label in _by_size(labels):
        rows = np.flatnonzero(labels == label)
        if len(rows) <= limit:
            clusters.append(Cluster(tuple(rows.tolist())))
            continue
        for part in _split(features, rows, limit):
            clusters.append(Cluster(tuple(part.tolist()), parents))
        parents += 1
    return clusters


def _by_size(labels: np.ndarray) -> list[int]:
    found, counts = np.unique(labels[labels >= 0], return_counts=True)
    return [int(f) for _, f in sorted(zip(-counts, found, strict=True))]


def _centres(features: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    found = np.unique(labels[labels >= 0])
    centres = np.array([features[labels == f].mean(axis=0) for f in found])
    norms = np.linalg.norm(centres, axis=1, keepdims=True)
    return found, centres / np.where(norms == 0, 1.0, norms)


def _without_loners(labels: np.ndarray, words: WordRows) -> np.ndarray:
    """Send a paper that shares almost no words with any paper of its cluster to the remainder.

    k-means must put every paper somewhere; a paper on bell acoustics among galaxy papers is
    a misfit, and naming the theme after the galaxies would mislead its reader.
    """
    out = labels.copy()
    for label in np.unique(labels).tolist():
        mates = np.flatnonzero(labels == label)
        if len(mates) > 1:
            out[mates[_best_mate(words.dense(mates)) < LONER_SIMILARITY]] = -1
    return out


def _best_mate(rows: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Each row's highest cosine with another row (rows are unit length), ``chunk`` at a time.

    The whole papers-by-papers matrix at once held 10,000 papers in 2.1 GB; a chunk of rows
    against one cluster stays a few MB.
    """
    best = np.zeros(rows.shape[0])
    for start in range(0, rows.shape[0], chunk):
        block = rows[start : start + chunk] @ rows.T
        own = np.arange(block.shape[0])
        block[own, start + own] = 0.0  # a paper's likeness to itself does not count
        best[start : start + chunk] = block.max(axis=1)
    return best


def _small_to_nearest(features: np.ndarray, labels: np.ndarray, least: int) -> np.ndarray:
    """Papers of clusters too small to be a theme join the nearest theme, if it is near.

    "Near": at least as close as the loosest member of that theme is to its centre, so a
    theme never takes in a paper less like it than the papers it has.
    """
    found, counts = np.unique(labels[labels >= 0], return_counts=True)
    big = found[counts >= least]
    out = np.where(np.isin(labels, big), labels, -1)
    if not len(big):
        return out
    keep, centres = _centres(features, out)
    loosest = np.array([(features[out == f] @ c).min() for f, c in zip(keep, centres, strict=True)])
    for row in np.flatnonzero((out == -1) & (labels >= 0)):
        likeness = centres @ features[row]
        best = int(likeness.argmax())
        if likeness[best] >= loosest[best]:
            out[row] = keep[best]
    return out


def _remainder_capped(features: np.ndarray, labels: np.ndarray, most: int) -> np.ndarray:
    """Past ``most`` papers in the remainder, the ones nearest a theme join it."""
    rest = np.flatnonzero(labels == -1)
    if len(rest) <= most or not (labels >= 0).any():
        return labels
    found, centres = _centres(features, labels)
    likeness = features[rest] @ centres.T
    nearest = likeness.argmax(axis=1)
    order = np.argsort(-likeness.max(axis=1), kind="stable")[: len(rest) - most]
    out = labels.copy()
    out[rest[order]] = found[nearest[order]]
    return out


def _split(features: np.ndarray, rows: np.ndarray, limit: int) -> list[np.ndarray]:
    """Split one big cluster into parts of at most ``limit`` rows, each of two or more."""
    local = features[rows] - features[rows].mean(axis=0)  # what tells the members apart
    norms = np.linalg.norm(local, axis=1, keepdims=True)
    local = local / np.where(norms == 0, 1.0, norms)
    k = max(2, math.ceil(len(rows) / limit))
    labels = kmeans(local, k)
    labels = _small_to_nearest(local, labels, 2)
    parts = []
    for label in _by_size(labels):
        mine = rows[labels == label]
        if len(mine) > limit:
            if len(mine) == len(rows):  # no split found (identical papers): cut in order
                parts.extend(np.array_split(mine, math.ceil(len(mine) / limit)))
            else:
                parts.extend(_split(features, mine, limit))
        else:
            parts.append(mine)
    if not parts:  # every part a single paper: cut in order
        return np.array_split(rows, math.ceil(len(rows) / limit))
    stray = rows[labels == -1]
    if len(stray):  # the split's own singletons: to the nearest part with room
        parts = _placed(features, parts, stray, limit)
    return parts


def _placed(features, parts: list[np.ndarray], stray: np.ndarray, limit: int) -> list:
    """Add each stray row to the most similar part that still has room."""
    parts = [list(p) for p in parts]
    for row in stray.tolist():
        order = sorted(
            range(len(parts)),
            key=lambda i: -float(features[parts[i]].mean(axis=0) @ features[row]),
        )
        room = [i for i in order if len(parts[i]) < limit] or order
        parts[room[0]].append(row)
    return [np.array(sorted(p)) for p in parts]
