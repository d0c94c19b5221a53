"""The grouping space: what a paper's words mean, learned once from thousands of arXiv papers.

A paper is the TF-IDF of its words (title twice, Hugging Face keywords and summary,
abstract), with the idf of the corpus the space was learned from, projected onto a few dozen
directions: 20 latent ones (LSA: words that occur together, so "robot" and "grasping" meet
even when one day's papers never use both) and 20 that tell arXiv categories apart (the top
singular directions of a ridge regression from TF-IDF to the corpus papers' categories).
Measured on the dev file's cross-day protocol (bench/themes.py, spaces learned on other days):
the category directions lift AMI from 0.37 to 0.52 with the same clustering.

The shipped space (``data/themes_background.npz``) is read with numpy only (scipy took 0.4 s
to import); building one needs scikit-learn and happens in bench/themes.py.
"""

from __future__ import annotations

import math
import os
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

from digest.models import Paper
from digest.themes.words import analyze

__all__ = [
    "BACKGROUND_FILE",
    "Background",
    "WordRows",
    "document",
    "shipped_background",
    "unit_rows",
]

BACKGROUND_FILE = "themes_background.npz"
LSA_WEIGHT = 0.3  # the rest is the category directions' (measured: 0.52 AMI, 0.49 at 0.5)


def document(paper: Paper) -> str:
    """The text grouping reads of a paper: title twice, keywords, HF summary, abstract."""
    # The title says what the paper is about most densely: count it twice.
    parts = [paper.title, paper.title, " ; ".join(paper.keywords), paper.abstract]
    if paper.ai_summary:
        parts.insert(3, paper.ai_summary)
    return " . ".join(parts)


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; a zero row stays zero."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)


@dataclass(frozen=True)
class Background:
    """A linear text space: a vocabulary, its idf, and directions (dimensions x vocabulary)."""

    vocabulary: dict[str, int]
    idf: np.ndarray
    components: np.ndarray
    mean: np.ndarray | None = None  # the corpus' mean projected paper, for centring

    @classmethod
    def build(
        cls,
        texts: Sequence[str],
        dimensions: int = 20,
        categories: Sequence[Sequence[str]] | None = None,
        category_dimensions: int = 20,
    ) -> Background:
        """Learn a space from texts (as ``document`` writes them); bench/themes.py calls it.

        With ``categories`` (each text's arXiv categories), adds the directions that tell
        them apart and centres the space on the mean paper.
        """
        from sklearn.decomposition import TruncatedSVD  # build time only: slow to import
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import Ridge
        from sklearn.preprocessing import MultiLabelBinarizer, normalize

        vectorizer = TfidfVectorizer(
            analyzer=analyze, sublinear_tf=True, min_df=3, max_df=0.3, max_features=8000
        )
        matrix = normalize(vectorizer.fit_transform(texts))
        latent = TruncatedSVD(dimensions, random_state=0).fit(matrix).components_
        if categories is None:
            return cls(dict(vectorizer.vocabulary_), vectorizer.idf_, latent)
        labels = MultiLabelBinarizer().fit_transform(categories).astype(float)
        labels = labels[:, labels.sum(axis=0) >= 5]
        coef = Ridge(alpha=3.0).fit(matrix, labels).coef_
        _, strength, directions = np.linalg.svd(coef, full_matrices=False)
        telling = strength[:category_dimensions, None] * directions[:category_dimensions]
        blocks = []
        for block, weight in ((latent, LSA_WEIGHT), (telling, 1.0 - LSA_WEIGHT)):
            size = np.linalg.norm(matrix @ block.T, axis=1).mean()
            blocks.append(block * (math.sqrt(weight) / size))
        components = np.vstack(blocks)
        mean = np.asarray(matrix @ components.T).mean(axis=0)
        return cls(dict(vectorizer.vocabulary_), vectorizer.idf_, components, mean)

    def save(self, path: os.PathLike | str) -> None:
        """Write the space as a compressed .npz (float32 is plenty for cosine geometry)."""
        words = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        extra = {} if self.mean is None else {"mean": self.mean.astype(np.float32)}
        np.savez_compressed(
            path,
            vocabulary=np.array("\n".join(words)),
            idf=self.idf.astype(np.float32),
            components=self.components.astype(np.float32),
            **extra,
        )

    @classmethod
    def load(cls, handle) -> Background:
        """Read a space written by ``save`` from a path or binary file."""
        with np.load(handle) as data:
            words = str(data["vocabulary"]).split("\n")
            mean = data["mean"].astype(np.float64) if "mean" in data.files else None
            return cls(
                {w: i for i, w in enumerate(words)},
                data["idf"].astype(np.float64),
                data["components"].astype(np.float64),
                mean,
            )

    def tfidf(self, docs: Sequence[str]) -> WordRows:
        """Sublinear TF-IDF rows over the space's vocabulary, unit length (empty if no word)."""
        # Compact arrays, not lists of Python numbers: at 10,000 papers the lists cost ~100 MB.
        indptr, cols, vals = array("q", [0]), array("q"), array("d")
        idf = self.idf.tolist()
        vocabulary = self.vocabulary
        for doc in docs:
            counts = Counter(vocabulary[t] for t in analyze(doc) if t in vocabulary)
            weights = [(1.0 + math.log(count)) * idf[col] for col, count in sorted(counts.items())]
            norm = math.sqrt(sum(w * w for w in weights)) or 1.0
            cols.extend(sorted(counts))
            vals.extend(w / norm for w in weights)
            indptr.append(len(cols))
        return WordRows(
            np.array(indptr, dtype=np.int64),
            np.array(cols, dtype=np.int64),
            np.array(vals, dtype=np.float64),
        )

    def project(self, rows: WordRows, *, centred: bool = False) -> np.ndarray:
        """TF-IDF rows in the space, unit length; ``centred`` subtracts the mean paper first."""
        projected = rows.times(self.components.T)
        if centred and self.mean is not None:
            wordless = ~projected.any(axis=1)
            projected = projected - self.mean
            projected[wordless] = 0.0
        return unit_rows(projected)


