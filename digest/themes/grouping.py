"""Group an edition's papers into a handful of themes with labels a researcher would write.

How: every paper becomes a TF-IDF vector over (lightly stemmed) words of its title (counted
twice), Hugging Face keywords and abstract. When the shipped background space
(``data/themes_background.npz``, a latent semantic space learned once from a few thousand
arXiv abstracts) is present, vectors are projected into it, which lets "robot" and "grasping"
meet even when one day's 40 papers never use both; papers are then clustered with k-means,
k ~ sqrt(n/2) bounded to 4..12. Without the background, per-batch NMF topics decide. arXiv
categories, when a source gives them, are added as extra features. Clusters too small to be a
theme go to the remainder theme, "Other papers". Labels come from each cluster's most
distinctive phrases (digest.theme_labels).

Pure and deterministic: the same papers, in any order, give the same themes.
"""

from __future__ import annotations

import math
import os
import warnings
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
from scipy import sparse
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.decomposition import NMF, TruncatedSVD
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

from digest.models import REMAINDER_LABEL, Paper, Theme
from digest.themes.labels import analyze, label_clusters

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
TINY = 8  # fewer papers than this are shown as one theme: there is nothing to group
CATEGORY_WEIGHT = 0.5  # how much arXiv categories pull, relative to the text (unit vectors)
BACKGROUND_FILE = "themes_background.npz"
# With embeddings: the background space weighs as much as the sentence embedding (cosine of the
# joined vector = mean of the two cosines), and average linkage over about 2 sqrt(n/2) clusters.
EMBEDDING_BACKGROUND_WEIGHT = 1.0
EMBEDDING_THEME_FACTOR = 2.0
LONER_SIMILARITY = 0.05  # cosine of TF-IDF vectors below which a paper shares nothing


def theme_count(n: int) -> int:
    """How many themes ``n`` papers get: about sqrt(n/2), at least 4 and at most 12.

    sqrt(n/2) is the usual rule of thumb for document clusters and keeps an email scannable.
    """
    return max(MIN_THEMES, min(MAX_THEMES, round(math.sqrt(n / 2))))


def group(
    papers: Sequence[Paper],
    *,
    background: Background | bool | None = None,
    embed: Callable[[Sequence[str]], np.ndarray] | None = None,
) -> list[Theme]:
    """Group papers into labelled themes: every paper in exactly one, the remainder last.

    ``background``: None or True uses the shipped space; False uses per-batch topics only; a
    Background uses that space (the benchmark compares them this way). ``embed`` (see
    digest.embeddings) adds sentence embeddings, clustered by average linkage on cosine.
    """
    if not papers:
        return []
    ordered = sorted(papers, key=lambda p: (p.arxiv_id, p.title))  # input order must not matter
    wordless = not any(analyze(_document(p)) for p in ordered)  # e.g. titles only of stop words
    if len(ordered) < TINY or wordless:
        return [Theme(ALL_PAPERS_LABEL, tuple(_in_input_order(ordered, papers)))]
    labels = _cluster(ordered, _use_background(background), embed)
    return _themes(ordered, labels, papers)


def _use_background(choice: Background | bool | None) -> Background | None:
    if isinstance(choice, Background):
        return choice
    return _shipped_background() if choice is None or choice else None


def _document(paper: Paper) -> str:
    # The title says what the paper is about most densely: count it twice.
    return " . ".join((paper.title, paper.title, " ; ".join(paper.keywords), paper.abstract))


