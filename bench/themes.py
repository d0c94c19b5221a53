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

Label quality is scored on the same batches, for every theme but the remainder: a label's
*key word* is its content word (stemmed, stop words and generic words such as "model" left out)
that is rarest in the batch, i.e. its most distinctive word ("lean" in "Reasoning and lean",
"manipulation" in "Robot manipulation"). *Coverage* is the share of the theme's papers whose
title, abstract or keywords contain the key word; *all-words coverage* asks for every content
word. A label naming an arXiv category (theme_labels.CATEGORY_NAMES) also covers the papers
filed under that category, and one naming a topic of the shipped taxonomy covers the papers the
taxonomy matches to it (the product's own definition of that topic). Also shown: themes whose key word covers < 1/3 of the papers (labels
that describe one or two papers), *precision* (the share of the batch's papers holding the key
word that are in the theme: how well the label tells the theme from the others), the share of
"X and Y" labels and the mean words per label.

Run by hand, never from tests:
    python bench/themes.py                      # 120 batches, about 3 minutes on 2 cores
    python bench/themes.py --batches 60 --show-labels 3   # and print the labels of 3 batches
    python bench/themes.py --batches 200 --seed 1
    python bench/themes.py --build-background   # rewrite digest/data/themes_background.npz
    python bench/themes.py --embeddings         # also the `embeddings` extra (needs it installed)
    python bench/themes.py --embeddings --embedding-cache /tmp/minilm.npz   # embed once only
    python bench/themes.py --days 2026-01-26,2026-01-28   # batches from these days only
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
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

from digest.models import REMAINDER_LABEL, Paper, Theme
from digest.themes import grouping as themes
from digest.themes import labels as theme_labels
from digest.themes import space, words
from digest.themes.taxonomy import load_taxonomy

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = next(
    (
        folder / "shared" / "eval" / "arxiv_topics_dev.jsonl"
        for folder in ROOT.parents
        if (folder / "shared" / "eval" / "arxiv_topics_dev.jsonl").is_file()
    ),
    ROOT.parent / "shared" / "eval" / "arxiv_topics_dev.jsonl",
)
SHIPPED = ROOT / "digest" / "data" / space.BACKGROUND_FILE

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
    return space.document(paper(row, categories=False))


def learn(rows: list[Row], dimensions: int) -> space.Background:
    """A grouping space learned from rows: their text and their arXiv categories."""
    texts = [background_text(r) for r in rows]
    categories = [r.get("categories") or [r["topic"]] for r in rows]
    return space.Background.build(texts, dimensions, categories=categories)


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


def ours(*, background, categories: bool, kept: list | None = None) -> Method:
    """digest.themes.group with a given background choice, returning theme indices.

    ``kept`` collects (papers, themes) of every batch, for scoring the labels afterwards.
    """

    def method(rows: list[Row]) -> Sequence[int]:
        bg = background(rows) if callable(background) else background
        papers = [paper(r, categories=categories) for r in rows]
        result = themes.group(papers, background=bg)
        if kept is not None:
            kept.append((papers, result))
        return labels_of(result, rows)

    return method


MIN_COVERAGE = 1 / 3  # below this a label describes a minority of its theme
TAXONOMY = load_taxonomy(None)
_GENERIC_STEMS = frozenset(theme_labels.analyze(" ".join(words.GENERIC)))
_CONJUNCTION = re.compile(r"\S\s+(?:and|&)\s+\S", re.IGNORECASE)


def _words(p: Paper) -> frozenset[str]:
    return frozenset(theme_labels.analyze(" ; ".join((p.title, *p.keywords, p.abstract))))


