"""Themes at the grain a reader wants (issue 15): shape rules and honest labels on real days."""

from __future__ import annotations

import json

import numpy as np
import pytest

from digest.models import REMAINDER_LABEL, Paper
from digest.sources.jsonfile import load_papers
from digest.themes.categories import CATEGORY_NAMES, category_name
from digest.themes.clusters import MAX_REMAINDER, MAX_SHARE, SPLIT_FROM, Cluster, shape
from digest.themes.grouping import _themes, group
from digest.themes.labels import MIN_COVERAGE, analyze, coverage
from digest.themes.space import WordRows
from digest.themes.taxonomy import load_taxonomy
from digest.themes.words import GENERIC_STEMS
from tests.conftest import FIXTURES

EXAMPLES = FIXTURES.parent.parent / "examples" / "papers.json"
HF_DAYS = [EXAMPLES, FIXTURES / "hf_daily_papers_2024-10-25.json"]


def words_of(paper: Paper) -> frozenset[str]:
    return frozenset(
        analyze(" ; ".join((paper.title, *paper.keywords, paper.abstract, paper.ai_summary or "")))
    )


def honest(label: str, papers: tuple[Paper, ...] | list[Paper]) -> float:
    """Share of papers a label describes: its content words, or the taxonomy topic it names."""
    taxonomy = load_taxonomy(None)
    if label in CATEGORY_NAMES.values():
        return sum(label in {category_name(c) for c in p.categories} for p in papers) / len(papers)
    if label in taxonomy.topics:
        return sum(label in taxonomy.match(p) for p in papers) / len(papers)
    key = tuple(s for s in analyze(label) if s not in GENERIC_STEMS) or tuple(analyze(label))
    return coverage(key, [words_of(p) for p in papers])


@pytest.mark.parametrize("path", HF_DAYS, ids=lambda p: p.name)
def test_a_hugging_face_day_has_themes_at_a_readers_grain(path):
    papers = load_papers(path).papers
    assert len(papers) >= SPLIT_FROM
    themes = group(papers)
    ids = sorted(p.arxiv_id for t in themes for p in t.papers)
    assert ids == sorted(p.arxiv_id for p in papers)  # every paper once
    n = len(papers)
    for theme in themes:
        if theme.label == REMAINDER_LABEL:
            assert len(theme.papers) <= MAX_REMAINDER * n, "too many papers fit nowhere"
        else:
            assert len(theme.papers) <= MAX_SHARE * n, f"{theme.label!r} is a blob"
            assert len(theme.papers) >= 2, f"{theme.label!r} is one paper"


@pytest.mark.parametrize("path", HF_DAYS, ids=lambda p: p.name)
def test_labels_on_a_hugging_face_day_are_honest_and_say_more_than_a_word(path):
    themes = [t for t in group(load_papers(path).papers) if t.label != REMAINDER_LABEL]
    labels = [t.label for t in themes]
    assert len(set(labels)) == len(labels), labels
    # a label of a split theme: each part honest about the papers it names
    parents: dict[str, list[Paper]] = {}
    for theme in themes:
        parent, _, sub = theme.label.partition(": ")
        if sub:
            parents.setdefault(parent, []).extend(theme.papers)
            assert honest(sub, theme.papers) >= MIN_COVERAGE, theme.label
        else:
            assert honest(theme.label, theme.papers) >= MIN_COVERAGE, theme.label
    for parent, members in parents.items():
        assert honest(parent, members) >= MIN_COVERAGE, parent
    words = np.mean([len(label.split()) for label in labels])
    assert words >= 2.0, labels


def test_a_split_theme_reads_parent_then_sub_theme():
    rows = [json.loads(line) for line in (FIXTURES / "arxiv_topics_sample.jsonl").open()]
    papers = [Paper(r["id"], r["title"], r["abstract"]) for r in rows]
    astro = [i for i, r in enumerate(rows) if r["topic"] == "astro-ph"]
    rest = [i for i, r in enumerate(rows) if r["topic"] != "astro-ph"]
    assert len(astro) >= 8
    half = len(astro) // 2
    clusters = [
        Cluster(tuple(astro[:half]), parent=0),
        Cluster(tuple(astro[half:]), parent=0),
        Cluster(tuple(rest)),
    ]
    themes = _themes(papers, clusters, papers)
    split = [t.label for t in themes if len(t.papers) in (half, len(astro) - half)]
    assert len(split) == 2, [t.label for t in themes]
    parents = {label.partition(": ")[0] for label in split}
    subs = [label.partition(": ")[2] for label in split]
    assert len(parents) == 1 and all(subs) and subs[0] != subs[1], split
    assert subs[0][:1].islower() or subs[0].split()[0].isupper(), (
        split
    )  # "Galaxies: star formation"


@pytest.mark.parametrize("n", [20, 37, 64, 150, 400])
def test_shape_rules_hold_whatever_the_clusters(n):
    """Lopsided k-means output (one blob, crumbs, misfits) still comes out in the rules."""
    rng = np.random.default_rng(n)
    features = rng.normal(size=(n, 8))
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    labels = np.where(rng.random(n) < 0.7, 0, rng.integers(1, n, size=n))  # a 70% blob
    vocabulary = 30
    indptr = np.arange(0, 3 * n + 1, 3)
    cols = rng.integers(0, vocabulary, size=3 * n)
    words = WordRows(indptr, cols, np.full(3 * n, 1 / np.sqrt(3)))
    clusters = shape(features, labels, words)
    rows = [r for c in clusters for r in c.rows]
    assert len(rows) == len(set(rows))
    assert n - len(rows) <= MAX_REMAINDER * n
    assert all(2 <= len(c.rows) <= MAX_SHARE * n for c in clusters)
