"""digest.themes.relevance on real arXiv papers: likes pull a topic up, dislikes push one down, blend 0
is the trending order, rated papers never come back, and the batched arithmetic equals the plain
per-subscriber one.

The papers are 80 real rows of the labelled dev file (tests/fixtures/arxiv_topics_sample.jsonl):
8 papers of each of five arXiv topics on each of two announcement days. Likes come from the
first day, the edition is the second day, as a reader would see it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest

from digest.models import Paper, Theme
from digest.themes import relevance
from digest.themes.rank import order_themes
from digest.themes.relevance import Ratings, TextSpace
from tests.conftest import FIXTURES

NOW = datetime(2026, 1, 20, tzinfo=UTC)


def _rows() -> list[dict]:
    with (FIXTURES / "arxiv_topics_sample.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


ROWS = _rows()
EARLIER = [r for r in ROWS if r["date"] == "2026-01-16"]
EDITION_ROWS = [r for r in ROWS if r["date"] == "2026-01-19"]


def paper(row: dict, upvotes: int = 0) -> Paper:
    """The paper as a source gives it: no categories (they would give the topic away)."""
    return Paper(arxiv_id=row["id"], title=row["title"], abstract=row["abstract"], upvotes=upvotes)


@pytest.fixture(scope="module")
def edition() -> list[Paper]:
    """The second day's 40 papers, in trending order, with made-up but varied upvotes."""
    votes = [(i * 7) % 23 for i in range(len(EDITION_ROWS))]
    papers = [paper(r, v) for r, v in zip(EDITION_ROWS, votes, strict=True)]
    return list(order_themes([Theme("all", tuple(papers))], NOW)[0].papers)


@pytest.fixture(scope="module")
def rated() -> list[Paper]:
    """The first day's papers: what subscribers liked or disliked."""
    return [paper(r) for r in EARLIER]


def topic_of(p: Paper) -> str:
    return next(r["topic"] for r in ROWS if r["id"] == p.arxiv_id)


def rows_of(topic: str, papers: list[Paper]) -> list[int]:
    return [i for i, p in enumerate(papers) if topic_of(p) == topic]


def run(ratings, rated, edition, blends, k=8, rated_columns=None, **kw) -> relevance.Choice:
    """choose() over the fixture papers in the shipped space."""
    columns = np.full(len(rated), -1) if rated_columns is None else rated_columns
    return relevance.choose(
        ratings,
        relevance.paper_vectors(rated),
        columns,
        relevance.paper_vectors(edition),
        np.array([p.upvotes for p in edition], dtype=float),
        np.asarray(blends, dtype=float),
        k,
        **kw,
    )


@pytest.mark.parametrize("topic", ["astro-ph", "cs.RO", "cs.CR", "cs.CL", "cs.CV"])
def test_likes_of_a_topic_bring_that_topic(topic, rated, edition) -> None:
    liked = rows_of(topic, rated)[:4]
    choice = run(Ratings.from_lists([liked]), rated, edition, [relevance.DEFAULT_BLEND])
    picked = [edition[c] for c in choice.papers[0]]
    in_topic = sum(topic_of(p) == topic for p in picked) / len(picked)
    trending = sum(topic_of(p) == topic for p in edition[:8]) / 8
    # The edition holds 8 of 40 papers of each topic: a base rate of 0.2.
    assert in_topic >= 0.75, [topic_of(p) for p in picked]
    assert in_topic > trending


def test_a_disliked_topic_goes_down(rated, edition) -> None:
    vectors = relevance.paper_vectors(edition)
    likes = rows_of("cs.CL", rated)[:4]
    dislikes = rows_of("cs.CV", rated)[:4]
    ratings = Ratings.from_lists([likes, likes], [[], dislikes])
    scores = relevance.relevance(
        relevance.profiles(ratings, relevance.paper_vectors(rated)), vectors
    )
    ranks = (-scores).argsort(axis=1).argsort(axis=1)  # 0 = most relevant
    vision = rows_of("cs.CV", edition)
    assert ranks[1, vision].mean() > ranks[0, vision].mean() + 3
    # Dislikes alone: the disliked topic sinks to the bottom half of the edition.
    alone = Ratings.from_lists([[]], [dislikes])
    only = relevance.relevance(relevance.profiles(alone, relevance.paper_vectors(rated)), vectors)
    assert (-only[0]).argsort().argsort()[vision].mean() > len(edition) * 0.6


