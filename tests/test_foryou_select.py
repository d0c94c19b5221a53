"""Each reader's own selection through rank.select (issue 14 items 3, 4; issue 16 item 1).

Likes pull a topic into a reader's email and change it from one edition to the next; a paper
they liked or disliked never comes back; a followed author's paper is always there, whatever
their topics, minimum score or blend, and says why. The papers are real rows of the labelled
dev file (tests/fixtures/arxiv_topics_sample.jsonl): 8 of each of five arXiv topics on each of
two days; likes come from the first day, the edition is the second.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import pytest

from digest.models import Edition, Frequency, Paper, Subscriber, Theme
from digest.themes.rank import for_me, select, selection_key
from digest.themes.taxonomy import load_taxonomy
from tests.conftest import FIXTURES

NOW = datetime(2026, 1, 20, tzinfo=UTC)
ROWS = [
    json.loads(line)
    for line in (FIXTURES / "arxiv_topics_sample.jsonl").read_text(encoding="utf-8").splitlines()
]
TOPIC = {r["id"]: r["topic"] for r in ROWS}
EARLIER = {
    r["id"]: Paper(r["id"], r["title"], r["abstract"]) for r in ROWS if r["date"] == "2026-01-16"
}


def _edition() -> Edition:
    """The second day, votes unrelated to topic; two themes so grouping is visible."""
    papers = [
        Paper(r["id"], r["title"], r["abstract"], upvotes=(i * 7) % 23, listed_at=NOW,
              authors=("Ada Lovelace",) if i == 3 else ("Someone Else",))
        for i, r in enumerate(r for r in ROWS if r["date"] == "2026-01-19")
    ]  # fmt: skip
    return Edition("daily-2026-01-19", Frequency.DAILY, NOW.date(),
                   (Theme("First half", tuple(papers[:20])), Theme("Second half", tuple(papers[20:]))))  # fmt: skip


EDITION = _edition()


@pytest.fixture(scope="module")
def taxonomy():
    return load_taxonomy()


def _lookup(ids):
    return {a: EARLIER[a] for a in ids if a in EARLIER}


def _pick(subscriber: Subscriber, taxonomy, edition: Edition = EDITION):
    scorer = for_me(edition, NOW, _lookup)
    return select(edition, subscriber, taxonomy=taxonomy, default_max=30, now=NOW, scorer=scorer)


def _ids(selection) -> list[str]:
    return [p.paper.arxiv_id for t in selection.themes for p in t.papers]


def _liking(topic: str, n: int = 5) -> tuple[str, ...]:
    return tuple([a for a in EARLIER if TOPIC[a] == topic][:n])


@pytest.mark.parametrize("topic", ["cs.RO", "cs.CR", "astro-ph"])
def test_likes_bring_their_topic_into_the_email(taxonomy, topic: str) -> None:
    plain = Subscriber("r@example.org", max_papers=8)
    before = _ids(_pick(plain, taxonomy))
    after = _ids(_pick(dataclasses.replace(plain, likes=_liking(topic)), taxonomy))
    share = sum(TOPIC[a] == topic for a in after) / len(after)
    assert len(after) == 8
    assert share >= 0.75, (topic, share)
    assert share > sum(TOPIC[a] == topic for a in before) / len(before)


def test_the_why_line_names_the_liked_paper_it_resembles(taxonomy) -> None:
    liked = _liking("cs.RO")
    chosen = _pick(Subscriber("r@example.org", max_papers=8, likes=liked), taxonomy)
    whys = [p.why for t in chosen.themes for p in t.papers]
    resembling = [w for w in whys if w.startswith("like ") and " you liked · " in w]
    assert len(resembling) >= 6
    assert {w.split()[1] for w in resembling} <= set(liked)
    assert any(w.endswith("upvotes") or "upvote" in w for w in resembling)


def test_blend_zero_is_the_trending_selection_and_likes_do_not_change_it(taxonomy) -> None:
    plain = _ids(_pick(Subscriber("r@example.org", max_papers=8), taxonomy))
    zero = Subscriber("r@example.org", max_papers=8, likes=_liking("cs.RO"), blend=0.0)
    chosen = _pick(zero, taxonomy)
    assert _ids(chosen) == plain
    assert not any("you liked" in p.why for t in chosen.themes for p in t.papers)


def test_a_liked_or_disliked_paper_of_the_edition_never_comes_back(taxonomy) -> None:
    top = _ids(_pick(Subscriber("r@example.org", max_papers=8), taxonomy))
    reader = Subscriber("r@example.org", max_papers=8, likes=(top[0],), dislikes=(top[1],))
    got = _ids(_pick(reader, taxonomy))
    assert top[0] not in got and top[1] not in got and len(got) == 8
    # Even followed: a paper already rated was seen.
    follower = dataclasses.replace(reader, follow_authors=("Ada Lovelace",))
    ada = next(p.arxiv_id for p in EDITION.papers if "Ada Lovelace" in p.authors)
    assert ada not in _ids(_pick(dataclasses.replace(follower, likes=(ada,)), taxonomy))


def test_a_followed_author_is_in_despite_topics_min_score_and_blend(taxonomy) -> None:
    ada = next(p for p in EDITION.papers if "Ada Lovelace" in p.authors)
    # Topics that do not match her paper, a minimum score nothing reaches, pure "for me"
    # on another topic, and room for only two papers.
    reader = Subscriber(
        "r@example.org", keywords=("zebrafish",), min_score=10_000, max_papers=2,
        likes=_liking(next(t for t in TOPIC.values() if t != TOPIC[ada.arxiv_id])),
        blend=1.0, follow_authors=("A. Lovelace",),
    )  # fmt: skip
    chosen = _pick(reader, taxonomy)
    assert _ids(chosen) == [ada.arxiv_id]
    (only,) = [p for t in chosen.themes for p in t.papers]
    assert only.why.startswith("by A. Lovelace, whom you follow · ")


def test_followed_papers_beyond_max_papers_fill_it_and_the_rest_are_omitted(taxonomy) -> None:
    everyone = dataclasses.replace(
        EDITION,
        themes=tuple(
            Theme(
                t.label, tuple(dataclasses.replace(p, authors=("Grace Hopper",)) for p in t.papers)
            )
            for t in EDITION.themes
        ),
    )
    reader = Subscriber("r@example.org", max_papers=5, follow_authors=("Grace Hopper",))
    chosen = _pick(reader, taxonomy, everyone)
    assert chosen.count == 5 and chosen.omitted == 35
    # The best five by trending (this reader has no likes).
    best = sorted(p.upvotes for p in everyone.papers)[-5:]
    assert sorted(p.paper.upvotes for t in chosen.themes for p in t.papers) == best


def test_the_selection_stays_grouped_in_the_editions_themes(taxonomy) -> None:
    chosen = _pick(Subscriber("r@example.org", max_papers=8, likes=_liking("cs.CV")), taxonomy)
    labels = [t.label for t in chosen.themes]
    assert labels == [t.label for t in EDITION.themes if t.label in labels]
    for theme in chosen.themes:
        source = next(t for t in EDITION.themes if t.label == theme.label)
        assert {p.paper.arxiv_id for p in theme.papers} <= {p.arxiv_id for p in source.papers}


def test_the_selection_key_covers_everything_the_selection_depends_on() -> None:
    base = Subscriber("r@example.org")
    changed = [
        dataclasses.replace(base, likes=("2601.00001",)),
        dataclasses.replace(base, dislikes=("2601.00001",)),
        dataclasses.replace(base, blend=0.3),
        dataclasses.replace(base, follow_authors=("Ada Lovelace",)),
        dataclasses.replace(base, follow_orgs=("DeepMind",)),
    ]
    keys = {selection_key(s) for s in [base, *changed]}
    assert len(keys) == 6
    # Order does not matter: the same likes are the same selection.
    two = dataclasses.replace(base, likes=("2601.00001", "2601.00002"))
    assert selection_key(two) == selection_key(dataclasses.replace(two, likes=two.likes[::-1]))


def test_a_batch_prepared_at_once_gives_what_each_reader_gets_alone(taxonomy) -> None:
    readers = [
        Subscriber(f"r{i}@example.org", max_papers=6, likes=_liking(t, 3 + i % 3), blend=b)
        for i, (t, b) in enumerate(
            [("cs.RO", None), ("cs.CL", 0.5), ("astro-ph", 1.0), ("cs.CR", None)]
        )
    ]
    scorer = for_me(EDITION, NOW, _lookup)
    scorer.prepare(readers)
    batch = [
        _ids(select(EDITION, r, taxonomy=taxonomy, default_max=30, now=NOW, scorer=scorer))
        for r in readers
    ]
    alone = [_ids(_pick(r, taxonomy)) for r in readers]
    assert batch == alone


def test_likes_seeded_from_a_library_count_through_the_store(taxonomy, tmp_path) -> None:
    """A liked paper no listing brought (kept in reference_papers) still pulls its topic in."""
    from digest.store import Store

    store = Store(f"sqlite:///{tmp_path / 'digest.db'}")
    store.migrate()
    liked = _liking("cs.CR")
    reader = Subscriber("r@example.org", max_papers=8, likes=liked)
    unknown = select(EDITION, reader, taxonomy=taxonomy, default_max=30, now=NOW,
                     scorer=for_me(EDITION, NOW, store.get_papers))  # fmt: skip
    store.save_reference_papers(EARLIER[a] for a in liked)
    assert store.unpublished_papers(Frequency.DAILY) == []  # never an edition's paper
    known = select(EDITION, reader, taxonomy=taxonomy, default_max=30, now=NOW,
                   scorer=for_me(EDITION, NOW, store.get_papers))  # fmt: skip
    share = sum(TOPIC[a] == "cs.CR" for a in _ids(known)) / 8
    assert share >= 0.75 > sum(TOPIC[a] == "cs.CR" for a in _ids(unknown)) / 8
    store.close()
