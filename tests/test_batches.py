"""A batch chosen at once gets exactly what `rank.select` gives each reader (issue 14 item 5).

Real papers (the bundled Hugging Face days, grouped by the real grouping), the real taxonomy
and text space; likes and dislikes of stored papers (tests/fixtures/arxiv_topics_sample.jsonl,
through a lookup), of the edition's own papers and of papers nobody stored; followed authors
and organisations; topics, free-text topics, keywords, limits, minimum scores and blends. The
same readers again on a day without votes, where every trending score ties.
"""

from __future__ import annotations

import dataclasses
import json
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.models import Edition, Frequency, Paper, Subscriber, Theme
from digest.sources.jsonfile import load_papers
from digest.themes import grouping, rank
from digest.themes.batches import select_batch
from digest.themes.matching import EditionIndex
from digest.themes.taxonomy import load_taxonomy

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 27, 7, tzinfo=UTC)
STORED = {
    r["id"]: Paper(r["id"], r["title"], r["abstract"])
    for r in map(json.loads, (ROOT / "tests/fixtures/arxiv_topics_sample.jsonl").open())
}
ORGS = ("Google DeepMind", "Multimedia and Human Understanding Group", "Meta AI")
# A paper stored twice under two ids (a withdrawn and a re-submitted listing, say): a reader
# who likes both has two equally near liked papers, a tie the batch must break as select does.
TWIN = next(iter(STORED.values()))
STORED["2501.90001"] = dataclasses.replace(TWIN, arxiv_id="2501.90001")


def _lookup(ids):
    return {a: STORED[a] for a in ids if a in STORED}


def _hf_edition() -> Edition:
    papers = load_papers(ROOT / "examples" / "papers.json").papers
    papers += load_papers(ROOT / "tests" / "fixtures" / "hf_daily_papers_2024-10-25.json").papers
    papers = list({p.arxiv_id: p for p in papers}.values())  # an edition holds a paper once
    # Some organisations, so that following one picks papers out.
    papers = [dataclasses.replace(p, organization=ORGS[i % 3]) if i % 4 == 0 else p
              for i, p in enumerate(papers)]  # fmt: skip
    themes = rank.order_themes(grouping.group(papers), NOW)
    return Edition(key="daily-x", frequency=Frequency.DAILY, date=NOW.date(), themes=tuple(themes))


def _without_votes(edition: Edition) -> Edition:
    """The same papers and themes, no votes, all listed at once: every trending score ties."""
    themes = tuple(
        Theme(t.label, tuple(dataclasses.replace(p, upvotes=0, comments=0, github_stars=None,
                                                 listed_at=NOW) for p in t.papers))
        for t in edition.themes
    )  # fmt: skip
    return dataclasses.replace(edition, themes=themes)


EDITIONS = {"hf days": _hf_edition()}
EDITIONS["no votes"] = _without_votes(EDITIONS["hf days"])


def _reader(rng: random.Random, edition: Edition, topics: list[str], i: int) -> Subscriber:
    own = [p.arxiv_id for p in edition.papers]
    pool = [*STORED, *own, "2501.99999", "2501.99998"]  # two ids nobody stored
    rated = rng.sample(pool, rng.choice([0, 1, 2, 5, 8, 12]))
    if rng.random() < 0.1:
        rated = [TWIN.arxiv_id, "2501.90001", *(a for a in rated if a not in STORED)]
    if rng.random() < 0.05:  # a library's worth: more likes than a batch pads for
        rated = rng.sample(pool, 90)
    cut = rng.randint(0, len(rated))
    authors = [a for p in rng.sample(edition.papers, 2) for a in p.authors[:2]]
    follow_authors = rng.sample(authors, min(len(authors), rng.choice([0, 0, 1, 2])))
    if follow_authors and rng.random() < 0.3:  # "K. He" for "Kaiming He"
        given, _, surname = follow_authors[0].rpartition(" ")
        follow_authors[0] = f"{given[:1]}. {surname}"
    picks = rng.sample(topics, rng.choice([0, 0, 0, 1, 2]))
    if rng.random() < 0.15:
        picks.append(rng.choice(["diffusion", "Robot*", "no such topic", " agents "]))
    return Subscriber(
        email=f"r{i}@example.org",
        id=i,
        topics=tuple(picks),
        keywords=tuple(
            rng.sample(
                ["video", "LLM", "reasoning", "benchmark*", "  "], rng.choice([0, 0, 0, 1, 2])
            )
        ),  # fmt: skip
        max_papers=rng.choice([None, 0, 1, 3, 10, 10, 10, 50]),
        min_score=rng.choice([None, None, None, 0.5, 3.0, 20.0]),
        likes=tuple(rated[:cut]),
        dislikes=tuple(rated[cut:]),
        blend=rng.choice([None, None, 0.0, 0.3, 0.7, 1.0]),
        follow_authors=tuple(follow_authors),
        follow_orgs=tuple(
            rng.sample(["DeepMind", "Meta", "Human Understanding"], rng.choice([0, 0, 0, 1]))
        ),  # fmt: skip
    )


