"""Group an edition's papers into themes at the grain a reader wants, with labels a researcher would write.

How: every paper becomes a point of the shipped grouping space (digest.themes.space: TF-IDF
of its title, Hugging Face keywords and summary and abstract, projected onto directions
that tell topics and arXiv categories apart); its own arXiv categories, when a source gives
them, are added as extra features, and with the embeddings extra its MiniLM sentence
embedding too. k-means finds about 1.5 sqrt(n/2) clusters (4..12); then the edition's shape
rules hold (digest.themes.clusters): a cluster over 30% of 20 or more papers is split into
sub-themes ("Language models: long context"), papers that fit nowhere go to "Other papers"
(at most 15%), and no theme has one paper. Labels come from digest.themes.labels.

Pure and deterministic: the same papers, in any order, give the same themes. numpy only at
run time: scikit-learn and scipy took 1.4 s to import, more than grouping 150 papers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from digest.models import REMAINDER_LABEL, Paper, Theme
from digest.themes.clusters import Cluster, kmeans, shape
from digest.themes.labels import analyze, label_clusters
from digest.themes.space import Background, document, shipped_background, unit_rows

__all__ = [
    "ALL_PAPERS_LABEL",
    "REMAINDER_LABEL",
    "Background",
    "analyze",
    "group",
    "text_vectors",
    "theme_count",
]

ALL_PAPERS_LABEL = "All papers"
MIN_THEMES, MAX_THEMES = 4, 12
# Measured (bench/themes.py, cross-day): 1.5 sqrt(n/2) clusters 0.52 AMI, sqrt(n/2) 0.49;
# the shape rules then merge the smallest and split the biggest.
THEME_FACTOR = 1.5
TINY = 8  # fewer papers than this are shown as one theme: there is nothing to group
CATEGORY_WEIGHT = 0.5  # how much arXiv categories pull, relative to the text (unit vectors)
# The space beside the sentence embedding counts this much. Measured (bench/themes.py, 40
# cross-day batches): 1.0 gave AMI 0.489 / ARI 0.412, 2.0 0.502 / 0.425, 3.0 0.498 / 0.425;
# the space alone 0.504 / 0.427: its category directions already hold what MiniLM adds.
EMBEDDING_WEIGHT = 2.0


def theme_count(n: int) -> int:
    """How many clusters ``n`` papers start from: about 1.5 sqrt(n/2), at least 4, at most 12.

    sqrt(n/2) is the usual rule of thumb for document clusters; the half more measured better
    (topics of a day are uneven) and keeps an email scannable once tiny clusters are merged.
    """
    return max(MIN_THEMES, min(MAX_THEMES, round(THEME_FACTOR * math.sqrt(n / 2))))


def group(
    papers: Sequence[Paper],
    *,
    background: Background | bool | None = None,
    embed: Callable[[Sequence[str]], np.ndarray] | None = None,
) -> list[Theme]:
    """Group papers into labelled themes: every paper in exactly one, the remainder last.

    ``background``: None or True uses the shipped space; False uses per-batch TF-IDF only; a
    Background uses that space (the benchmark compares them this way). ``embed`` (see
    digest.themes.embeddings) adds sentence embeddings beside the space.
    """
    if not papers:
        return []
    ordered = sorted(papers, key=lambda p: (p.arxiv_id, p.title))  # input order must not matter
    docs = [document(p) for p in ordered]
    wordless = not any(analyze(doc) for doc in docs)  # e.g. titles only of stop words
    if len(ordered) < TINY or wordless:
        return [Theme(ALL_PAPERS_LABEL, tuple(_in_input_order(ordered, papers)))]
    space = _use_background(background) or _batch_space(docs)
    words = space.tfidf(docs)
    features = _features(ordered, space, words, embed)
    clusters = shape(features, kmeans(features, theme_count(len(ordered))), words)
    return _themes(ordered, clusters, papers)


def _use_background(choice: Background | bool | None) -> Background | None:
    if isinstance(choice, Background):
        return choice
    return shipped_background() if choice is None or choice else None


def _batch_space(docs: list[str]) -> Background:
    """A space of the batch alone: its words in two or more papers, identity directions."""
    seen: dict[str, int] = {}
    for doc in docs:
        for word in set(analyze(doc)):
            seen[word] = seen.get(word, 0) + 1
    shared = sorted(w for w, count in seen.items() if count >= 2) or sorted(seen)
    idf = np.array([math.log((1 + len(docs)) / (1 + seen[w])) + 1.0 for w in shared])
    return Background({w: i for i, w in enumerate(shared)}, idf, np.eye(len(shared)))


def _features(papers: list[Paper], space: Background, words, embed) -> np.ndarray:
    """Unit rows to cluster: the space (centred), categories and embeddings beside it."""
    features = space.project(words, centred=True)
    if embed is not None:
        vectors = unit_rows(np.asarray(embed([f"{p.title}. {p.abstract}" for p in papers])))
        features = np.hstack([vectors, EMBEDDING_WEIGHT * features])
    categories = _category_features(papers)
    if categories is not None:
        features = np.hstack([features, CATEGORY_WEIGHT * categories])
    return unit_rows(features)


def _category_features(papers: list[Paper]) -> np.ndarray | None:
    """One-hot arXiv categories (primary counts double), or None when no paper has any."""
    names = sorted({c for p in papers for c in p.categories})
    if not names:
        return None
    index = {c: i for i, c in enumerate(names)}
    out = np.zeros((len(papers), len(names)))
    for row, paper in enumerate(papers):
        for pos, cat in enumerate(paper.categories):
            out[row, index[cat]] += 2.0 if pos == 0 else 1.0
    return unit_rows(out)


def text_vectors(papers: Sequence[Paper], background: Background) -> np.ndarray:
    """Unit vectors of papers in a background space (not centred), from the text grouping reads.

    digest.themes.relevance scores papers for each subscriber in this space.
    """
    return background.project(background.tfidf([document(p) for p in papers]))


def _themes(papers: list[Paper], clusters: list[Cluster], original: Sequence[Paper]) -> list[Theme]:
    """Label the clusters (a split one as "Parent: sub-theme"); unnamed ones join the remainder."""
    units: list[list[Cluster]] = []
    for cluster in clusters:
        if cluster.parent is not None and units and units[-1][0].parent == cluster.parent:
            units[-1].append(cluster)
        else:
            units.append([cluster])
    members = [[papers[r] for c in unit for r in c.rows] for unit in units]
    order = sorted(range(len(units)), key=lambda i: (-len(members[i]), i))
    names = label_clusters([members[i] for i in order], papers, REMAINDER_LABEL)
    themes: list[Theme] = []
    rest = set(range(len(papers))) - {r for c in clusters for r in c.rows}
    for i, name in zip(order, names, strict=True):
        if name is None:  # nothing in common to name: these papers are misfits
            rest.update(r for c in units[i] for r in c.rows)
        elif len(units[i]) == 1:
            themes.append(_theme(name, [papers[r] for r in units[i][0].rows], original))
        else:
            themes.extend(_sub_themes(name, units[i], papers, original))
    if rest:
        themes.append(_theme(REMAINDER_LABEL, [papers[r] for r in sorted(rest)], original))
    return themes


def _sub_themes(parent: str, parts: list[Cluster], papers: list[Paper], original) -> list[Theme]:
    """The parts of a split theme, each "Parent: what sets it apart from its siblings"."""
    groups = [[papers[r] for r in part.rows] for part in parts]
    inside = [p for g in groups for p in g]
    names = label_clusters(groups, inside, parent, qualify=False)  # "Parent: one word" reads well
    out = []
    for number, (name, group_) in enumerate(zip(names, groups, strict=True), start=1):
        sub = name if name is not None else f"part {number}"
        out.append(
            _theme(
                f"{parent}: {sub[:1].lower() + sub[1:] if _plain(sub) else sub}", group_, original
            )
        )
    return out


def _plain(text: str) -> bool:
    """True when the first word is an ordinary word (not an acronym or a name) to lower-case."""
    first = text.split()[0]
    return first[1:] == first[1:].lower() and not any(c.isdigit() for c in first)


def _theme(label: str, members: list[Paper], original: Sequence[Paper]) -> Theme:
    return Theme(label, tuple(_in_input_order(members, original)))


def _in_input_order(subset: list[Paper], original: Sequence[Paper]) -> list[Paper]:
    position = {id(p): i for i, p in enumerate(original)}
    return sorted(subset, key=lambda p: position[id(p)])