def label_coverage(
    theme: Theme, papers: list[Paper], df: dict[str, int], words: dict[str, frozenset[str]]
) -> tuple[float, float, float]:
    """(key-word coverage, all-words coverage, precision) of a theme's label; see the docs."""
    stems = theme_labels.analyze(theme.label)
    content = [s for s in stems if s not in _GENERIC_STEMS] or stems
    if not content:
        return 0.0, 0.0, 0.0
    key = min(content, key=lambda s: (df.get(s, 0), s))
    names = getattr(theme_labels, "CATEGORY_NAMES", {})

    def filed(p: Paper) -> bool:  # a category or taxonomy label covers what it names
        return theme.label in _names(p, names) or (
            theme.label in TAXONOMY.topics and theme.label in _topics(p)
        )

    def has_key(p: Paper) -> bool:
        return key in words[p.arxiv_id] or filed(p)

    key_hits = sum(has_key(p) for p in theme.papers)
    all_hits = sum(all(s in words[p.arxiv_id] for s in content) or filed(p) for p in theme.papers)
    anywhere = sum(has_key(p) for p in papers)
    n = len(theme.papers)
    return key_hits / n, all_hits / n, key_hits / max(1, anywhere)


def _topics(p: Paper, known: dict[str, list[str]] = {}) -> list[str]:  # noqa: B006
    """TAXONOMY.match, once per paper (the patterns cost about 1 ms a paper)."""
    if p.arxiv_id not in known:
        known[p.arxiv_id] = TAXONOMY.match(p)
    return known[p.arxiv_id]


def _names(p: Paper, names: dict[str, str]) -> set[str]:
    out = set()
    for cat in p.categories:
        for part in (cat, cat.split(".")[0]):
            if part in names:
                out.add(names[part])
    return out


def label_quality(kept: list) -> dict[str, float]:
    """Mean coverage, share under 1/3, share of "X and Y" labels, mean words, over all themes."""
    key_cov, all_cov, precision, lengths, conjunctions = [], [], [], [], 0
    for papers, result in kept:
        words = {p.arxiv_id: _words(p) for p in papers}
        df: dict[str, int] = {}
        for found in words.values():
            for s in found:
                df[s] = df.get(s, 0) + 1
        for theme in result:
            if theme.label in (REMAINDER_LABEL, themes.ALL_PAPERS_LABEL):
                continue
            key, every, sharp = label_coverage(theme, papers, df, words)
            key_cov.append(key)
            all_cov.append(every)
            precision.append(sharp)
            lengths.append(len(theme.label.split()))
            conjunctions += bool(_CONJUNCTION.search(theme.label))
    n = max(1, len(key_cov))
    return {
        "themes": len(key_cov),
        "coverage": float(np.mean(key_cov)) if key_cov else 0.0,
        "all_words": float(np.mean(all_cov)) if all_cov else 0.0,
        "under": sum(c < MIN_COVERAGE for c in key_cov) / n,
        "precision": float(np.mean(precision)) if precision else 0.0,
        "and": conjunctions / n,
        "words": float(np.mean(lengths)) if lengths else 0.0,
    }


def shape_stats(kept: list) -> dict[str, float]:
    """The edition's shape: largest theme and remainder shares, one-paper themes, sub-themes."""
    largest, other, singles, big = [], [], 0, []
    for papers, result in kept:
        n = len(papers)
        sizes = [len(t.papers) for t in result if t.label != REMAINDER_LABEL]
        largest.append(max(sizes, default=0) / n)
        if n >= 20:
            big.append(largest[-1])
        other.append(sum(len(t.papers) for t in result if t.label == REMAINDER_LABEL) / n)
        singles += sum(size == 1 for size in sizes)
    return {
        "largest": float(np.mean(largest)),
        "largest_max": max(big, default=0.0),
        "other": float(np.mean(other)),
        "other_max": max(other, default=0.0),
        "singles": singles,
        "themes": float(np.mean([len(r) for _, r in kept])),
    }


def print_shapes(kept: dict[str, list]) -> None:
    """One line per run: the issue's shape rules, measured."""
    print(
        f"\nshape (rules: largest <= 30% at 20+ papers, Other <= 15%, no one-paper theme)"
        f"\n{'run':28} {'themes':>6} {'largest':>7} {'max':>6} {'Other':>6} {'max':>6} {'1-paper':>7}"
    )
    for name, runs in kept.items():
        q = shape_stats(runs)
        print(
            f"{name:28} {q['themes']:6.1f} {q['largest']:7.1%} {q['largest_max']:6.1%} "
            f"{q['other']:6.1%} {q['other_max']:6.1%} {q['singles']:7d}"
        )


