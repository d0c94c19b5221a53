"""The edition's topic/keyword matrix selects exactly what `rank.select` selects (issue 17).

Real papers (the bundled Hugging Face days), the real grouping and taxonomy; thousands of
random subscribers with topics, free-text topics, keywords, limits and minimum scores.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.models import Edition, Frequency, Subscriber
from digest.sources.jsonfile import load_papers
from digest.themes import grouping, rank
from digest.themes.matching import EditionIndex
from digest.themes.taxonomy import load_taxonomy

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 27, 7, tzinfo=UTC)


@pytest.fixture(scope="module")
def edition() -> Edition:
    papers = load_papers(ROOT / "examples" / "papers.json").papers
    papers += load_papers(ROOT / "tests" / "fixtures" / "hf_daily_papers_2024-10-25.json").papers
    papers = list({p.arxiv_id: p for p in papers}.values())  # an edition holds a paper once
    themes = rank.order_themes(grouping.group(papers), NOW)
    return Edition(key="daily-x", frequency=Frequency.DAILY, date=NOW.date(), themes=tuple(themes))


def random_subscriber(rng: random.Random, topics: list[str], i: int) -> Subscriber:
    picks = rng.sample(topics, rng.randint(0, 4))
    if rng.random() < 0.2:
        picks.append(rng.choice(["diffusion", "Robot*", "RAG", "no such topic", " agents "]))
    keywords = rng.sample(
        ["video", "LLM", "reasoning", "3D", "benchmark*", "  "], rng.randint(0, 2)
    )
    return Subscriber(
        email=f"r{i}@example.org",
        id=i,
        topics=tuple(picks),
        keywords=tuple(keywords),
        max_papers=rng.choice([None, 0, 1, 3, 10, 50]),
        min_score=rng.choice([None, None, 0.5, 3.0, 20.0]),
    )


def test_the_matrix_selects_what_select_selects(edition: Edition) -> None:
    taxonomy = load_taxonomy()
    index = EditionIndex(edition, taxonomy, NOW)
    rng = random.Random(17)
    topics = list(taxonomy.topics)
    reasons: set[str] = set()
    for i in range(150):
        sub = random_subscriber(rng, topics, i)
        slow = rank.select(edition, sub, taxonomy=taxonomy, default_max=30, now=NOW)
        fast = rank.select(edition, sub, taxonomy=taxonomy, default_max=30, now=NOW, index=index)
        assert fast == slow, sub
        reasons |= {p.why.split(" · ")[-1][:5] for t in fast.themes for p in t.papers}
    assert {"match", "menti"} <= reasons  # the comparison covered why lines with reasons


def test_subscribers_with_likes_take_the_full_path(edition: Edition) -> None:
    """Likes and follows are not in the matrix: `select` must not answer from it for them."""
    sub = Subscriber(email="a@example.org", id=1, likes=("2410.00001",))
    assert not EditionIndex.handles(sub)
    assert EditionIndex.handles(Subscriber(email="b@example.org", id=2, topics=("Agents",)))
