"""Each reader's own selection, as `rank.select` and the send make it: quality and cost at scale.

Quality (issue 14's offline evaluation, through the path a send takes). Simulated readers of
bench/foryou.py: each likes 5 papers of one arXiv topic announced on earlier days and gets
`--max-papers 10` from a later day's batch of 100-150 papers, chosen by
`digest.themes.rank.select` with a `for_me` scorer (the store lookup replaced by a dict of the
liked rows, the text space rebuilt without the reader's day, "cross-day", as held-out days
will see it). Reported: the mean share of their 10 papers in their topic at the default blend,
with and without simulated votes, against the base rate and the trending-only selection
(blend 0), and the same readers through `relevance.choose` (must agree).

Scale (issue 14 item 5). `--subscribers` readers (5-50 likes, 0-5 dislikes each, drawn from
the dev file and the edition itself) over a 150-paper edition, in a fresh process, through
what a send calls for each claimed batch of `--batch` readers: `Contents.prepare` (the
likes scored in one product, `ForMe.prepare`, and the batch's selections chosen at once),
then `Contents.selection` for each reader; the same readers without likes go the same way
(the edition's topic matrix answers them, digest.themes.matching). Printed, CPU seconds
beside wall seconds (the machine is shared):

* scoring (`ForMe.prepare`) and selection (the rest), with likes and without, and what the
  likes add to a send; of it, the rated papers' vectors, made once per edition;
* against the simple alternatives measured in the same run, on a sample, extrapolated: each
  reader scored alone (`ForMe.scores` without a prepared batch), and each reader selected
  alone (`rank.select` on a prepared batch, the way the send selected before batches);
* the process's peak RSS (VmHWM) after reading the inputs and after everyone.

Run by hand, never from tests:
    python bench/readers.py                            # 40 readers, 100,000 subscribers
    python bench/readers.py --readers 200 --seed 1     # more readers, another sample
    python bench/readers.py --skip-scale
    python bench/readers.py --skip-quality --subscribers 100000 --batch 200
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import foryou  # noqa: E402  (bench/foryou.py: readers, spaces, shares)
from harness import BENCH_SECRET  # noqa: E402

from digest.config import load_settings  # noqa: E402
from digest.delivery.contents import Contents  # noqa: E402
from digest.delivery.heap import steady_heap  # noqa: E402
from digest.models import Edition, Frequency, Subscriber, Theme  # noqa: E402
from digest.themes.rank import for_me, select  # noqa: E402
from digest.themes.relevance import DEFAULT_BLEND, TextSpace  # noqa: E402
from digest.themes.taxonomy import load_taxonomy  # noqa: E402

NOW = datetime(2026, 1, 29, tzinfo=UTC)
TAXONOMY = load_taxonomy()


# --- quality -------------------------------------------------------------------------------


def select_for_reader(reader: dict, space: TextSpace, blend: float | None, votes: bool) -> list:
    """The reader's papers as `rank.select` picks them for a send (one theme: order is the test)."""
    counts = reader["votes"] if votes else [0] * len(reader["batch"])
    rows = {r["id"]: r for r in reader["batch"]}
    papers = [foryou.as_paper(r, v) for r, v in zip(reader["batch"], counts, strict=True)]
    edition = Edition("daily-eval", Frequency.DAILY, NOW.date(), (Theme("all", tuple(papers)),))
    liked = {r["id"]: foryou.as_paper(r) for r in reader["likes"] + reader["dislikes"]}
    subscriber = Subscriber(
        "reader@example.org",
        max_papers=foryou.MAX_PAPERS,
        likes=tuple(r["id"] for r in reader["likes"]),
        dislikes=tuple(r["id"] for r in reader["dislikes"]),
        blend=blend,
    )
    scorer = for_me(edition, NOW, lambda ids: {a: liked[a] for a in ids if a in liked}, space)
    chosen = select(edition, subscriber, taxonomy=TAXONOMY, default_max=30, now=NOW, scorer=scorer)
    return [rows[p.paper.arxiv_id] for t in chosen.themes for p in t.papers]