def test_rated_papers_are_never_chosen_again(rated, edition) -> None:
    # The rated papers include four of the edition's own; ask for every paper of the edition.
    pool = rated + edition[:4]
    columns = np.array([-1] * len(rated) + [0, 1, 2, 3])
    astro = rows_of("astro-ph", rated)[:3]
    ratings = Ratings.from_lists(
        [[*astro, len(rated)], astro], [[len(rated) + 2], [len(rated) + 1]]
    )
    choice = run(ratings, pool, edition, [1.0, 0.0], k=len(edition), rated_columns=columns)
    first, second = (set(row[row >= 0].tolist()) for row in choice.papers)
    assert first == set(range(len(edition))) - {0, 2}
    assert second == set(range(len(edition))) - {1}
    assert (choice.papers[0, -2:] == -1).all()  # two short: padded, not filled with rated ones


def test_blend_zero_is_the_trending_order(rated, edition) -> None:
    astro = rows_of("astro-ph", rated)
    ratings = Ratings.from_lists([astro, [], astro[:1]], [[], [], rows_of("cs.CV", rated)])
    choice = run(ratings, rated, edition, [0.0, 0.0, 0.0], k=12)
    assert (choice.papers == np.arange(12)).all()  # edition is given in trending order
    assert (choice.nearest_liked == -1).all()  # nothing was chosen for a like


def test_ties_in_trending_keep_digest_order(rated) -> None:
    # No votes at all: every trending score ties, and blend 0 keeps rank's order.
    unvoted = [paper(r) for r in EDITION_ROWS]
    ordered = list(order_themes([Theme("all", tuple(unvoted))], NOW)[0].papers)
    choice = run(Ratings.from_lists([rows_of("cs.RO", rated)]), rated, ordered, [0.0], k=10)
    assert choice.papers[0].tolist() == list(range(10))
    assert (relevance.standard_trending(np.zeros(40)) == 0).all()


def test_batched_choice_equals_a_plain_per_subscriber_computation(rated, edition) -> None:
    rng = np.random.default_rng(14)
    pool = rated + edition[:5]
    columns = np.array([-1] * len(rated) + list(range(5)))
    likes = [rng.choice(len(pool), rng.integers(0, 9), replace=False).tolist() for _ in range(23)]
    dislikes = [
        rng.choice(len(pool), rng.integers(0, 3), replace=False).tolist() for _ in range(23)
    ]
    dislikes = [[d for d in ds if d not in ls] for ls, ds in zip(likes, dislikes, strict=True)]
    blends = rng.uniform(0, 1, 23).round(2)
    blends[:3] = [0.0, 1.0, relevance.DEFAULT_BLEND]
    choice = run(
        Ratings.from_lists(likes, dislikes),
        pool,
        edition,
        blends,
        k=7,
        rated_columns=columns,
        batch=5,
    )

    rated_vectors, vectors = relevance.paper_vectors(pool), relevance.paper_vectors(edition)
    trending = _plain_standard_trending([p.upvotes for p in edition])
    for s in range(23):
        papers, near = _plain_choice(
            likes[s], dislikes[s], blends[s], rated_vectors, vectors, trending, columns, 7
        )
        assert choice.papers[s].tolist() == papers, s
        assert choice.nearest_liked[s].tolist() == near, s


def _plain_standard_trending(votes: list[int]) -> list[float]:
    """Percentile rank with shared ties, scaled to unit variance, written out longhand."""
    n = len(votes)
    ordered = sorted(votes)
    ranks = []
    for v in votes:
        positions = [i for i, w in enumerate(ordered) if w == v]
        ranks.append(sum(positions) / len(positions))
    mean = (n - 1) / 2
    sd = (sum((i - mean) ** 2 for i in range(n)) / n) ** 0.5
    return [(r - mean) / sd for r in ranks]


def _plain_choice(likes, dislikes, blend, rated_vectors, vectors, trending, columns, k):
    profile = np.zeros(vectors.shape[1])
    if likes:
        profile += np.mean([rated_vectors[i] for i in likes], axis=0)
    if dislikes:
        profile -= relevance.DISLIKE_WEIGHT * np.mean([rated_vectors[i] for i in dislikes], axis=0)
    scores = [float(v @ profile) for v in vectors]
    mean = sum(scores) / len(scores)
    sd = (sum((x - mean) ** 2 for x in scores) / len(scores)) ** 0.5
    z = [(x - mean) / sd if sd > 1e-9 else 0.0 for x in scores]
    total = [(1 - blend) * t + blend * r for t, r in zip(trending, z, strict=True)]
    banned = {int(columns[i]) for i in (*likes, *dislikes) if columns[i] >= 0}
    allowed = [c for c in range(len(vectors)) if c not in banned]
    best = sorted(allowed, key=lambda c: (-total[c], c))[:k]
    near = []
    for c in best:
        if blend > 0 and likes:
            near.append(
                max(likes, key=lambda i: (float(vectors[c] @ rated_vectors[i]), -likes.index(i)))
            )
        else:
            near.append(-1)
    return best + [-1] * (k - len(best)), near + [-1] * (k - len(near))


