"""The store against a real SQLite file: migrations, merging, editions, ledger, leases."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from digest.models import Edition, Frequency, Paper, Subscriber, Theme
from digest.store import AlreadyExists, Store
from digest.store.schema import metadata


def test_migrations_build_exactly_the_declared_schema(store: Store) -> None:
    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(ctx, metadata) == []


def test_migrate_is_idempotent_and_uses_wal(store: Store) -> None:
    store.migrate()
    assert store.revision() == "0002"
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_same_paper_from_two_sources_is_one_row_and_merges(store: Store) -> None:
    arxiv = Paper(
        arxiv_id="2410.17243",
        title="Breaking the Memory Barrier",
        categories=("cs.CV",),
        sources=("arxiv",),
    )
    hf = Paper(
        arxiv_id="2410.17243",
        title="Breaking the Memory Barrier",
        upvotes=64,
        ai_summary="Short.",
        sources=("hf",),
    )
    first = store.upsert_papers([arxiv])
    second = store.upsert_papers([hf])
    again = store.upsert_papers([hf])
    assert (first.new, second.merged, again.unchanged) == (
        ["2410.17243"],
        ["2410.17243"],
        ["2410.17243"],
    )
    stored = store.get_paper("2410.17243")
    assert (
        stored.upvotes == 64 and stored.categories == ("cs.CV",) and stored.ai_summary == "Short."
    )
    assert stored.sources == ("arxiv", "hf")
    assert store.count_papers() == 1


def test_edition_round_trips_with_themes_in_order(store: Store) -> None:
    papers = [Paper(arxiv_id=f"2401.0000{i}", title=f"Paper {i}") for i in range(3)]
    store.upsert_papers(papers)
    edition = Edition(
        key="daily-2026-11-26",
        frequency=Frequency.DAILY,
        date=date(2026, 11, 26),
        themes=(Theme("B first", (papers[2],)), Theme("A second", (papers[0], papers[1]))),
    )
    saved = store.save_edition(edition)
    loaded = store.get_edition("daily-2026-11-26")
    assert [t.label for t in loaded.themes] == ["B first", "A second"]
    assert [p.arxiv_id for p in loaded.papers] == ["2401.00002", "2401.00000", "2401.00001"]
    assert store.unpublished_papers(Frequency.DAILY) == []
    assert len(store.unpublished_papers(Frequency.WEEKLY)) == 3
    with pytest.raises(AlreadyExists):
        store.save_edition(edition)
    assert store.get_edition(saved.id).key == edition.key


def test_ledger_has_one_row_per_edition_and_subscriber(store: Store) -> None:
    store.upsert_papers([Paper(arxiv_id="2401.00001", title="P")])
    edition = store.save_edition(Edition("daily-x", Frequency.DAILY, date(2026, 1, 1), ()))
    sub = store.add_subscriber(Subscriber(email="a@example.org"))
    assert store.queue_deliveries(edition.id, [sub.id]) == 1
    assert store.queue_deliveries(edition.id, [sub.id]) == 0
    assert len(store.deliveries(edition.id)) == 1


def test_lease_excludes_a_second_holder_until_it_expires(store: Store) -> None:
    assert store.acquire_lease("run", "a", timedelta(minutes=5))
    assert not store.acquire_lease("run", "b", timedelta(minutes=5))
    assert store.acquire_lease("run", "a", timedelta(minutes=5))
    store.release_lease("run", "a")
    assert store.acquire_lease("run", "b", timedelta(seconds=-1))  # already expired
    assert store.acquire_lease("run", "a", timedelta(minutes=5))


def test_iter_active_subscribers_pages_through_all(store: Store) -> None:
    for i in range(25):
        store.add_subscriber(Subscriber(email=f"s{i}@example.org"))
    emails = [s.email for s in store.iter_active_subscribers(batch_size=7)]
    assert len(emails) == 25 and len(set(emails)) == 25