def _cluster(papers: list[Paper], background: Background | None, embed=None) -> np.ndarray:
    """Cluster index per paper; -1 means the remainder."""
    n = len(papers)
    k = theme_count(n)
    docs = [_document(p) for p in papers]
    if embed is not None:
        # Measured (bench/themes.py): MiniLM alone 0.43 AMI; with the background space beside
        # it at equal weight, average linkage on cosine and ~2 sqrt(n/2) clusters, 0.46 on the
        # tuning days and 0.49 on held-out days. Average linkage leaves misfits as singletons,
        # which the remainder takes, so the word-overlap loner test is not needed (it cost AMI).
        k = max(MIN_THEMES, min(MAX_THEMES, round(EMBEDDING_THEME_FACTOR * math.sqrt(n / 2))))
        features = normalize(embed([f"{p.title}. {p.abstract}" for p in papers]))
        if background is not None:
            features = np.hstack(
                [features, EMBEDDING_BACKGROUND_WEIGHT * _project(docs, background)]
            )
    elif background is not None:
        features = _project(docs, background)
    else:
        features = _batch_topics(docs, k)
    categories = _category_features(papers)
    if categories is not None:
        features = np.hstack([features, CATEGORY_WEIGHT * categories])
    distinct = len(np.unique(features.round(6), axis=0))  # identical papers cannot split
    k = min(k, distinct)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a good-enough fit is fine here
        if embed is not None:
            labels = AgglomerativeClustering(k, metric="cosine", linkage="average").fit_predict(
                features
            )
        else:
            labels = _without_loners(
                KMeans(k, n_init=10, random_state=0).fit_predict(features), docs
            )
    return _with_remainder(labels, n)


def _without_loners(labels: np.ndarray, docs: list[str]) -> np.ndarray:
    """Send a paper that shares almost no words with any paper of its cluster to the remainder.

    k-means must put every paper somewhere; a paper on bell acoustics among galaxy papers is
    a misfit, and naming the theme after the galaxies would mislead its reader.
    """
    if LONER_SIMILARITY <= 0:
        return labels
    try:
        matrix = TfidfVectorizer(analyzer=analyze, sublinear_tf=True).fit_transform(docs)
    except ValueError:  # no words at all: nothing to compare
        return labels
    out = labels.copy()
    for label in np.unique(labels).tolist():
        mates = np.flatnonzero(labels == label)
        if len(mates) > 1:
            out[mates[_best_mate(matrix[mates]) < LONER_SIMILARITY]] = -1
    return out


def _best_mate(rows: sparse.csr_matrix, chunk: int = 256) -> np.ndarray:
    """Each row's highest cosine with another row (rows are L2-normalised), ``chunk`` at a time.

    The whole papers-by-papers matrix at once held 10,000 papers in 2.1 GB (dense float64 plus
    the sparse product); a chunk of rows against one cluster stays a few MB.
    """
    best = np.zeros(rows.shape[0])
    for start in range(0, rows.shape[0], chunk):
        block = (rows[start : start + chunk] @ rows.T).toarray()
        own = np.arange(block.shape[0])
        block[own, start + own] = 0.0  # a paper's likeness to itself does not count
        best[start : start + chunk] = block.max(axis=1)
    return best


