"""Benchmark: finding who is due at their own hour among 100,000 subscribers.

    python bench/hours.py                          # 100,000 subscribers, SQLite file
    python bench/hours.py --subscribers 20000 --database postgresql

The subscribers are spread over 60 real time zones and all 24 hours (10% chose nothing), and
an edition was released two days ago, so every one of them is due. Measured: what one
quarter-hour step of the daemon (or `digest run`) does before sending -- the due groups
(`editions.due_editions`, one GROUP BY), how many are due (`Store.count_lacking`) and queueing
their ledger rows (`Store.queue_groups`, one INSERT ... SELECT) -- then the same step again,
when nobody is due any more (what 95 of the day's 96 steps find). Time is wall-clock; memory
is the Python heap's peak during the step (tracemalloc, in a second run on a fresh copy, as it
slows what it watches). On PostgreSQL the tables are ANALYZEd after filling them and after
the first step, as autovacuum would have done by the next quarter hour.
Baseline, measured in the same run: the straightforward per-subscriber loop, written well --
one SELECT of (id, time zone, hour) of every active subscriber, each one's latest sending time
computed in Python (cached per time zone and hour), the set of subscribers the ledger already
has for the edition, and queue_deliveries of the due ids. Run by hand, never from tests.
"""

from __future__ import annotations

import argparse
import functools
import random
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digest.config import load_settings  # noqa: E402
from digest.editions import due_editions, group_slot  # noqa: E402
from digest.models import Edition, Frequency  # noqa: E402
from digest.periods import release_time  # noqa: E402
from digest.store import HourGroup, Store, schema  # noqa: E402

ZONES = [
    "America/Los_Angeles", "America/Denver", "America/Chicago", "America/New_York",
    "America/Sao_Paulo", "America/Mexico_City", "America/Toronto", "America/Bogota",
    "America/Lima", "America/Santiago", "America/Halifax", "America/Anchorage",
    "Pacific/Honolulu", "Atlantic/Reykjavik", "Europe/London", "Europe/Lisbon",
    "Europe/Dublin", "Europe/Paris", "Europe/Berlin", "Europe/Madrid", "Europe/Rome",
    "Europe/Amsterdam", "Europe/Zurich", "Europe/Stockholm", "Europe/Warsaw", "Europe/Prague",
    "Europe/Vienna", "Europe/Athens", "Europe/Helsinki", "Europe/Kyiv", "Europe/Istanbul",
    "Europe/Moscow", "Africa/Cairo", "Africa/Lagos", "Africa/Nairobi",
    "Africa/Johannesburg", "Asia/Dubai", "Asia/Tehran", "Asia/Karachi", "Asia/Kolkata",
    "Asia/Kathmandu", "Asia/Dhaka", "Asia/Bangkok", "Asia/Jakarta", "Asia/Singapore",
    "Asia/Shanghai", "Asia/Hong_Kong", "Asia/Taipei", "Asia/Seoul", "Asia/Tokyo",
    "Australia/Perth", "Australia/Darwin", "Australia/Adelaide", "Australia/Brisbane",
    "Australia/Sydney", "Australia/Melbourne", "Pacific/Auckland", "Pacific/Fiji",
    "Asia/Manila", "Asia/Ho_Chi_Minh",
]  # fmt: skip


def populate(store: Store, n: int, rng: random.Random) -> None:
    """``n`` active daily subscribers: 10% with no own hour, the rest over ZONES x 24 hours."""
    now = datetime.now(UTC)
    rows = []
    for i in range(n):
        own = rng.random() >= 0.1
        rows.append({
            "email": f"reader{i:06d}@example.org", "status": "active", "topics": [],
            "keywords": [], "frequency": "daily", "created_at": now, "confirm_nonce": 0,
            "follow_authors": [], "follow_orgs": [], "empty_days": "skip", "followups": True,
            "timezone": rng.choice(ZONES) if own else None,
            "send_hour": rng.randrange(24) if own else None,
        })  # fmt: skip
    with store.transaction() as conn:
        for start in range(0, n, 5000):
            conn.execute(sa.insert(schema.subscribers), rows[start : start + 5000])


def timed(fn):
    """(result, seconds) of ``fn()``."""
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def heap(fn) -> float:
    """Peak Python heap in MB while ``fn()`` runs (tracemalloc slows it: timed apart)."""
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return peak