HF_DAYS = [
    ROOT / "examples" / "papers.json",
    ROOT / "tests" / "fixtures" / "hf_daily_papers_2024-10-25.json",
    ROOT / "tests" / "fixtures" / "hf_daily_papers_recent.json",
]


def hf_days(paths: list[Path]) -> None:
    """The bundled Hugging Face days as digest groups them: shape, words per label, labels."""
    from digest.sources.jsonfile import load_papers

    for path in paths:
        if not path.exists():
            continue
        papers = load_papers(path).papers
        start = time.perf_counter()
        result = themes.group(papers)
        seconds = time.perf_counter() - start
        kept = [(papers, result)]
        q, shape = label_quality(kept), shape_stats(kept)
        print(
            f"\n{path.relative_to(ROOT)}: {len(papers)} papers, {len(result)} themes in "
            f"{seconds:.2f} s; largest {shape['largest']:.0%}, Other {shape['other']:.0%}, "
            f"one-paper themes {shape['singles']}, {q['words']:.2f} words per label, "
            f"key-word coverage {q['coverage']:.0%}"
        )
        show_labels(kept, 1)


def show_labels(kept: list, count: int) -> None:
    """Print each theme's label, size and key-word coverage for the first ``count`` batches."""
    for papers, result in kept[:count]:
        words = {p.arxiv_id: _words(p) for p in papers}
        df: dict[str, int] = {}
        for found in words.values():
            for s in found:
                df[s] = df.get(s, 0) + 1
        shown = []
        for theme in result:
            if theme.label == REMAINDER_LABEL:
                shown.append(f"{theme.label} ({len(theme.papers)})")
                continue
            key, _, _ = label_coverage(theme, papers, df, words)
            shown.append(f"{theme.label} ({len(theme.papers)}, {key:.0%})")
        print(f"  {len(papers)} papers: " + "; ".join(shown))