def quality(rows: list[dict], count: int, seed: int) -> None:
    """Print in-topic shares through `select` (see the module docs)."""
    group = foryou.readers(rows, count, seed)
    spaces = foryou._cross_day_spaces(rows, group)
    base = np.mean([foryou.share(r["batch"], r["topic"]) for r in group])
    print(f"quality: {len(group)} readers (seed {seed}), {foryou.LIKES} likes each, "
          f"{foryou.MAX_PAPERS} papers each, through rank.select")  # fmt: skip
    print(f"  base rate of the reader's topic in the batch         {base:.3f}")
    for name, votes in (("no votes", False), ("simulated votes", True)):
        trend = [foryou.share(select_for_reader(r, spaces[r["day"]], 0.0, votes), r["topic"])
                 for r in group]  # fmt: skip
        mine = [foryou.share(select_for_reader(r, spaces[r["day"]], None, votes), r["topic"])
                for r in group]  # fmt: skip
        same = np.mean([
            [x["id"] for x in select_for_reader(r, spaces[r["day"]], DEFAULT_BLEND, votes)]
            == [x["id"] for x in foryou.pick(r, spaces[r["day"]], DEFAULT_BLEND, votes)]
            for r in group
        ])  # fmt: skip
        print(f"  {name}:")
        print(f"    trending only (blend 0)                             {np.mean(trend):.3f}")
        print(f"    for me, default blend ({DEFAULT_BLEND})   {np.mean(mine):.3f} "
              f"+- {foryou._se(mine):.3f}   same papers as relevance.choose: {same:.0%}")  # fmt: skip


# --- scale ---------------------------------------------------------------------------------