def grouped_step(store: Store, settings, now: datetime) -> int:
    """digest's way: due groups, how many are due, queue them (per edition)."""
    due_total = 0
    for due in due_editions(store, settings, Frequency.DAILY, now):
        lacking = store.count_lacking(due.edition.id, Frequency.DAILY, due.groups)
        if lacking:
            store.queue_groups(due.edition.id, Frequency.DAILY, due.groups)
        due_total += lacking
    return due_total


def loop_step(store: Store, settings, now: datetime, edition: Edition) -> int:
    """The baseline: every subscriber through Python, their slot cached per (zone, hour)."""
    s, d = schema.subscribers, schema.deliveries
    released = release_time(settings, edition.date, edition.created_at)
    with store.transaction() as conn:
        people = conn.execute(
            sa.select(s.c.id, s.c.timezone, s.c.send_hour).where(
                s.c.status == "active", s.c.frequency == "daily"
            )
        ).all()
        had = set(conn.scalars(sa.select(d.c.subscriber_id).where(d.c.edition_id == edition.id)))
    slots: dict[tuple, datetime] = {}
    due = []
    for sid, tz, hour in people:
        key = (tz, hour)
        if key not in slots:
            slots[key] = group_slot(settings, HourGroup(tz, hour), now)
        if slots[key] >= released and sid not in had:
            due.append(sid)
    store.queue_deliveries(edition.id, due)
    return len(due)


def _analyze(store: Store) -> None:
    """Fresh planner statistics on PostgreSQL (a live database has them from autovacuum)."""
    if store.dialect == "postgresql":
        with store.transaction() as conn:
            conn.exec_driver_sql("ANALYZE")


def fresh(url: str, n: int, seed: int):
    store = Store(url)
    store.migrate()
    populate(store, n, random.Random(seed))
    _analyze(store)
    day = (datetime.now(UTC) - timedelta(days=2)).date()
    edition = store.save_edition(Edition(f"daily-{day}", Frequency.DAILY, day, ()))
    return store, edition


_PG = "postgresql+psycopg://postgres@127.0.0.1:5432"


def _throwaway_postgres(name: str) -> str:
    """A new database of our own on the local server (never the shared `test` one)."""
    admin = sa.create_engine(f"{_PG}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return f"{_PG}/{name}"


def _drop_postgres(url: str) -> None:
    admin = sa.create_engine(f"{_PG}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-hours-"))
    settings = load_settings(schedule="0 7 * * mon-fri", timezone="Europe/Berlin")
    now = datetime.now(UTC)
    results = {}
    for name in ("digest", "baseline"):
        measures = []
        for purpose in ("time", "heap"):  # each on a database of its own, as fresh
            if args.database == "sqlite":
                url = f"sqlite:///{folder / (name + purpose + '.db')}"
            else:
                url = _throwaway_postgres(f"bench_hours_{name}")
            store, edition = fresh(url, args.subscribers, args.seed)
            if name == "digest":
                step = functools.partial(grouped_step, store, settings, now)
            else:
                step = functools.partial(loop_step, store, settings, now, edition)
            measures.append(
                [timed(step), timed(step)] if purpose == "time" else [heap(step), heap(step)]
            )
            store.close()
            if args.database == "postgresql":
                _drop_postgres(url)
        ((due, secs), (due2, secs2)), (peak, peak2) = measures
        results[name] = ((due, secs, peak), (due2, secs2, peak2))
    print(f"{args.subscribers:,} subscribers on {args.database}, every one due:")
    for name, ((due, secs, peak), (due2, secs2, peak2)) in results.items():
        print(
            f"  {name:<9} first step: {due:>7,} due, queued in {secs * 1000:8.1f} ms, "
            f"peak heap {peak:6.1f} MB;  next step: {due2} due, {secs2 * 1000:7.1f} ms, "
            f"{peak2:5.1f} MB"
        )
    (_, a1, m1), (_, a2, m2) = results["digest"]
    (_, b1, n1), (_, b2, n2) = results["baseline"]
    print(f"ratio baseline/digest, first step: time {b1 / a1:.1f}x, heap {n1 / max(m1, 1e-6):.0f}x")
    print(f"ratio baseline/digest, next step:  time {b2 / a2:.1f}x, heap {n2 / max(m2, 1e-6):.0f}x")


if __name__ == "__main__":
    main()
