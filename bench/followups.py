"""Benchmark: what "since you last saw it" adds to a send run, beside what the run does anyway.

    python bench/followups.py                                  # SQLite and PostgreSQL, 2,000 subscribers
    python bench/followups.py --subscribers 10000 --database sqlite

A store holds ten earlier daily editions of 30 papers, each shown to every subscriber (ten
shown_emails rows per subscriber, ten snapshots of 30 papers), and 40 of those papers have
news since (20 gained code, 20 surged). For an eleventh edition, in batches of 200 as the
send run claims them, two things are timed side by side in one process:

- recording: ``Store.record_emails`` of the batch's 200 emails (ON CONFLICT DO NOTHING, plus
  the prune of rows past the window) against the floor a sceptic would write: one raw DBAPI
  executemany INSERT of the same rows into the same table;
- the whole per-batch step (``ShownBatches.prepare``: the batch's earlier emails, the choice
  of follow-ups, the record) against rendering the same batch's emails (``Contents.message``
  per subscriber), which every send run does anyway. The once-per-run part (snapshot and the
  papers with news) is printed apart.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from harness import databases
from harness import throwaway_database as database

from digest.config import load_settings
from digest.delivery.contents import Contents
from digest.delivery.shown import ShownBatches
from digest.models import Edition, Frequency, Paper, Theme
from digest.store import Store, schema

BATCH = 200
PAPERS = 30
EARLIER = 10


def paper(n: int, **values) -> Paper:
    """A synthetic paper with a plausible title and abstract."""
    base = {
        "arxiv_id": f"2611.{n:05d}",
        "title": f"Scaling robot grasping with diffusion policies, study {n}",
        "abstract": "We teach robots to grasp objects with diffusion models. " * 6,
        "authors": ("Ada Lovelace", "Alan Turing"),
        "upvotes": 10 + n % 7,
        "version": 1,
    }
    return Paper(**{**base, **values})


def setup(url: str, subscribers: int) -> tuple[Store, list[Edition], list[int]]:
    """Earlier editions shown to everyone, news on 40 papers, and an eleventh edition."""
    store = Store(url)
    store.migrate()
    now = datetime.now(UTC)
    with store.transaction() as conn:
        conn.execute(
            sa.insert(schema.subscribers),
            [
                {"email": f"reader{i}@example.org", "status": "active", "created_at": now}
                for i in range(subscribers)
            ],  # fmt: skip
        )
        ids = [r[0] for r in conn.execute(sa.select(schema.subscribers.c.id))]
    editions = []
    for e in range(EARLIER + 1):
        papers = [paper(e * PAPERS + i) for i in range(PAPERS)]
        store.upsert_papers(papers)
        day = date(2026, 11, 1) + timedelta(days=e)
        edition = Edition(f"daily-{day}", Frequency.DAILY, day, (Theme("Robotics", tuple(papers)),))
        editions.append(store.save_edition(edition))
    for e, edition in enumerate(editions[:EARLIER]):
        when = now - timedelta(days=EARLIER - e)
        store.snapshot_edition(edition.id, edition.papers, when)
        held = [p.arxiv_id for p in edition.papers]
        store.record_emails(edition.id, {sid: (held, []) for sid in ids}, when)
    news = [paper(i * 7, github_url=f"https://github.com/x/{i}") for i in range(20)]
    news += [paper(i * 7 + 3, upvotes=200) for i in range(20)]
    store.upsert_papers(news)
    return store, editions, ids


def raw_insert(store: Store, edition_id: int, batch: list[int], papers: list[Paper]) -> float:
    """The floor: one DBAPI executemany of the same rows, no conflict handling, no prune."""
    now = datetime.now(UTC)
    held = json.dumps([p.arxiv_id for p in papers])
    rows = [(sid, edition_id, now, held, "[]") for sid in batch]
    mark = "?" if store.dialect == "sqlite" else "%s"
    if store.dialect == "sqlite":
        rows = [(r[0], r[1], r[2].isoformat(sep=" "), r[3], r[4]) for r in rows]
    sql = (
        "INSERT INTO shown_emails (subscriber_id, edition_id, shown_at, papers, told) "
        f"VALUES ({', '.join([mark] * 5)})"
    )
    raw = store.engine.raw_connection()
    try:
        start = time.perf_counter()
        raw.cursor().executemany(sql, rows)
        raw.commit()
        return time.perf_counter() - start
    finally:
        raw.close()


def forget(store: Store, batch: list, edition_id: int) -> None:
    """Delete the batch's emails of this edition again."""
    t = schema.shown_emails
    with store.transaction() as conn:
        conn.execute(
            sa.delete(t).where(
                t.c.subscriber_id.in_([s.id for s in batch]), t.c.edition_id == edition_id
            )
        )


def measure(kind: str, folder: Path, subscribers: int) -> None:
    """Set up one database and print its figures."""
    with database(kind, folder, "followups") as url:
        store, editions, ids = setup(url, subscribers)
        settings = load_settings(
            database_url=url,
            secret_key="bench-secret-key-0123456789-abcdefghijklmnop",
            base_url="https://digest.example.org",
            sender="digest <digest@example.org>",
        )
        edition = store.get_edition(editions[-1].id)
        subs = list(store.iter_active_subscribers(Frequency.DAILY))
        ours = floor = prepare = render = 0.0
        told = 0
        papers = list(edition.papers)
        held = [p.arxiv_id for p in papers]
        contents = Contents(edition, settings)
        shown = ShownBatches(store, contents)
        t0 = time.perf_counter()
        news = shown.news()
        once = time.perf_counter() - t0
        for start in range(0, len(subs), BATCH):
            batch = subs[start : start + BATCH]
            # recording alone, ours and the floor, each into a table without these rows
            floor += raw_insert(store, edition.id, [s.id for s in batch], papers)
            forget(store, batch, edition.id)
            t0 = time.perf_counter()
            store.record_emails(edition.id, {s.id: (held, []) for s in batch},
                                forget_before=datetime.now(UTC) - timedelta(days=30))  # fmt: skip
            ours += time.perf_counter() - t0
            forget(store, batch, edition.id)
            # the whole step against rendering the batch's emails
            t0 = time.perf_counter()
            chosen = shown.prepare(batch)
            prepare += time.perf_counter() - t0
            told += sum(len(f) for f in chosen.values())
            t0 = time.perf_counter()
            for sub in batch:
                contents.message(sub)
            render += time.perf_counter() - t0
        store.close()
    print(f"\n== {kind}: {len(subs):,} subscribers, {EARLIER} earlier editions of {PAPERS} papers"
          f" ({len(subs) * EARLIER:,} emails recorded before); {told:,} follow-ups told")  # fmt: skip
    print(f"once per run: snapshot and {len(news)} papers with news  {once:6.3f} s")
    print(f"record {len(subs):,} emails   digest {ours:6.3f} s   raw executemany {floor:6.3f} s"
          f"   ratio {floor / ours:.2f}")  # fmt: skip
    print(f"per-batch step {prepare:6.3f} s   rendering the same emails {render:6.3f} s"
          f"   step / render {prepare / render:.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for kind in databases(args.database):
            measure(kind, Path(tmp), args.subscribers)


if __name__ == "__main__":
    main()