def scale(rows: list[dict], subscribers: int, batch: int, seed: int) -> None:
    """Run the scale worker in a fresh process and print what it measured."""
    worker = subprocess.run(
        [sys.executable, __file__, "--scale-worker", "--subscribers", str(subscribers),
         "--batch", str(batch), "--seed", str(seed), "--data", str(ARGS.data)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    r = json.loads(worker.stdout)
    n = r["subscribers"]
    print(f"scale: {n:,} subscribers ({r['ratings']:.1f} ratings on average), "
          f"{r['papers']} papers, batches of {batch}, {r['rated']:,} distinct rated papers, "
          "through the send's Contents.prepare and Contents.selection")  # fmt: skip
    print("  wall s (CPU s)                                   with likes      same readers without")
    for name, what in (("scoring", "scoring (ForMe.prepare)"),
                       ("select", "selection (the rest of both)")):  # fmt: skip
        w, p = r["likes"][name], r["plain"][name]
        print(f"  {what:46s} {w[0]:6.2f} ({w[1]:6.2f})   {p[0]:6.2f} ({p[1]:6.2f})")
    added = [
        sum(r["likes"][k][i] - r["plain"][k][i] for k in ("scoring", "select")) for i in (0, 1)
    ]
    print(f"  what likes add to a send: {added[0]:.2f} s wall, {added[1]:.2f} s CPU "
          f"(of it, the rated papers' vectors once: {r['load']:.2f} s)")  # fmt: skip
    print(f"  scoring each reader alone instead of by batch (timed on {r['sample']:,}, "
          f"extrapolated): {r['alone']:.2f} s CPU, {r['alone'] / r['likes']['scoring'][1]:.1f}x the batches")  # fmt: skip
    print(f"  selecting each reader alone (rank.select on the prepared batch, timed on {r['sample']:,}, "
          f"extrapolated): {r['one_by_one']:.2f} s CPU, {r['one_by_one'] / r['likes']['select'][1]:.1f}x the batches")  # fmt: skip
    print(f"  peak RSS: {r['rss_inputs']:.0f} MB with digest imported and the edition scored, "
          f"{r['rss_after']:.0f} MB after everyone")  # fmt: skip


def _subscribers(rng, start: int, stop: int, rated_ids: list[str], edition_ids: list[str]):
    """Readers start..stop-1: likes and dislikes drawn from older papers and the edition's."""
    pool = rated_ids + edition_ids
    out = []
    for i in range(start, stop):
        ids = rng.choice(
            len(pool), int(rng.integers(5, 51)) + int(rng.integers(0, 6)), replace=False
        )
        likes = int(len(ids) * 0.9)
        chosen = [pool[j] for j in ids]
        out.append(Subscriber(f"r{i}@example.org", id=i, max_papers=10,
                              likes=tuple(chosen[:likes]), dislikes=tuple(chosen[likes:])))  # fmt: skip
    return out


class _Clock:
    """Wall and CPU seconds spent in timed blocks, by side and name."""

    def __init__(self) -> None:
        self.totals: dict[tuple[str, str], list[float]] = {}

    def __call__(self, side: str, name: str, work):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return work()
        finally:
            total = self.totals.setdefault((side, name), [0.0, 0.0])
            total[0] += time.perf_counter() - wall
            total[1] += time.process_time() - cpu

    def sides(self) -> dict[str, dict[str, list[float]]]:
        """Per side: scoring (ForMe.prepare), and the rest of the batch's prepare and selections."""
        out = {}
        for side in ("likes", "plain"):
            scoring, prepare, each = (
                self.totals.get((side, k), [0.0, 0.0]) for k in ("scoring", "prepare", "each")
            )
            out[side] = {
                "scoring": scoring,
                "select": [p - s + e for p, s, e in zip(prepare, scoring, each, strict=True)],
            }
        return out


def scale_worker(args) -> None:
    """In a fresh process: each batch as the send does it, with likes and without; JSON out."""
    rows = foryou.load(args.data)
    rng = np.random.default_rng(args.seed)
    day = max({r["date"] for r in rows}, key=lambda d: sum(r["date"] == d for r in rows))
    edition_rows = [r for r in rows if r["date"] == day][:150]
    votes = foryou.simulated_votes(len(edition_rows), random.Random(args.seed))
    papers = [foryou.as_paper(r, v) for r, v in zip(edition_rows, votes, strict=True)]
    edition = Edition("daily-bench", Frequency.DAILY, NOW.date(), (Theme("all", tuple(papers)),),
                      created_at=NOW)  # fmt: skip
    stored = {r["id"]: foryou.as_paper(r) for r in rows if r["date"] != day}
    older = sorted(stored)

    def lookup(ids):  # the store's get_papers, from memory: the database is not measured here
        return {a: stored[a] for a in ids if a in stored}

    settings = load_settings(
        database_url=f"sqlite:///{tempfile.mkdtemp()}/unused.db", secret_key=BENCH_SECRET,
        base_url="https://digest.example.org", sender="digest <digest@example.org>",
        max_papers=30,
    )  # fmt: skip
    # One Contents per side, as a send makes one; the edition's topic matrix and vectors are
    # made before the clock starts (a send's first batch makes them, once per edition).
    sides = {side: Contents(edition, settings, lookup=lookup) for side in ("likes", "plain")}
    for contents in sides.values():
        contents.index  # noqa: B018
        contents.scorer.edition_vectors  # noqa: B018
    rss_inputs = foryou._peak_rss_mb()
    clock = _Clock()
    for side, contents in sides.items():  # the scoring within Contents.prepare, timed apart
        score = contents.scorer.prepare
        contents.scorer.prepare = lambda readers, side=side, score=score: clock(
            side, "scoring", lambda: score(readers)
        )
    ratings = 0

    def send(readers, side):
        """What the send does with a claimed batch before rendering: prepare, then select each."""
        contents = sides[side]
        clock(side, "prepare", lambda: contents.prepare(readers))
        clock(side, "each", lambda: [contents.selection(s) for s in readers])

    with steady_heap():  # the collector's pace of a send (delivery.send.send_edition)
        for lo in range(0, args.subscribers, args.batch):
            readers = _subscribers(
                rng,
                lo,
                min(lo + args.batch, args.subscribers),
                older,
                list(sides["likes"].scorer.columns),
            )
            ratings += sum(len(s.likes) + len(s.dislikes) for s in readers)
            send(readers, "likes")
            send([Subscriber(s.email, id=s.id, max_papers=10) for s in readers], "plain")
    rss_after = foryou._peak_rss_mb()
    scorer = sides["likes"].scorer
    fresh = Contents(edition, settings, lookup=lookup).scorer
    began = time.process_time()
    fresh._load(set(scorer._rated))  # the one-off cost of the rated papers' vectors
    load = time.process_time() - began

    sample = _subscribers(
        np.random.default_rng(args.seed + 1),
        0,
        min(2000, args.subscribers),
        older,
        list(scorer.columns),
    )
    began = time.process_time()
    for s in sample:
        fresh._rows.clear()
        fresh.scores(s)
    alone = (time.process_time() - began) / len(sample) * args.subscribers
    # The per-reader selection `rank.select` makes, on batches the scorer prepared (not timed).
    spent = 0.0
    for lo in range(0, len(sample), args.batch):
        part = sample[lo : lo + args.batch]
        fresh.prepare(part)
        began = time.process_time()
        for s in part:
            select(edition, s, taxonomy=TAXONOMY, default_max=30, now=NOW, scorer=fresh)
        spent += time.process_time() - began
    one_by_one = spent / len(sample) * args.subscribers
    print(json.dumps({
        "subscribers": args.subscribers, "papers": len(papers), "ratings": ratings / args.subscribers,
        "rated": len(scorer._rated), "load": load, "sample": len(sample), "alone": alone,
        "one_by_one": one_by_one, **clock.sides(),
        "rss_inputs": rss_inputs, "rss_after": rss_after,
    }))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run what the flags ask for (see the module docs)."""
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=foryou.DEFAULT_DATA)
    parser.add_argument("--readers", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--scale-worker", action="store_true", help=argparse.SUPPRESS)
    ARGS = parser.parse_args(argv)
    if ARGS.scale_worker:
        scale_worker(ARGS)
        return 0
    rows = foryou.load(ARGS.data)
    if not ARGS.skip_quality:
        quality(rows, ARGS.readers, ARGS.seed)
    if not ARGS.skip_scale:
        scale(rows, ARGS.subscribers, ARGS.batch, ARGS.seed)
    return 0


ARGS: argparse.Namespace


if __name__ == "__main__":
    raise SystemExit(main())