def embedding_methods(sample, held_out, cache: Path | None = None) -> list[tuple[str, Method]]:
    """The `embeddings` extra; each paper is embedded once (timed) and looked up per batch.

    ``cache``: an .npz of vectors by paper id, read if present and (re)written with any papers
    it lacked, so that trying grouping settings does not re-embed thousands of papers.
    """
    from digest.themes.embeddings import load_embedder

    rows = list({r["id"]: r for _, batch in sample for r in batch}.values())
    stored: dict[str, np.ndarray] = {}
    if cache is not None and cache.exists():
        with np.load(cache) as data:
            stored = dict(zip(data["ids"].tolist(), data["vectors"], strict=True))
    missing = [r for r in rows if r["id"] not in stored]
    if missing:
        start = time.perf_counter()
        fresh = load_embedder()([f"{r['title']}. {r['abstract']}" for r in missing])
        per_150 = (time.perf_counter() - start) / len(missing) * 150
        print(f"embedding {len(missing)} papers took {per_150:.2f} s per 150 (not in s/150 below)")
        stored.update(zip([r["id"] for r in missing], fresh, strict=True))
        if cache is not None:
            np.savez(cache, ids=np.array(list(stored)), vectors=np.array(list(stored.values())))
    else:
        print(f"embeddings of {len(rows)} papers read from {cache} (not timed)")
    vectors = [stored[r["id"]] for r in rows]
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
    parser.add_argument(
        "--embedding-cache",
        type=Path,
        metavar="NPZ",
        help="with --embeddings: read/write paper vectors here (e.g. /tmp/digest-minilm.npz)",
    )
    parser.add_argument(
        "--days",
        help="comma-separated announcement days to sample batches from (default: all)",
    )
    parser.add_argument(
        "--digest-only", action="store_true", help="skip the baselines (faster, for tuning)"
    )
    parser.add_argument(
        "--show-labels", type=int, default=0, metavar="N", help="print the labels of N batches"
    )
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)

    days = load(args.data)
    if args.build_background:
        rows = [r for rows in days.values() for r in rows]
        learn(rows, args.dimensions).save(SHIPPED)
        texts = rows
        print(f"wrote {SHIPPED} from {len(texts)} papers ({SHIPPED.stat().st_size} bytes)")
        return 0

    # Two folds of alternate days: a batch is scored with the space built from the other fold.
    names = sorted(days)
    folds = [names[0::2], names[1::2]]
    spaces = {}
    for i, fold in enumerate(folds):
        learned = learn([r for d in fold for r in days[d]], args.dimensions)
        for day in folds[1 - i]:
            spaces[day] = learned
    by_id = {r["id"]: r["date"] for rows in days.values() for r in rows}

    def held_out(rows: list[Row]):
        return spaces[by_id[rows[0]["id"]]]

    chosen = {d: days[d] for d in args.days.split(",") if d in days} if args.days else days
    if not chosen:
        parser.error(f"--days: none of {args.days} is in {args.data.name} ({', '.join(days)})")
    sample = batches(chosen, args.batches, args.seed)
    sizes = [len(rows) for _, rows in sample]
    print(
        f"{len(sample)} one-day batches of {min(sizes)}-{max(sizes)} papers (mean "
        f"{np.mean(sizes):.0f}), seed {args.seed}, {args.data.name}; folds {folds}"
    )
    kept: dict[str, list] = {"title+abstract, cross-day": [], "+ arXiv categories": []}
    baselines: list[tuple[str, Method]] = [
        ("baseline TF-IDF + KMeans, silhouette k", kmeans_silhouette),
        ("baseline TF-IDF + NMF, k = sqrt(n/2)", nmf_sqrt),
        ("digest, title+abstract, no background", ours(background=False, categories=False)),
    ]
    methods: list[tuple[str, Method]] = [
        *([] if args.digest_only else baselines),
        (
            "digest, title+abstract, cross-day space",
            ours(background=held_out, categories=False, kept=kept["title+abstract, cross-day"]),
        ),
    ]
    if SHIPPED.exists() and not args.digest_only:
        methods.append(
            ("digest, title+abstract, shipped space*", ours(background=True, categories=False))
        )
    methods.append(
        (
            "digest, + arXiv categories, cross-day",
            ours(background=held_out, categories=True, kept=kept["+ arXiv categories"]),
        )
    )
    if args.embeddings:
        methods += embedding_methods(sample, held_out, args.embedding_cache)
    results = {}
    print(f"{'method':44} {'AMI':>6} {'ARI':>6} {'s/150':>7}")
    for name, method in methods:
        ami, ari, secs = results[name] = score(method, sample)
        print(f"{name:44} {ami:6.3f} {ari:6.3f} {secs:7.3f}", flush=True)
    head = results["digest, title+abstract, cross-day space"]
    nmf = results.get("baseline TF-IDF + NMF, k = sqrt(n/2)", (math.nan, math.nan, 0.0))
    print(
        f"headline (title+abstract, cross-day): AMI {head[0]:.3f} ({head[0] / nmf[0]:.2f}x NMF), "
        f"ARI {head[1]:.3f} ({head[1] / nmf[1]:.2f}x NMF), {head[2]:.2f} s per 150 papers"
    )
    print("* the shipped space was learned from this file's days: optimistic here, shown for scale")
    print(
        f"\nlabels (every theme but the remainder; key word = rarest content word of the label)"
        f"\n{'run':28} {'themes':>6} {'coverage':>8} {'all words':>9} {'< 1/3':>6} "
        f"{'precision':>9} {'X and Y':>7} {'words':>5}"
    )
    for name, runs in kept.items():
        q = label_quality(runs)
        print(
            f"{name:28} {q['themes']:6d} {q['coverage']:8.1%} {q['all_words']:9.1%} "
            f"{q['under']:6.1%} {q['precision']:9.1%} {q['and']:7.1%} {q['words']:5.2f}"
        )
    print_shapes(kept)
    for name, runs in kept.items():
        if args.show_labels:
            print(f"\nlabels, {name}:")
            show_labels(runs, args.show_labels)
    print("\nthe bundled Hugging Face days (shipped space):")
    hf_days(HF_DAYS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