@dataclass(frozen=True)
class WordRows:
    """Sparse rows (CSR: row starts, columns, values) without scipy, which took 0.4 s to import."""

    indptr: np.ndarray
    cols: np.ndarray
    vals: np.ndarray

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def times(self, matrix: np.ndarray, chunk: int = 512) -> np.ndarray:
        """These rows times a dense matrix (vocabulary x d), ``chunk`` rows at a time."""
        out = np.zeros((len(self), matrix.shape[1]))
        for start in range(0, len(self), chunk):
            stop = min(start + chunk, len(self))
            lo, hi = self.indptr[start], self.indptr[stop]
            owner = np.repeat(np.arange(start, stop), np.diff(self.indptr[start : stop + 1]))
            np.add.at(out, owner, matrix[self.cols[lo:hi]] * self.vals[lo:hi, None])
        return out

    def dense(self, rows: np.ndarray) -> np.ndarray:
        """The given rows as a dense matrix over the columns they use (the rest are zero)."""
        spans = [np.arange(self.indptr[r], self.indptr[r + 1]) for r in rows.tolist()]
        where = np.concatenate(spans) if spans else np.zeros(0, dtype=np.int64)
        used, local = np.unique(self.cols[where], return_inverse=True)
        out = np.zeros((len(rows), len(used)), dtype=np.float32)
        owner = np.repeat(np.arange(len(rows)), [len(span) for span in spans])
        out[owner, local] = self.vals[where]
        return out


@cache
def shipped_background() -> Background | None:
    """The shipped space, or None if the file is absent (then per-batch TF-IDF is used)."""
    source = resources.files("digest.data").joinpath(BACKGROUND_FILE)
    if not source.is_file():
        return None
    with source.open("rb") as handle:
        return Background.load(handle)
