"""Benchmark: CPU per email of each subscriber's own digest, against a digest shared by all.

    python bench/assembly.py                      # 20,000 subscribers, 3 rounds, medians
    python bench/assembly.py --subscribers 5000 --repeat 5

In one process, on the bundled example day (examples/papers.json grouped as `digest build`
groups it): digest's side is what the send loop does for subscribers who each follow 3 random
topics of the 18 (selections differ as on a real list): ``Contents.prepare`` per batch of
1,000 (selection from the edition's topic matrix, vectorised), then ``Contents.message`` per
subscriber (assembly from pre-rendered pieces, signed links, MIME bytes). The baseline is the
best case before issue 17: one selection rendered once and only spliced per subscriber
(``PreparedMessage.for_subscriber``: links, headers, bytes). Rounds alternate the two sides;
CPU time (process_time), not wall time, so other load on the machine counts less.
Target (issue 17 item 1): at most 0.3 ms per email whether 1 or 100,000 selections differ.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime

from harness import BENCH_SECRET, ROOT, median, spread

from digest.config import load_settings
from digest.delivery.contents import Contents
from digest.delivery.options import SendOptions
from digest.models import Edition, Frequency, Subscriber
from digest.sources.jsonfile import load_papers
from digest.themes import grouping, rank
from digest.themes.taxonomy import load_taxonomy

NOW = datetime(2026, 11, 27, 7, tzinfo=UTC)
BATCH = SendOptions().batch_size  # rows the send loop claims (and selects for) at once


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    papers = load_papers(ROOT / "examples" / "papers.json").papers
    themes = rank.order_themes(grouping.group(papers), NOW)
    edition = Edition(key="daily-2026-11-27", frequency=Frequency.DAILY, date=NOW.date(),
                      themes=tuple(themes), created_at=NOW, id=1)  # fmt: skip
    settings = load_settings(
        database_url=f"sqlite:///{tempfile.mkdtemp()}/unused.db", secret_key=BENCH_SECRET,
        base_url="https://digest.example.org", sender="digest <digest@example.org>",
    )  # fmt: skip
    topics, rng = list(load_taxonomy().topics), random.Random(17)
    people = [Subscriber(f"reader{i}@example.com", id=i + 1, topics=tuple(rng.sample(topics, 3)))
              for i in range(args.subscribers)]  # fmt: skip
    ours, base, distinct = [], [], set()
    for round_ in range(args.repeat):
        contents = Contents(edition, settings)  # a fresh send: pieces rendered again
        shared = contents.renderer.prepare_digest(edition, contents.selection(people[0]))
        sides = [("ours", contents.message), ("base", shared.for_subscriber)]
        for name, make in sides if round_ % 2 == 0 else sides[::-1]:
            start = time.process_time()
            for at in range(0, len(people), BATCH):
                batch = people[at : at + BATCH]
                if name == "ours":  # as the send loop does per claimed batch
                    contents.prepare(batch)
                for person in batch:
                    make(person)
            ms = (time.process_time() - start) * 1000 / len(people)
            (ours if name == "ours" else base).append(ms)
        distinct = {rank.selection_key(p) for p in people}
        print(f"  round {round_ + 1}: own selections {ours[-1]:.3f} ms/email, shared digest "
              f"{base[-1]:.3f} ms/email, ratio {base[-1] / ours[-1]:.2f}", flush=True)  # fmt: skip
    print(f"\n{args.subscribers:,} subscribers, {len(distinct):,} distinct selections, "
          f"{args.repeat} rounds (medians; every round after the colon)")  # fmt: skip
    print(f"own selection, assembled  {median(ours):.3f} ms: {spread(ours, '{:.3f}')}")
    print(f"shared digest, spliced    {median(base):.3f} ms: {spread(base, '{:.3f}')}")
    print(f"ratio shared/own          {median(base) / median(ours):.2f}")
    print("target: <= 0.3 ms CPU per email, however many selections differ")


if __name__ == "__main__":
    main()
