"""Offline evaluation of "For me" (digest.themes.relevance): in-topic share for simulated readers, and cost.

Quality, as issue 14 asks. A reader likes 5 papers of one arXiv topic (the primary category,
`topic` in the labelled file, see ../shared/eval/README.md) announced on EARLIER days, and
receives `--max-papers 10` from a batch of 100-150 papers of a LATER day. Reported: the mean
share of their 10 papers in their topic, the base rate of that topic in the batches, and the
trending-only selection. The dev file has no votes, so trending-only is what digest sends with
zero engagement (every score ties; rank's tie-break, newest arXiv id first); the blend is also
run with simulated votes (log-normal upvotes, independent of topic, seeded) so that trending
has a say. A reader's topic is drawn uniformly from the topics with at least 10 papers in the
batch (so 10 in-topic papers are possible). Title and abstract only: the arXiv categories
*are* the labels.

Honesty: the shipped space (digest/data/relevance_space.npz) was learned from this file, so
scoring it on these days flatters it. The headline rebuilds the space in this run without the
reader's batch day ("cross-day"), as held-out later days will see it; "unseen topic" also
leaves the reader's topic out of the space's corpus (a topic the space never saw).

Scale: scoring, exclusion, top-k and the nearest liked paper for `--subscribers` subscribers
(5-50 likes, 0-5 dislikes each) over a 150-paper edition, batch by batch, against the
simple alternative (the same arithmetic per subscriber in a Python loop, on a sample,
extrapolated); prints both, their ratio and the peak RSS of a fresh process that runs the
scoring.

Run by hand, never from tests:
    python bench/foryou.py                        # 200 readers and 100,000 subscribers
    python bench/foryou.py --readers 40 --seed 1  # the issue's 40 readers, another sample
    python bench/foryou.py --skip-scale           # quality only
    python bench/foryou.py --skip-quality --subscribers 100000
    python bench/foryou.py --data held_out.jsonl  # another labelled file (later days)
    python bench/foryou.py --build-space          # rewrite digest/data/relevance_space.npz
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from digest.models import Paper, Theme  # noqa: E402
from digest.themes import relevance  # noqa: E402
from digest.themes.grouping import Background  # noqa: E402
from digest.themes.labels import analyze  # noqa: E402
from digest.themes.rank import order_themes  # noqa: E402
from digest.themes.relevance import Ratings, TextSpace  # noqa: E402

# ../shared/eval beside the checkout (or beside the folder of worktrees).
DEFAULT_DATA = next(
    (
        folder / "shared" / "eval" / "arxiv_topics_dev.jsonl"
        for folder in ROOT.parents
        if (folder / "shared" / "eval" / "arxiv_topics_dev.jsonl").is_file()
    ),
    ROOT.parent / "shared" / "eval" / "arxiv_topics_dev.jsonl",
)
SHIPPED = ROOT / "digest" / "data" / relevance.SPACE_FILE
LIKES, MAX_PAPERS, MIN_IN_TOPIC = 5, 10, 10
BLENDS = (0.0, 0.3, 0.5, 0.6, 0.7, 0.85, 1.0)
NOW = None  # papers without dates: trending age is 0 for all

Row = dict


# --- the space -----------------------------------------------------------------------------


def document(row: Row) -> str:
    """What the space reads of a paper: title twice, then abstract (as digest.themes does)."""
    return " . ".join((row["title"], row["title"], "", row["abstract"]))


def build_space(
    rows: list[Row], lsa_dims: int = 20, category_dims: int = 20, lsa_weight: float = 0.3
) -> TextSpace:
    """Learn the relevance space: 20 latent (LSA) directions and 20 that tell categories apart.

    The category directions are the top singular directions of a ridge regression from
    TF-IDF to the papers' arXiv categories (all of them, cross-lists too). Each block is
    scaled to unit mean length on the corpus, then weighted so that a dot product is about
    lsa_weight * latent + (1 - lsa_weight) * category similarity.
    """
    # Here, not at the top: the scale worker must import only what a sender imports.
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import MultiLabelBinarizer, normalize

    vectorizer = TfidfVectorizer(
        analyzer=analyze, sublinear_tf=True, min_df=3, max_df=0.3, max_features=8000
    )
    matrix = normalize(vectorizer.fit_transform([document(r) for r in rows]))
    latent = TruncatedSVD(lsa_dims, random_state=0).fit(matrix).components_
    categories = [r.get("categories") or [r["topic"]] for r in rows]
    labels = MultiLabelBinarizer().fit_transform(categories).astype(float)
    labels = labels[:, labels.sum(axis=0) >= 5]
    coef = Ridge(alpha=3.0).fit(matrix, labels).coef_
    _, strength, directions = np.linalg.svd(coef, full_matrices=False)
    category = strength[:category_dims, None] * directions[:category_dims]
    blocks = []
    for block, weight in ((latent, lsa_weight), (category, 1.0 - lsa_weight)):
        size = np.linalg.norm(matrix @ block.T, axis=1).mean()
        blocks.append(block * (np.sqrt(weight) / size))
    components = np.vstack(blocks)
    background = Background(dict(vectorizer.vocabulary_), vectorizer.idf_, components)
    projected = normalize(np.asarray(matrix @ components.T))
    return TextSpace(background, projected.mean(axis=0))


def grouping_space(rows: list[Row]) -> TextSpace:
    """The space grouping uses (digest.themes' background, 20 LSA dims), learned from rows."""
    return TextSpace.uncentred(Background.build([document(r) for r in rows], dimensions=20))


# --- simulated readers ---------------------------------------------------------------------


def load(path: Path) -> list[Row]:
    """The labelled rows, in file order."""
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def readers(rows: list[Row], count: int, seed: int, dislike: bool = False) -> list[dict]:
    """Seeded readers: a later day's batch, a topic with >= 10 papers in it, 5 earlier likes.

    With ``dislike`` each reader also dislikes 5 earlier papers of a second topic of the batch.
    """
    rng = random.Random(seed)
    days = sorted({r["date"] for r in rows})
    by_day = {d: [r for r in rows if r["date"] == d] for d in days}
    out: list[dict] = []
    for _ in range(count * 100):  # a file whose days never hold two big topics cannot loop
        if len(out) == count:
            break
        day = rng.choice(days[1:])
        batch = rng.sample(by_day[day], min(rng.randint(100, 150), len(by_day[day])))
        earlier = [r for d in days if d < day for r in by_day[d]]
        sizes = Counter(r["topic"] for r in batch)
        known = Counter(r["topic"] for r in earlier)
        topics = sorted(t for t, n in sizes.items() if n >= MIN_IN_TOPIC and known[t] >= LIKES)
        if len(topics) < 2:
            continue
        topic, other = rng.sample(topics, 2)
        reader = {"day": day, "batch": batch, "topic": topic, "other": other}
        reader["likes"] = rng.sample([r for r in earlier if r["topic"] == topic], LIKES)
        pool = [r for r in earlier if r["topic"] == other]
        reader["dislikes"] = rng.sample(pool, LIKES) if dislike else []
        reader["votes"] = simulated_votes(len(batch), rng)
        out.append(reader)
    if len(out) < count:
        raise SystemExit(f"only {len(out)} readers: too few days with two topics of >= 10 papers")
    return out


def simulated_votes(n: int, rng: random.Random) -> list[int]:
    """Heavy-tailed upvotes like a Hugging Face day (median ~7, a few in the hundreds)."""
    return [int(rng.lognormvariate(2.0, 1.2)) for _ in range(n)]


def as_paper(row: Row, votes: int = 0) -> Paper:
    """A Paper as a source would give it, without categories (they are the labels)."""
    return Paper(arxiv_id=row["id"], title=row["title"], abstract=row["abstract"], upvotes=votes)


def trending_order(papers: list[Paper]) -> list[Paper]:
    """The edition's papers in digest's trending order (rank's score and tie-break)."""
    return list(order_themes([Theme("all", tuple(papers))], NOW or _now())[0].papers)


def _now():
    from datetime import UTC, datetime

    return datetime(2026, 1, 29, tzinfo=UTC)


def pick(reader: dict, space: TextSpace, blend: float, votes: bool) -> list[Row]:
    """The reader's 10 papers through digest.themes.relevance.choose, as the send would pick them."""
    counts = reader["votes"] if votes else [0] * len(reader["batch"])
    rows = {r["id"]: r for r in reader["batch"]}
    papers = trending_order([as_paper(r, v) for r, v in zip(reader["batch"], counts, strict=True)])
    rated = [as_paper(r) for r in reader["likes"] + reader["dislikes"]]
    ratings = Ratings.from_lists(
        [range(len(reader["likes"]))], [range(len(reader["likes"]), len(rated))]
    )
    choice = relevance.choose(
        ratings,
        space.vectors(rated),
        np.full(len(rated), -1),
        space.vectors(papers),
        np.array([p.upvotes for p in papers], dtype=float),
        np.array([blend]),
        MAX_PAPERS,
    )
    return [rows[papers[c].arxiv_id] for c in choice.papers[0] if c >= 0]


def share(picked: list[Row], topic: str) -> float:
    """The share of the reader's papers in the given topic."""
    return sum(r["topic"] == topic for r in picked) / len(picked)


def quality(rows: list[Row], count: int, seed: int) -> None:
    """Print the in-topic share table for the readers (see the module docs)."""
    group = readers(rows, count, seed)
    print(f"{len(group)} readers (seed {seed}), {LIKES} likes each, {MAX_PAPERS} papers each")
    base = np.mean([share(r["batch"], r["topic"]) for r in group])
    print(f"  base rate of the reader's topic in the batch        {base:.3f}")
    spaces = _cross_day_spaces(rows, group)
    for name, votes in (("no votes", False), ("simulated votes", True)):
        print(f"  {name}:")
        trend = np.mean([share(pick(r, spaces[r["day"]], 0.0, votes), r["topic"]) for r in group])
        print(f"    trending only (blend 0)                            {trend:.3f}")
        for blend in BLENDS[1:]:
            got = [share(pick(r, spaces[r["day"]], blend, votes), r["topic"]) for r in group]
            mark = "  (default)" if blend == relevance.DEFAULT_BLEND else ""
            print(f"    for me, blend {blend:<4}  {np.mean(got):.3f} +- {_se(got):.3f}{mark}")
    _compare_spaces(rows, group, spaces)
    _dislikes(rows, count, seed, spaces)


def _cross_day_spaces(rows: list[Row], group: list[dict]) -> dict[str, TextSpace]:
    return {d: build_space([r for r in rows if r["date"] != d]) for d in {r["day"] for r in group}}


def _compare_spaces(rows: list[Row], group: list[dict], spaces: dict) -> None:
    """Pure relevance (blend 1, no votes) in other spaces, for the choice of the shipped one."""
    print("  spaces, blend 1, no votes:")
    others = {
        "relevance space, cross-day (headline)": lambda r: spaces[r["day"]],
        "grouping space (themes background), cross-day": _per_day(rows, group, grouping_space),
        "relevance space, shipped (saw these days)": lambda r: TextSpace.load(SHIPPED),
    }
    for name, space_of in others.items():
        got = [share(pick(r, space_of(r), 1.0, False), r["topic"]) for r in group]
        print(f"    {name:48s} {np.mean(got):.3f}")
        if name.endswith("(headline)"):
            by_topic: dict[str, list[float]] = {}
            for r, value in zip(group, got, strict=True):
                by_topic.setdefault(r["topic"], []).append(value)
            print(
                "      by topic: "
                + ", ".join(f"{t} {np.mean(v):.2f} ({len(v)})" for t, v in sorted(by_topic.items()))
            )
    unseen = {}
    got = []
    for r in group:
        key = (r["day"], r["topic"])
        if key not in unseen:
            corpus = [x for x in rows if x["date"] != r["day"] and x["topic"] != r["topic"]]
            unseen[key] = build_space(corpus)
        got.append(share(pick(r, unseen[key], 1.0, False), r["topic"]))
    print(f"    {'relevance space, cross-day, unseen topic':48s} {np.mean(got):.3f}")


def _per_day(rows: list[Row], group: list[dict], build):
    built = {d: build([r for r in rows if r["date"] != d]) for d in {r["day"] for r in group}}
    return lambda r: built[r["day"]]


def _dislikes(rows: list[Row], count: int, seed: int, spaces: dict) -> None:
    """Readers who also dislike 5 papers of a second topic: how much of it do they still get?"""
    group = readers(rows, count, seed, dislike=True)
    for day in {r["day"] for r in group} - spaces.keys():
        spaces[day] = build_space([x for x in rows if x["date"] != day])
    blend = relevance.DEFAULT_BLEND
    with_dislikes = [pick(r, spaces[r["day"]], blend, True) for r in group]
    without = [pick({**r, "dislikes": []}, spaces[r["day"]], blend, True) for r in group]
    print(f"  dislikes (default blend, simulated votes; {len(group)} readers):")
    for name, picked in (("likes only", without), ("likes + 5 dislikes", with_dislikes)):
        liked = np.mean([share(p, r["topic"]) for p, r in zip(picked, group, strict=True)])
        disliked = np.mean([share(p, r["other"]) for p, r in zip(picked, group, strict=True)])
        print(f"    {name:20s} liked topic {liked:.3f}   disliked topic {disliked:.3f}")


def _se(values: list[float]) -> float:
    return float(np.std(values) / np.sqrt(len(values)))


# --- scale ---------------------------------------------------------------------------------


def scale(rows: list[Row], subscribers: int, seed: int, sample: int = 2000) -> None:
    """Time choose() for many subscribers against a per-subscriber loop; print peak RSS.

    choose() runs in a fresh process that imports digest and reads the inputs (vectors and
    ratings as a store would hand them over), so its peak RSS is what a sender would add.
    """
    inputs = scale_inputs(rows, subscribers, seed)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "inputs.npz"
        np.savez(path, **inputs)
        worker = subprocess.run(
            [sys.executable, __file__, "--scale-worker", str(path)],
            check=True,
            capture_output=True,
            text=True,
        )
        result = json.loads(worker.stdout)
        with np.load(Path(folder) / "choice.npz") as saved:
            papers, nearest = saved["papers"], saved["nearest"]
    ratings = Ratings(inputs["indptr"], inputs["paper"], inputs["liked"])
    count = min(sample, subscribers)
    standard = relevance.standard_trending(inputs["trending"])  # once, as anyone would
    start = time.perf_counter()
    loop = [
        _one_subscriber(
            ratings, s, inputs["rated"], inputs["rated_columns"], inputs["edition"], standard
        )
        for s in range(count)
    ]
    per_subscriber = (time.perf_counter() - start) / count
    same = np.mean(
        [
            np.array_equal(mine, papers[s]) and np.array_equal(near, nearest[s])
            for s, (mine, near) in enumerate(loop)
        ]
    )
    counts = np.diff(inputs["indptr"])
    print(
        f"scale: {subscribers:,} subscribers ({counts.mean():.1f} ratings on average, "
        f"{inputs['liked'].mean():.0%} likes), {len(inputs['edition'])} papers, "
        f"top {MAX_PAPERS}, {inputs['edition'].shape[1]} dims"
    )
    ours = result["seconds"]
    loop_total = per_subscriber * subscribers
    print(
        f"  digest.themes.relevance.choose (batches of {relevance.BATCH})       {ours:.2f} s "
        f"({result['cpu']:.2f} s CPU)"
    )
    print(f"  per-subscriber loop (timed on {count:,}, extrapolated)  {loop_total:.2f} s")
    print(f"  ratio (loop / ours)                                  {loop_total / ours:.1f}x")
    print(f"  same papers and nearest liked as the loop            {same:.1%}")
    print(
        f"  peak RSS of the scoring process: {result['rss_before']:.0f} MB with digest imported "
        f"and the inputs read, {result['rss_after']:.0f} MB after scoring"
    )


def scale_inputs(rows: list[Row], subscribers: int, seed: int) -> dict[str, np.ndarray]:
    """Vectors of a 150-paper edition and of rated papers; 5-50 likes, 0-5 dislikes each."""
    rng = np.random.default_rng(seed)
    space = TextSpace.load(SHIPPED)
    day = max({r["date"] for r in rows}, key=lambda d: sum(r["date"] == d for r in rows))
    edition_rows = [r for r in rows if r["date"] == day][:150]
    older = [r for r in rows if r["date"] != day]
    # Rated papers: older ones and the edition's own, so some ratings must be excluded.
    rated_rows = older + edition_rows
    rated_columns = np.full(len(rated_rows), -1, dtype=np.int32)
    rated_columns[len(older) :] = np.arange(len(edition_rows))
    likes = rng.integers(5, 51, subscribers)
    dislikes = rng.integers(0, 6, subscribers)
    counts = likes + dislikes
    indptr = np.concatenate([[0], np.cumsum(counts)])
    slot = np.arange(indptr[-1]) - np.repeat(indptr[:-1], counts)
    return {
        "edition": space.vectors([as_paper(r) for r in edition_rows]),
        "rated": space.vectors([as_paper(r) for r in rated_rows]),
        "rated_columns": rated_columns,
        "indptr": indptr,
        "paper": rng.integers(0, len(rated_rows), indptr[-1], dtype=np.int32),
        "liked": slot < np.repeat(likes, counts),
        "trending": np.array(simulated_votes(len(edition_rows), random.Random(seed)), float),
    }


def scale_worker(path: Path) -> None:
    """In a fresh process: read the inputs, run choose(), print seconds and peak RSS as JSON."""
    with np.load(path) as data:
        inputs = {name: data[name] for name in data.files}
    ratings = Ratings(inputs["indptr"], inputs["paper"], inputs["liked"])
    blends = np.full(len(ratings), relevance.DEFAULT_BLEND)
    before = _peak_rss_mb()
    start, cpu = time.perf_counter(), time.process_time()
    choice = relevance.choose(
        ratings,
        inputs["rated"],
        inputs["rated_columns"],
        inputs["edition"],
        inputs["trending"],
        blends,
        MAX_PAPERS,
    )
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    after = _peak_rss_mb()
    np.savez(path.parent / "choice.npz", papers=choice.papers, nearest=choice.nearest_liked)
    print(json.dumps({"seconds": seconds, "cpu": cpu, "rss_before": before, "rss_after": after}))


def _one_subscriber(ratings, s, rated, rated_columns, edition, trending) -> tuple:
    """The simple alternative: the same arithmetic for one subscriber at a time."""
    lo, hi = ratings.indptr[s], ratings.indptr[s + 1]
    papers, liked = ratings.paper[lo:hi], ratings.liked[lo:hi]
    profile = rated[papers[liked]].mean(axis=0)
    if (~liked).any():
        profile = profile - relevance.DISLIKE_WEIGHT * rated[papers[~liked]].mean(axis=0)
    scores = edition @ profile
    scores = (scores - scores.mean()) / scores.std()
    blend = relevance.DEFAULT_BLEND
    total = (1 - blend) * trending + blend * scores
    held = rated_columns[papers]
    total[held[held >= 0]] = -np.inf
    top = np.argsort(-total, kind="stable")[:MAX_PAPERS]
    nearest = papers[liked][np.argmax(edition[top] @ rated[papers[liked]].T, axis=1)]
    return top, nearest


def _peak_rss_mb() -> float:
    """Peak RSS of this process in MB: VmHWM where Linux has it, else ru_maxrss.

    After fork and exec, ru_maxrss still counts the parent's pages at the fork; VmHWM starts
    afresh with the new program, so it is what this worker itself used.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- main ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the evaluation the flags ask for (see the module docs)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--readers", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--build-space", action="store_true", help=f"rewrite {SHIPPED}")
    parser.add_argument("--scale-worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.scale_worker:
        scale_worker(args.scale_worker)
        return 0
    rows = load(args.data)
    if args.build_space:
        build_space(rows).save(SHIPPED)
        print(f"wrote {SHIPPED} ({SHIPPED.stat().st_size / 1e6:.1f} MB) from {len(rows)} papers")
        return 0
    if not args.skip_quality:
        quality(rows, args.readers, args.seed)
    if not args.skip_scale:
        scale(rows, args.subscribers, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
