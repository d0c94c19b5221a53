"""The store against a real SQLite file: migrations, merging, editions, ledger, leases."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from digest.models import Edition, Frequency, Paper, Subscriber, Theme
from digest.store import AlreadyExists, Store
from digest.store.schema import declared, metadata


def test_migrations_build_exactly_the_declared_schema(store: Store) -> None:
    with store.engine.connect() as conn:
        # The search index's FTS5 tables are per database and left out, as migrations/env.py does.
        opts = {"compare_type": True, "include_name": declared}
        ctx = MigrationContext.configure(conn, opts=opts)
        assert compare_metadata(ctx, metadata) == []
        tables = {r[0] for r in conn.exec_driver_sql("SELECT name FROM sqlite_master")}
        assert "papers_search" in tables  # ... but they are there


def test_migrate_is_idempotent_and_uses_wal(store: Store) -> None:
    store.migrate()
    state = store.schema_state()
    assert state.current and store.revision() == state.head and not state.strangers
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


def test_a_database_holding_other_tables_is_read_not_changed_and_never_migrated(
    tmp_path,
) -> None:
    import hashlib

    import sqlalchemy as sa

    from digest.store import StoreError

    theirs = tmp_path / "theirs.db"
    engine = sa.create_engine(f"sqlite:///{theirs}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE papers (doi TEXT PRIMARY KEY)")  # a name we use too
    engine.dispose()
    before = hashlib.sha256(theirs.read_bytes()).hexdigest()
    store = Store(f"sqlite:///{theirs}")
    state = store.schema_state()
    assert state.strangers and state.revision is None and state.tables == ("papers",)
    with pytest.raises(StoreError, match="is not a digest database"):
        store.migrate()
    store.close()
    assert hashlib.sha256(theirs.read_bytes()).hexdigest() == before
    missing = Store(f"sqlite:///{tmp_path / 'missing.db'}")
    assert missing.schema_state().missing and not (tmp_path / "missing.db").exists()


def test_a_fact_set_by_two_workers_at_once_is_stored_once_without_an_error(
    any_store: Store,
) -> None:
    """Two `digest send` workers starting together both record the link key's fingerprint.

    Worker A has written the row but not committed; worker B's write must wait and then win,
    not fail on the unique key (as it did on PostgreSQL in a three-worker run).
    """
    import threading

    import sqlalchemy as sa

    from digest.store import schema

    other = Store(any_store.url)
    errors: list[BaseException] = []

    def worker_b() -> None:
        try:
            any_store.set_meta("link_key_fingerprint", "b")
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    with other.engine.connect() as conn:
        conn.execute(sa.delete(schema.meta).where(schema.meta.c.key == "link_key_fingerprint"))
        conn.execute(sa.insert(schema.meta).values(key="link_key_fingerprint", value="a"))
        b = threading.Thread(target=worker_b)
        b.start()
        b.join(0.5)  # B now waits on A's uncommitted row
        conn.commit()
    b.join(10)
    other.close()
    assert not b.is_alive() and errors == []
    assert any_store.get_meta("link_key_fingerprint") == "b"