def _batch_topics(docs: list[str], k: int) -> np.ndarray:
    """Per-batch NMF topic weights: the best we measured without background knowledge."""
    vectorizer = TfidfVectorizer(analyzer=analyze, sublinear_tf=True, min_df=2)
    try:
        matrix = vectorizer.fit_transform(docs)
    except ValueError:  # no word occurs twice: nothing to share
        matrix = TfidfVectorizer(analyzer=analyze, sublinear_tf=True).fit_transform(docs)
    k = min(k, *matrix.shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        weights = NMF(k, init="nndsvd", random_state=0, max_iter=400).fit_transform(matrix)
    return normalize(weights)


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
    return normalize(out)


def _with_remainder(labels: np.ndarray, n: int) -> np.ndarray:
    """Send clusters too small to read as a theme to the remainder (-1)."""
    min_size = max(2, math.ceil(n / 40))
    sizes = Counter(labels.tolist())
    return np.array([lab if sizes[lab] >= min_size else -1 for lab in labels.tolist()])


@dataclass(frozen=True)
class Background:
    """A latent semantic space (TF-IDF + truncated SVD) learned once from many abstracts."""

    vocabulary: dict[str, int]
    idf: np.ndarray
    components: np.ndarray  # (dimensions, vocabulary)

    @classmethod
    def build(cls, texts: Sequence[str], dimensions: int = 20) -> Background:
        """Learn the space from texts (title twice, then abstract); used by bench/themes.py."""
        vectorizer = TfidfVectorizer(
            analyzer=analyze, sublinear_tf=True, min_df=3, max_df=0.3, max_features=8000
        )
        matrix = vectorizer.fit_transform(texts)
        svd = TruncatedSVD(dimensions, random_state=0).fit(matrix)
        return cls(dict(vectorizer.vocabulary_), vectorizer.idf_, svd.components_)

    def save(self, path: os.PathLike | str) -> None:
        """Write the space as a compressed .npz (float32 is plenty for cosine geometry)."""
        words = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        np.savez_compressed(
            path,
            vocabulary=np.array("\n".join(words)),
            idf=self.idf.astype(np.float32),
            components=self.components.astype(np.float32),
        )

    @classmethod
    def load(cls, handle) -> Background:
        """Read a space written by ``save`` from a path or binary file."""
        with np.load(handle) as data:
            words = str(data["vocabulary"]).split("\n")
            return cls(
                {w: i for i, w in enumerate(words)},
                data["idf"].astype(np.float64),
                data["components"].astype(np.float64),
            )


@cache
def _shipped_background() -> Background | None:
    """The shipped latent space, or None if the file is absent (then per-batch topics are used)."""
    source = resources.files("digest.data").joinpath(BACKGROUND_FILE)
    if not source.is_file():
        return None
    with source.open("rb") as handle:
        return Background.load(handle)


def _project(docs: list[str], bg: Background) -> np.ndarray:
    """Sublinear TF-IDF with the background's idf, projected into its space, unit length."""
    # Compact arrays, not lists of Python numbers: at 10,000 papers the lists cost ~100 MB.
    indptr, cols, vals = array("q", [0]), array("i"), array("d")
    idf = bg.idf.tolist()
    for doc in docs:
        counts = Counter(bg.vocabulary[t] for t in analyze(doc) if t in bg.vocabulary)
        cols.extend(counts.keys())
        vals.extend((1.0 + math.log(count)) * idf[col] for col, count in counts.items())
        indptr.append(len(cols))
    matrix = sparse.csr_matrix(
        (
            np.frombuffer(vals),
            np.frombuffer(cols, dtype=np.int32),
            np.frombuffer(indptr, dtype=np.int64),
        ),
        shape=(len(docs), len(idf)),
    )
    matrix.sort_indices()  # the column order a COO build gives: the same sums, bit for bit
    return normalize(np.asarray(normalize(matrix) @ bg.components.T))


def text_vectors(papers: Sequence[Paper], background: Background) -> np.ndarray:
    """Unit vectors of papers in a background space, from the same text grouping reads.

    digest.themes.relevance scores papers for each subscriber in this space.
    """
    return _project([_document(p) for p in papers], background)


def _themes(papers: list[Paper], labels: np.ndarray, original: Sequence[Paper]) -> list[Theme]:
    members: dict[int, list[Paper]] = defaultdict(list)
    for paper, lab in zip(papers, labels.tolist(), strict=True):
        members[lab].append(paper)
    clusters = sorted((c for c in members if c != -1), key=lambda c: (-len(members[c]), c))
    names = label_clusters([members[c] for c in clusters], papers, REMAINDER_LABEL)
    themes = []
    rest = list(members.get(-1, []))
    for cluster, name in zip(clusters, names, strict=True):
        if name is None:  # nothing in common to name: these papers are misfits
            rest.extend(members[cluster])
        else:
            themes.append(Theme(name, tuple(_in_input_order(members[cluster], original))))
    if rest:
        themes.append(Theme(REMAINDER_LABEL, tuple(_in_input_order(rest, original))))
    return themes


def _in_input_order(subset: list[Paper], original: Sequence[Paper]) -> list[Paper]:
    position = {id(p): i for i, p in enumerate(original)}
    return sorted(subset, key=lambda p: position[id(p)])
