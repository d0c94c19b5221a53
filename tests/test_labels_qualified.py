"""Labels of more than one word, still honest (issue 15 item 3), on real papers."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np

from digest.models import REMAINDER_LABEL, Paper
from digest.sources.jsonfile import load_papers
from digest.themes.grouping import group
from digest.themes.labels import MIN_COVERAGE, analyze, coverage, label_clusters
from digest.themes.qualifiers import adjacent_phrase, joined
from digest.themes.taxonomy import load_taxonomy
from digest.themes.words import GENERIC_STEMS
from tests.conftest import FIXTURES

EXAMPLES = FIXTURES.parent.parent / "examples" / "papers.json"
TOPICS = load_taxonomy(None).topics


def arxiv_sample() -> list[tuple[Paper, str]]:
    """The fixture's real arXiv papers (title and abstract only) with their topic."""
    rows = [json.loads(line) for line in (FIXTURES / "arxiv_topics_sample.jsonl").open()]
    return [(Paper(r["id"], r["title"], r["abstract"]), r["topic"]) for r in rows]


def mentioning(phrase: str) -> list[Paper]:
    return [p for p, _ in arxiv_sample() if phrase in f"{p.title} {p.abstract}".lower()]


def content_words_cover(label: str, papers) -> float:
    """Share of papers holding every content word of a label (what a reader is promised)."""
    key = tuple(s for s in analyze(label) if s not in GENERIC_STEMS) or tuple(analyze(label))
    found = [frozenset(analyze(" ; ".join((p.title, *p.keywords, p.abstract)))) for p in papers]
    return coverage(key, found)


def test_a_lone_word_takes_the_phrase_its_papers_write():
    assert adjacent_phrase("Holes", mentioning("black hole"), []) == (
        ("black", "hole"),
        "Black hole",
    )
    assert adjacent_phrase("Formation", mentioning("star formation"), [])[1] == "Star formation"


def test_a_phrase_few_of_the_papers_write_is_no_qualifier():
    astro = [p for p, topic in arxiv_sample() if topic == "astro-ph"]
    assert len(mentioning("black hole")) < MIN_COVERAGE * len(astro)
    assert adjacent_phrase("Holes", astro, []) is None


def test_a_qualifier_reads_unlike_the_labels_taken():
    taken = [frozenset({"black", "hole"})]
    assert adjacent_phrase("Holes", mentioning("black hole"), taken) is None


def test_a_word_the_papers_write_before_another_is_not_joined_alone():
    """'language' of 'language models' never ends a label as "Agents and language"."""
    papers = mentioning("language model")
    others = [p for p, _ in arxiv_sample() if p not in papers]
    edition = {}
    for paper in papers + others:
        for word in set(analyze(f"{paper.title} ; {paper.abstract}")):
            edition[word] = edition.get(word, 0) + 1
    words = [frozenset(analyze(f"{p.title} ; {p.abstract}")) for p in papers]
    held = (Counter(edition), len(papers) + len(others))
    found = joined("Reasoning", frozenset({"reason"}), papers, words, held, [])
    assert found is not None
    key, label = found
    assert not label.endswith(" language"), label
    assert content_words_cover(label, papers) >= MIN_COVERAGE, label


def test_sub_themes_keep_one_word_after_the_parent():
    papers = mentioning("star formation") + mentioning("black hole")
    qualified = label_clusters([papers], papers, "Galaxies")
    plain = label_clusters([papers], papers, "Galaxies", qualify=False)
    assert len(plain[0].split()) <= len(qualified[0].split())


def test_labels_of_the_bundled_hugging_face_day_say_more_than_a_word_and_stay_honest():
    themes = [t for t in group(load_papers(EXAMPLES).papers) if t.label != REMAINDER_LABEL]
    lengths = [len(t.label.split()) for t in themes]
    assert np.mean(lengths) >= 2.5, [t.label for t in themes]
    assert sum(n == 1 for n in lengths) <= 1, [t.label for t in themes]
    for theme in themes:
        words = theme.label.split()
        assert len(set(w.lower() for w in words)) == len(words), theme.label  # no word twice
        assert words[-1].lower() not in {"and", "of", "for", "the", "with"}, theme.label
        assert theme.label[:1].isupper(), theme.label


def test_lone_words_of_real_arxiv_themes_take_honest_qualifiers():
    """Themes of half an arXiv topic each, labelled among the rest of the papers."""
    sample = arxiv_sample()
    plain, qualified = [], []
    for topic in sorted({t for _, t in sample}):
        mine = [p for p, t in sample if t == topic]
        for part in (mine[:8], mine[8:], mine[::2], mine[1::2]):
            rest = [p for p, _ in sample if p not in part]
            plain += label_clusters([part], part + rest, REMAINDER_LABEL, qualify=False)
            label = label_clusters([part], part + rest, REMAINDER_LABEL)[0]
            qualified.append(label)
            if label not in TOPICS:  # a taxonomy topic covers the papers it matches
                assert content_words_cover(label, part) >= MIN_COVERAGE, label
    lone = sum(len(label.split()) == 1 for label in plain)
    assert lone >= 6, plain  # the fixture has themes a bare word names
    assert sum(len(label.split()) == 1 for label in qualified) <= lone / 2, qualified