def test_the_why_names_the_liked_paper_of_the_same_topic(rated, edition) -> None:
    astro, robots = rows_of("astro-ph", rated)[:2], rows_of("cs.RO", rated)[:2]
    choice = run(Ratings.from_lists([astro + robots]), rated, edition, [1.0], k=8)
    for column, liked in zip(choice.papers[0], choice.nearest_liked[0], strict=True):
        chosen_topic = topic_of(edition[column])
        if chosen_topic in ("astro-ph", "cs.RO"):
            assert topic_of(rated[liked]) == chosen_topic
    assert relevance.liked_why("2411.01234") == "like 2411.01234 you liked"


def test_top_k_breaks_ties_by_column_and_pads() -> None:
    scores = np.array([[1.0, 3.0, 3.0, 2.0, 3.0], [-np.inf, 0.5, -np.inf, -np.inf, -np.inf]])
    assert relevance.top_k(scores, 3).tolist() == [[1, 2, 4], [1, -1, -1]]
    assert relevance.top_k(scores, 9).shape == (2, 5)
    many = np.random.default_rng(3).integers(0, 3, (4, 60)).astype(float)  # ties everywhere
    expected = [sorted(range(60), key=lambda c, row=row: (-row[c], c))[:40] for row in many]
    assert relevance.top_k(many, 40).tolist() == expected


def test_trending_is_standardised_by_rank_not_by_votes() -> None:
    heavy = relevance.standard_trending(np.array([1.0, 2.0, 3.0, 500.0]))
    light = relevance.standard_trending(np.array([1.0, 2.0, 3.0, 4.0]))
    assert np.allclose(heavy, light)  # one famous paper does not flatten the rest
    assert heavy.mean() == pytest.approx(0.0, abs=1e-6)
    assert heavy.std() == pytest.approx(1.0, abs=1e-6)
    tied = relevance.standard_trending(np.array([5.0, 1.0, 5.0]))
    assert tied[0] == tied[2] > tied[1]


def test_default_blend_is_trending_until_the_first_like() -> None:
    assert relevance.blend_for(None, likes=0) == 0.0
    assert relevance.blend_for(None, likes=3) == relevance.DEFAULT_BLEND
    assert 0.0 < relevance.DEFAULT_BLEND < 1.0
    assert relevance.blend_for(0.2, likes=0) == 0.2
    with pytest.raises(ValueError, match="between 0 and 1"):
        relevance.blend_for(1.5, likes=3)


def test_vectors_are_unit_rows_and_a_wordless_paper_is_zero(tmp_path, rated) -> None:
    vectors = relevance.paper_vectors([*rated[:3], Paper(arxiv_id="2401.00001", title="the of")])
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, atol=1e-5)
    assert not vectors[3].any()
    # The space survives a save and load unchanged.
    path = tmp_path / "space.npz"
    relevance.shipped_space().save(path)
    again = TextSpace.load(path).vectors(rated[:3])
    assert np.allclose(again, vectors[:3], atol=1e-5)


def test_nothing_to_choose_from_or_nobody_to_choose_for(rated, edition) -> None:
    nobody = run(Ratings.from_lists([]), rated, edition, [], k=5)
    assert nobody.papers.shape == (0, 5)
    empty = run(Ratings.from_lists([[0], []]), rated, [], [0.7, 0.0], k=5)
    assert empty.papers.shape == (2, 0)
    # Subscribers without a single rating get the trending order, whatever their blend.
    fresh = run(Ratings.from_lists([[], []]), rated, edition, [0.7, 1.0], k=5)
    assert fresh.papers.tolist() == [[0, 1, 2, 3, 4]] * 2


def test_ratings_need_one_entry_per_subscriber() -> None:
    with pytest.raises(ValueError, match="one entry per subscriber"):
        Ratings.from_lists([[1], [2]], [[3]])
    assert len(Ratings.from_lists([[1], [], [2, 3]]).rows(1, 3)) == 2
