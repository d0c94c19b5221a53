"""Archive search: the full-text index (FTS5 on SQLite) vs the LIKE scan a sceptic would write.

Run by hand: python bench/search.py [papers]   (default 20,000; needs the test extra)
Both sides run on the same SQLite file in the same run, with the same meaning (every word must
appear; most upvoted first; the first 40 and the count). Also timed: the whole request a reader
makes, GET /archive/search?q=..., through the web app in-process.
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from starlette.testclient import TestClient

from digest.config import load_settings
from digest.delivery.transports import MemoryTransport
from digest.sources.jsonfile import load_papers
from digest.store import Store
from digest.store.search import search_words
from digest.web import create_app

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "papers.json"
QUERIES = ["diffusion", "language model", "video generation", "reinforcement learning agent",
           "contrastive", "memory", "benchmark evaluation", "zebra"]  # fmt: skip
REPEATS = 5


def fill(store: Store, n: int) -> None:
    """``n`` papers: the 48 bundled ones again and again, each copy with its own id and votes."""
    base = load_papers(EXAMPLES).papers
    batch = []
    for i in range(n):
        paper = base[i % len(base)]
        batch.append(dataclasses.replace(paper, arxiv_id=f"{2000 + i // 90000}.{i % 90000 + 10000:05d}",
                                         upvotes=(i * 7919) % 500))  # fmt: skip
        if len(batch) == 2000:
            store.upsert_papers(batch)
            batch = []
    store.upsert_papers(batch)


def like_scan(store: Store, query: str) -> tuple[int, list[str]]:
    """The baseline: every word as %word% over lower(title || abstract), same order and limit."""
    words = search_words(query)
    text = "lower(title || ' ' || abstract)"
    where = " AND ".join(f"{text} LIKE :w{i}" for i in range(len(words)))
    params = {f"w{i}": f"%{w}%" for i, w in enumerate(words)}
    with store.engine.connect() as conn:
        total = conn.execute(sa.text(f"SELECT count(*) FROM papers WHERE {where}"), params).scalar()
        ids = conn.execute(
            sa.text(f"SELECT arxiv_id FROM papers WHERE {where} "
                    "ORDER BY upvotes DESC, first_seen_at DESC, id DESC LIMIT 40"), params,
        ).scalars().all()  # fmt: skip
    return total, list(ids)


def timed(run, query: str) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        run(query)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    folder = Path(tempfile.mkdtemp(prefix="digest-bench-search-"))
    url = f"sqlite:///{folder / 'digest.db'}"
    store = Store(url)
    store.migrate()
    start = time.perf_counter()
    fill(store, n)
    print(f"stored {n:,} papers in {time.perf_counter() - start:.1f} s (search text included)")
    settings = load_settings(database_url=url, secret_key="bench-secret-0123456789-abcdefghijklm")
    app = create_app(settings, store, transport=MemoryTransport())
    ours_total = base_total = page_total = 0.0
    with TestClient(app) as client:
        print(f"{'query':32} {'matches':>8} {'index ms':>9} {'LIKE ms':>9} {'page ms':>8}")
        for query in QUERIES:
            result = store.search_papers(query, limit=40)
            scan_total, _ids = like_scan(store, query)
            ours = timed(lambda q: store.search_papers(q, limit=40), query)
            base = timed(lambda q: like_scan(store, q), query)
            page = timed(lambda q: client.get("/archive/search", params={"q": q}), query)
            ours_total, base_total, page_total = (
                ours_total + ours,
                base_total + base,
                page_total + page,
            )
            note = "" if scan_total >= result.total else "  (LIKE finds fewer?)"
            print(f"{query:32} {result.total:>8,} {ours * 1000:>9.1f} {base * 1000:>9.1f} "
                  f"{page * 1000:>8.1f}{note}")  # fmt: skip
    print(f"index vs LIKE scan: {base_total / ours_total:.1f}x faster over {len(QUERIES)} queries; "
          f"a whole search page takes {page_total / len(QUERIES) * 1000:.0f} ms on average")  # fmt: skip
    store.close()


if __name__ == "__main__":
    main()