@pytest.mark.parametrize("name", EDITIONS)
def test_a_batch_gets_what_select_gives_each_reader(name: str) -> None:
    edition = EDITIONS[name]
    taxonomy = load_taxonomy()
    index = EditionIndex(edition, taxonomy, NOW)
    scorer = rank.for_me(edition, NOW, _lookup)
    rng = random.Random(14)
    readers = [_reader(rng, edition, list(taxonomy.topics), i) for i in range(300)]
    readers += readers[:20]  # the same likes twice in a batch share one row
    seen: list[str] = []
    omitted = 0
    for start in range(0, len(readers), 97):
        batch = readers[start : start + 97]
        scorer.prepare(batch)
        chosen = select_batch(edition, batch, index=index, scorer=scorer, default_max=30)
        for sub in batch:
            slow = rank.select(edition, sub, taxonomy=taxonomy, default_max=30, now=NOW,
                               scorer=scorer)  # fmt: skip
            if index.handles(sub):
                assert rank.selection_key(sub) not in chosen
                continue
            assert chosen[rank.selection_key(sub)] == slow, sub
            seen += [p.why for t in slow.themes for p in t.papers]
            omitted += slow.omitted
    # The comparison covered every kind of why line, and papers left out.
    for part in ("you liked", "whom you follow", "matches ", "mentions ", "new"):
        assert any(part in why for why in seen), part
    assert omitted > 0


def test_readers_the_index_handles_are_left_to_it() -> None:
    edition = EDITIONS["hf days"]
    index = EditionIndex(edition, load_taxonomy(), NOW)
    plain = [Subscriber("a@example.org", id=1), Subscriber("b@example.org", id=2, topics=("LLM",))]
    scorer = rank.for_me(edition, NOW, _lookup)
    assert select_batch(edition, plain, index=index, scorer=scorer, default_max=30) == {}


@pytest.mark.parametrize("size", [0, 1, 5])
def test_small_editions_and_readers_left_with_nothing(size: int) -> None:
    """No paper, or only papers a reader rated, followed or filtered out: still what select gives."""
    papers = [Paper(f"2601.0000{i}", f"Robots {i}", "Robots walk.", upvotes=i % 2,
                    authors=("Ada Lovelace",)) for i in range(size)]  # fmt: skip
    edition = Edition("daily-x", Frequency.DAILY, NOW.date(),
                      (Theme("all", tuple(papers)),) if papers else ())  # fmt: skip
    taxonomy = load_taxonomy()
    index, scorer = EditionIndex(edition, taxonomy, NOW), rank.for_me(edition, NOW, _lookup)
    readers = [
        Subscriber("a@example.org", likes=("2601.00000",)),
        Subscriber("b@example.org", likes=("2501.99999",), blend=1.0),
        Subscriber("c@example.org", follow_authors=("Ada Lovelace",), max_papers=1),
        Subscriber("d@example.org", dislikes=("2601.00001",), keywords=("robot",), min_score=0.5),
    ]
    chosen = select_batch(edition, readers, index=index, scorer=scorer, default_max=30)
    for sub in readers:
        slow = rank.select(edition, sub, taxonomy=taxonomy, default_max=30, now=NOW, scorer=scorer)
        assert chosen[rank.selection_key(sub)] == slow, sub
