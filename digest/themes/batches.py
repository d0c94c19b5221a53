"""A claimed batch's selections at once, for the readers the edition's topic matrix cannot answer.

A reader with likes, dislikes or follows gets their own order (digest.themes.foryou), so
`rank.select` worked them out one by one: each candidate listed, sorted and described in
Python and in NumPy calls on 150-long arrays, about 60 µs a reader, 6 s per 100,000. Here a
batch is chosen together: the readers' blended rows (ForMe.prepare, one matrix product) in
the edition's trending order with the papers each rated at -inf (ForMe.batch); the papers
outside a reader's topics and keywords or under their minimum score masked out too (bits of
the topic matrix, digest.themes.matching), and followed papers set aside to go first; one
top-k over the whole batch (relevance.top_k, ties to the better trending place) gives each
reader's papers in order; and the liked paper each kept paper resembles comes from one
product for the batch. Only the why lines and the Selections are made reader by reader, by
rank's own code. The Selections are the ones `rank.select` gives (tests/test_batches.py).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from digest.models import Edition, Selection, Subscriber
from digest.themes.foryou import Batch, ForMe
from digest.themes.matching import EditionIndex
from digest.themes.people import Follows
from digest.themes.rank import _limit, _lines, _near, _selection, selection_key

__all__ = ["select_batch"]

_PART = 256  # readers whose nearest liked papers are found in one product


def select_batch(
    edition: Edition,
    subscribers: Sequence[Subscriber],
    *,
    index: EditionIndex,
    scorer: ForMe,
    default_max: int,
) -> dict[Hashable, Selection]:
    """What `rank.select` gives each subscriber ``index`` does not handle, by selection_key.

    ``index`` and ``scorer`` are the edition's, made with the taxonomy and time `select` gets.
    The readers' likes are scored here (``scorer.prepare``): one matrix product for all.
    """
    unique = {selection_key(s): s for s in subscribers if not index.handles(s)}
    if not unique:
        return {}
    from digest.themes.relevance import top_k  # SciPy: only when someone rated or follows

    readers = list(unique.values())
    scorer.prepare(readers)
    batch = scorer.batch(readers)
    limits = [_limit(s, default_max) for s in readers]
    wanted, followed = _narrow(index, scorer, readers, batch)
    # Each row's best places (the papers in trending order), -1 past its candidates.
    places = top_k(batch.blended, max(limits)).tolist()
    counts = np.count_nonzero(batch.blended > -np.inf, axis=1).tolist()
    position = scorer.position.tolist()
    kept = []
    for i, limit in enumerate(limits):
        first = []
        if i in followed:
            # Followed papers first, by the blend, ties in trending order (as `select` sorts).
            blended = scorer.scores(readers[i]).blended.tolist()
            first = sorted(followed[i], key=lambda c: (-blended[c], position[c]))[:limit]
            first = [position[c] for c in first]
        kept.append(first + [p for p in places[i][: max(0, limit - len(first))] if p >= 0])
    order = scorer.order.tolist()
    kept_columns = [[order[p] for p in row] for row in kept]
    near = _nearest(scorer, readers, batch, kept, kept_columns)
    chosen = {}
    for i, (key, columns) in enumerate(zip(unique, kept_columns, strict=True)):
        reasons = {}
        for p, c in zip(kept[i], columns, strict=True) if wanted.get(i) else ():
            found = [reason for reason, bits in wanted[i] if bits >> p & 1]
            if found:
                reasons[c] = found
        follows = followed.get(i, {})
        whys = _lines(scorer, columns, follows, near.get(i, {}), reasons)
        chosen[key] = _selection(edition, scorer, columns, whys, counts[i] + len(follows))
    return chosen


def _narrow(
    index: EditionIndex, scorer: ForMe, readers: list[Subscriber], batch: Batch
) -> tuple[dict[int, list[tuple[str, int]]], dict[int, dict[int, str]]]:
    """Mask out of ``batch.blended`` what topics, keywords, minimum scores and follows leave
    out; give each such reader's (reason, bits) pairs and followed columns (with the why)."""
    wanted, followed, rows, allowed = {}, {}, [], []
    position = scorer.position
    for i, s in enumerate(readers):
        if not (s.topics or s.keywords or s.min_score is not None or s.follow_authors
                or s.follow_orgs):  # fmt: skip
            continue  # every paper they did not rate: -inf marks those already
        wanted[i], bits = index.candidates(s)
        if s.follow_authors or s.follow_orgs:
            follows = Follows(s.follow_authors, s.follow_orgs)
            rated = np.isneginf(batch.blended[i])
            found = scorer.followed(follows).items()
            followed[i] = {c: why for c, why in found if not rated[position[c]]}
            for c in followed[i]:  # they go first, not through the top-k
                bits &= ~(1 << int(position[c]))
        rows.append(i)
        allowed.append(bits)
    if rows:
        mask = np.zeros(batch.blended.shape, dtype=bool)
        mask[rows] = ~_bit_matrix(allowed, batch.blended.shape[1])
        batch.blended[mask] = -np.inf
    return wanted, followed


def _nearest(
    scorer: ForMe,
    readers: list[Subscriber],
    batch: Batch,
    places: list[list[int]],
    columns: list[list[int]],
) -> dict[int, dict[int, str]]:
    """Per reader whose blend listens to likes: the kept columns that owe something to a
    liked paper (relevance above the edition's average), with the phrase naming it."""
    from digest.themes.relevance import liked_why

    near: dict[int, dict[int, str]] = {}
    phrases: dict[str, str] = {}  # one phrase per liked paper, shared by the batch
    owing = np.flatnonzero(batch.owes).tolist()
    # In parts: the readers x kept papers x likes product stays a few MB at any batch size.
    for start in range(0, len(owing), _PART):
        part = owing[start : start + _PART]
        width = max(len(places[i]) for i in part)
        padded = np.array(
            [places[i] + [-1] * (width - len(places[i])) for i in part], dtype=np.int64
        )
        relevance = np.take_along_axis(batch.relevance[part], np.maximum(padded, 0), axis=1)
        owed = (padded >= 0) & (relevance > 0)
        wanted = np.where(owed, scorer.order[np.maximum(padded, 0)], -1)
        ids, clear = scorer.nearest_liked_batch(batch.liked[part], wanted)
        unclear = ((owed & ~clear).any(axis=1) | batch.crowded[part]).tolist()
        for j, (i, row) in enumerate(zip(part, wanted.tolist(), strict=True)):
            if unclear[j]:  # a near tie, or many likes: as the reader's own product decides
                near[i] = _near(scorer, readers[i], scorer.scores(readers[i]), columns[i])
                continue
            mine = near[i] = {}
            for c, liked in zip(row, ids[j], strict=True):
                if c >= 0 and liked:
                    phrase = phrases.get(liked)
                    if phrase is None:
                        phrase = phrases[liked] = liked_why(liked)
                    mine[c] = phrase
    return near


def _bit_matrix(rows: list[int], width: int) -> np.ndarray:
    """Python ints as a (rows, width) bool matrix: bit i of row r at [r, i]."""
    size = (width + 7) // 8
    packed = np.frombuffer(b"".join(r.to_bytes(size, "little") for r in rows), dtype=np.uint8)
    bits = np.unpackbits(packed.reshape(len(rows), size), axis=1, bitorder="little")
    return bits[:, :width].astype(bool)
