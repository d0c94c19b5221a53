"""How well does `digest.themes.group` find themes? AMI/ARI against arXiv topics, with baselines.

Samples seeded one-day batches of 30-150 papers from the labelled dev file (see
../shared/eval/README.md), groups each batch, and scores the groups against `topic` with
adjusted mutual information (AMI) and the adjusted Rand index (ARI). The two baselines of the
README are reimplemented and run on the same batches in the same run.

The shipped background space was learned from the dev file itself, so scoring it on dev days
flatters it. The honest headline ("cross-day") rebuilds the space in this run from the other
half of the days (alternate days, two folds) and scores each batch only with a space that never
saw its day. Title and abstract only is the headline; arXiv categories are reported separately
because the primary category *is* the label.

Run by hand, never from tests:
    python bench/themes.py                      # 120 batches, about 3 minutes on 2 cores
    python bench/themes.py --batches 200 --seed 1
    python bench/themes.py --build-background   # rewrite digest/data/themes_background.npz
    python bench/themes.py --embeddings         # also the `embeddings` extra (needs it installed)
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import NMF
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score, silhouette_score

from digest import themes
from digest.models import Paper

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "eval" / "arxiv_topics_dev.jsonl"
SHIPPED = ROOT / "digest" / "data" / themes.BACKGROUND_FILE

Row = dict
Method = Callable[[list[Row]], Sequence[int]]


def load(path: Path) -> dict[str, list[Row]]:
    """Rows of the labelled file, by announcement day."""
    days: dict[str, list[Row]] = {}
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                days.setdefault(row["date"], []).append(row)
    return days


def batches(days: dict[str, list[Row]], count: int, seed: int) -> list[tuple[str, list[Row]]]:
    """Seeded one-day batches of 30-150 papers: what one daily digest looks like."""
    rng = random.Random(seed)
    names = sorted(days)
    out = []
    for _ in range(count):
        day = rng.choice(names)
        size = min(rng.randint(30, 150), len(days[day]))
        out.append((day, rng.sample(days[day], size)))
    return out


def background_text(row: Row) -> str:
    """The text a background space is learned from: what group() sees of a paper."""
    return themes._document(paper(row, categories=False))


def paper(row: Row, *, categories: bool) -> Paper:
    """A Paper as a source would give it; categories only when asked for."""
    cats = tuple(row.get("categories", ())) if categories else ()
    return Paper(arxiv_id=row["id"], title=row["title"], abstract=row["abstract"], categories=cats)


def labels_of(result: list, rows: list[Row]) -> list[int]:
    """Theme index per row (in row order), checking every paper is in exactly one theme."""
    where: dict[str, int] = {}
    for i, theme in enumerate(result):
        for p in theme.papers:
            assert p.arxiv_id not in where, f"{p.arxiv_id} in two themes"
            where[p.arxiv_id] = i
    assert len(where) == len(rows), "a paper is missing from the themes"
    return [where[r["id"]] for r in rows]


def _tfidf(rows: list[Row]):
    texts = [f"{r['title']}. {r['abstract']}" for r in rows]
    return TfidfVectorizer(stop_words="english", sublinear_tf=True).fit_transform(texts)


def kmeans_silhouette(rows: list[Row]) -> Sequence[int]:
    """Baseline 1: TF-IDF + KMeans, k in 2..12 chosen by the best silhouette."""
    matrix = _tfidf(rows)
    best, best_labels = -2.0, [0] * len(rows)
    for k in range(2, min(12, len(rows) - 1) + 1):
        labels = KMeans(k, n_init=4, random_state=0).fit_predict(matrix)
        score = silhouette_score(matrix, labels, metric="cosine")
        if score > best:
            best, best_labels = score, labels
    return best_labels


def nmf_sqrt(rows: list[Row]) -> Sequence[int]:
    """Baseline 2: TF-IDF + NMF with k = sqrt(n/2), each paper to its strongest topic."""
    k = max(2, round(math.sqrt(len(rows) / 2)))
    weights = NMF(k, init="nndsvd", random_state=0, max_iter=400).fit_transform(_tfidf(rows))
    return weights.argmax(axis=1)


def ours(*, background, categories: bool) -> Method:
    """digest.themes.group with a given background choice, returning theme indices."""

    def method(rows: list[Row]) -> Sequence[int]:
        bg = background(rows) if callable(background) else background
        papers = [paper(r, categories=categories) for r in rows]
        return labels_of(themes.group(papers, background=bg), rows)

    return method


def embedding_methods(sample, held_out) -> list[tuple[str, Method]]:
    """The `embeddings` extra; each paper is embedded once (timed) and looked up per batch."""
    from digest.embeddings import load_embedder

    embed = load_embedder()
    rows = list({r["id"]: r for _, batch in sample for r in batch}.values())
    start = time.perf_counter()
    vectors = embed([f"{r['title']}. {r['abstract']}" for r in rows])
    per_150 = (time.perf_counter() - start) / len(rows) * 150
    print(f"embedding {len(rows)} papers took {per_150:.2f} s per 150 (not in s/150 below)")
    by_text = {f"{r['title']}. {r['abstract']}": v for r, v in zip(rows, vectors, strict=True)}

    def cached(texts):
        return np.array([by_text[t] for t in texts])

    def method(rows: list[Row]) -> Sequence[int]:
        papers = [paper(r, categories=False) for r in rows]
        result = themes.group(papers, background=held_out(rows), embed=cached)
        return labels_of(result, rows)

    return [("digest + MiniLM embeddings, cross-day", method)]


def score(method: Method, sample: list[tuple[str, list[Row]]]) -> tuple[float, float, float]:
    """Mean AMI, mean ARI and seconds per 150 papers over the sample."""
    amis, aris, seconds, papers = [], [], 0.0, 0
    for _, rows in sample:
        start = time.perf_counter()
        labels = method(rows)
        seconds += time.perf_counter() - start
        papers += len(rows)
        truth = [r["topic"] for r in rows]
        amis.append(adjusted_mutual_info_score(truth, labels))
        aris.append(adjusted_rand_score(truth, labels))
    return float(np.mean(amis)), float(np.mean(aris)), seconds / papers * 150


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--batches", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dimensions", type=int, default=20)
    parser.add_argument("--build-background", action="store_true")
    parser.add_argument(
        "--embeddings", action="store_true", help="also score the `embeddings` extra (MiniLM)"
    )
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)

    days = load(args.data)
    if args.build_background:
        texts = [background_text(r) for rows in days.values() for r in rows]
        themes.Background.build(texts, args.dimensions).save(SHIPPED)
        print(f"wrote {SHIPPED} from {len(texts)} papers ({SHIPPED.stat().st_size} bytes)")
        return 0

    # Two folds of alternate days: a batch is scored with the space built from the other fold.
    names = sorted(days)
    folds = [names[0::2], names[1::2]]
    spaces = {}
    for i, fold in enumerate(folds):
        texts = [background_text(r) for d in fold for r in days[d]]
        space = themes.Background.build(texts, args.dimensions)
        for day in folds[1 - i]:
            spaces[day] = space
    by_id = {r["id"]: r["date"] for rows in days.values() for r in rows}

    def held_out(rows: list[Row]):
        return spaces[by_id[rows[0]["id"]]]

    sample = batches(days, args.batches, args.seed)
    sizes = [len(rows) for _, rows in sample]
    print(
        f"{len(sample)} one-day batches of {min(sizes)}-{max(sizes)} papers (mean "
        f"{np.mean(sizes):.0f}), seed {args.seed}, {args.data.name}; folds {folds}"
    )
    methods: list[tuple[str, Method]] = [
        ("baseline TF-IDF + KMeans, silhouette k", kmeans_silhouette),
        ("baseline TF-IDF + NMF, k = sqrt(n/2)", nmf_sqrt),
        ("digest, title+abstract, no background", ours(background=False, categories=False)),
        ("digest, title+abstract, cross-day space", ours(background=held_out, categories=False)),
    ]
    if SHIPPED.exists():
        methods.append(
            ("digest, title+abstract, shipped space*", ours(background=True, categories=False))
        )
    methods.append(
        ("digest, + arXiv categories, cross-day", ours(background=held_out, categories=True))
    )
    if args.embeddings:
        methods += embedding_methods(sample, held_out)
    results = {}
    print(f"{'method':44} {'AMI':>6} {'ARI':>6} {'s/150':>7}")
    for name, method in methods:
        ami, ari, secs = results[name] = score(method, sample)
        print(f"{name:44} {ami:6.3f} {ari:6.3f} {secs:7.3f}", flush=True)
    head = results["digest, title+abstract, cross-day space"]
    nmf = results["baseline TF-IDF + NMF, k = sqrt(n/2)"]
    print(
        f"headline (title+abstract, cross-day): AMI {head[0]:.3f} ({head[0] / nmf[0]:.2f}x NMF), "
        f"ARI {head[1]:.3f} ({head[1] / nmf[1]:.2f}x NMF), {head[2]:.2f} s per 150 papers"
    )
    print("* the shipped space was learned from this file's days: optimistic here, shown for scale")
    return 0


if __name__ == "__main__":
    sys.exit(main())
