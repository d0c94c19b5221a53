"""Storing a batch of papers on real SQLite and PostgreSQL: the batched write path keeps the
merge rules of storing papers one at a time, touches only changed rows, and is all or nothing.
"""

from __future__ import annotations

import random
from dataclasses import fields
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from digest.models import Paper
from digest.store import Store, StoreError
from digest.store.base import IN_CHUNK
from digest.store.schema import papers as papers_table
from digest.store.search import paper_search_text

DAY = datetime(2026, 1, 20, tzinfo=UTC)
KNOWN = IN_CHUNK + 200  # more stored papers than one chunked read holds


@pytest.fixture(params=["sqlite", "postgresql"])
def batch_store(request: pytest.FixtureRequest, tmp_path) -> Store:
    """A migrated store on a real SQLite file or a throw-away PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'batched.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    store = Store(url)
    store.migrate()
    yield store
    store.close()


def arxiv_record(i: int) -> Paper:
    return Paper(
        arxiv_id=f"2601.{i:05d}",
        title=f"Paper {i}",
        abstract=f"Abstract of paper {i}.",
        authors=(f"Author {i}",),
        listed_at=DAY,
        categories=("cs.CL", "cs.LG"),
        sources=("arxiv",),
    )


def later_record(i: int, rng: random.Random) -> Paper:
    """A second sighting of paper ``i``: identical, or with what another source adds."""
    base = arxiv_record(i)
    kind = rng.randrange(5)
    if kind == 0:  # the same record again: unchanged
        return base
    if kind == 1:  # Hugging Face adds votes and a summary: merged
        return Paper(base.arxiv_id, base.title, upvotes=rng.randrange(1, 90),
                     ai_summary="Short.", sources=("hf",), listed_at=DAY + timedelta(days=1))  # fmt: skip
    if kind == 2:  # empty fields never erase stored ones; a later listing is not earlier: unchanged
        return Paper(base.arxiv_id, "", listed_at=DAY + timedelta(days=2), sources=("arxiv",))
    if kind == 3:  # an earlier listing and a new title: merged
        return Paper(base.arxiv_id, f"Paper {i}, revised", listed_at=DAY - timedelta(days=1),
                     sources=("arxiv",))  # fmt: skip
    return Paper(base.arxiv_id, base.title, github_stars=rng.randrange(100), sources=("hf",))


def mixed_batch(seed: int) -> list[Paper]:
    """Known papers seen again, new papers, and new papers seen twice in the same batch."""
    rng = random.Random(seed)
    batch = [later_record(i, rng) for i in range(KNOWN)]
    batch += [arxiv_record(i) for i in range(KNOWN, KNOWN + 600)]
    batch += [later_record(i, rng) for i in range(KNOWN, KNOWN + 600, 3)]
    rng.shuffle(batch)
    return batch


def stored_rows(store: Store) -> dict[str, dict]:
    """Every row by arXiv id, without the columns the store sets from the clock."""
    t = papers_table
    with store.transaction() as conn:
        rows = conn.execute(sa.select(t).order_by(t.c.arxiv_id)).mappings().all()
    return {r["arxiv_id"]: dict(r) for r in rows}


def content(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in ("id", "first_seen_at", "updated_at")}


def test_a_batch_stores_what_storing_its_papers_one_by_one_stores(
    batch_store: Store, store: Store
) -> None:
    known = [arxiv_record(i) for i in range(KNOWN)]
    batch = mixed_batch(seed=7)
    batch_store.upsert_papers(known)
    result = batch_store.upsert_papers(batch)
    # The reference: one paper per call on SQLite, the rules the batch must keep.
    expected: dict[str, list[str]] = {"new": [], "merged": [], "unchanged": []}
    for paper in known:
        store.upsert_papers([paper])
    for paper in batch:
        step = store.upsert_papers([paper])
        for name, ids in expected.items():
            ids.extend(getattr(step, name))
    assert (result.new, result.merged, result.unchanged) == (
        expected["new"], expected["merged"], expected["unchanged"],
    )  # fmt: skip
    assert len(result.new) == 600 and len(result.merged) > 300 and len(result.unchanged) > 100
    got, want = stored_rows(batch_store), stored_rows(store)
    assert {k: content(v) for k, v in got.items()} == {k: content(v) for k, v in want.items()}


def test_only_changed_rows_are_written_back(batch_store: Store) -> None:
    batch_store.upsert_papers([arxiv_record(i) for i in range(KNOWN)])
    before = stored_rows(batch_store)
    result = batch_store.upsert_papers(mixed_batch(seed=11))
    after = stored_rows(batch_store)
    known_unchanged = [a for a in result.unchanged if a in before]
    known_merged = [a for a in result.merged if a in before]
    assert len(known_unchanged) > 100 and len(known_merged) > 300
    for arxiv_id in known_unchanged:
        assert after[arxiv_id] == before[arxiv_id]
    for arxiv_id in known_merged:
        assert after[arxiv_id]["updated_at"] > before[arxiv_id]["updated_at"]
        assert after[arxiv_id]["first_seen_at"] == before[arxiv_id]["first_seen_at"]


def test_a_paper_twice_in_one_batch_is_one_row_with_both_merged(batch_store: Store) -> None:
    arxiv = arxiv_record(1)
    hf = Paper(arxiv.arxiv_id, arxiv.title, upvotes=64, ai_summary="Short.", sources=("hf",))
    result = batch_store.upsert_papers([arxiv, hf, hf])
    assert (result.new, result.merged, result.unchanged) == (
        [arxiv.arxiv_id], [arxiv.arxiv_id], [arxiv.arxiv_id],
    )  # fmt: skip
    stored = batch_store.get_paper(arxiv.arxiv_id)
    assert stored.sources == ("arxiv", "hf") and stored.upvotes == 64
    assert stored.categories == ("cs.CL", "cs.LG") and batch_store.count_papers() == 1


def test_a_failing_batch_leaves_the_database_as_it_was(batch_store: Store) -> None:
    batch_store.upsert_papers([arxiv_record(i) for i in range(KNOWN)])
    before = stored_rows(batch_store)
    changed = [Paper(f"2601.{i:05d}", f"Retitled {i}") for i in range(KNOWN)]
    new = [arxiv_record(i) for i in range(KNOWN, KNOWN + 50)]
    # This changed row cannot be stored, so the failure comes after the new rows went in.
    broken = Paper(f"2601.{KNOWN - 1:05d}", "Retitled", github_stars=object())  # type: ignore[arg-type]
    with pytest.raises(StoreError):
        batch_store.upsert_papers([*new, *changed, broken])
    assert stored_rows(batch_store) == before


def test_every_paper_of_a_big_batch_is_found_by_the_archive_search(batch_store: Store) -> None:
    # More papers than one multi-row INSERT holds (1,000): the search index has every one, once.
    batch_store.upsert_papers([arxiv_record(i) for i in range(2_500)])
    assert batch_store.search_papers("abstract paper", limit=10).total == 2_500
    for i in (0, 999, 1_000, 2_001, 2_499):
        found = batch_store.search_papers(str(i), limit=10)
        assert [h.paper.arxiv_id for h in found.hits] == [f"2601.{i:05d}"]


def test_new_rows_hold_the_very_text_sqlalchemys_column_types_store(batch_store: Store) -> None:
    # New rows go in through the driver: every column must read back as the same text a
    # typed sa.insert() of the same paper stores (JSON lists, UTC times, NULLs, numbers).
    berlin = timezone(timedelta(hours=1))
    full = Paper(
        arxiv_id="2601.90001",
        title="Élan: a “typed” title",
        # What COPY's text format escapes: a tab, a backslash, a literal \N (NULL) and \. (end).
        abstract="Line one.\n\nParagraph\ttwo ✓ C:\\N\n\\.\n",
        authors=("Zoë Müller", 'Bo "B" Li'),
        published_at=datetime(2026, 1, 19, 23, 30, 0, 123456, tzinfo=berlin),
        listed_at=DAY,
        upvotes=2_147_483_647,
        comments=3,
        ai_summary="Short.",
        keywords=("diffusion", "模型"),
        categories=("cs.CV",),
        github_url="https://github.com/a/b",
        github_stars=0,
        project_url="https://example.org/p",
        organization="Org",
        thumbnail_url="https://example.org/t.png",
        sources=("hf", "arxiv"),
        version=2,
    )
    bare = Paper(arxiv_id="2601.90002", title="Bare")
    batch_store.upsert_papers([full, bare])
    t = papers_table
    now = datetime(2026, 1, 21, 8, 0, tzinfo=UTC)
    with batch_store.transaction() as conn:
        for paper in (full, bare):
            values = {f.name: getattr(paper, f.name) for f in fields(Paper)}
            values.update(
                {k: list(values[k]) for k in ("authors", "keywords", "categories", "sources")},
                arxiv_id="ref-" + paper.arxiv_id,
                first_seen_at=now,
                updated_at=now,
                search_text=paper_search_text(paper),
            )
            conn.execute(sa.insert(t).values(values))
        compared = [
            c for c in t.c if c.name not in ("id", "arxiv_id", "first_seen_at", "updated_at")
        ]
        query = sa.select(t.c.arxiv_id, *(sa.cast(c, sa.Text).label(c.name) for c in compared))
        rows = {r.arxiv_id: r._asdict() for r in conn.execute(query)}
        clock = conn.execute(
            sa.select(sa.cast(t.c.first_seen_at, sa.Text), sa.cast(t.c.updated_at, sa.Text)).where(
                t.c.arxiv_id.in_(["ref-2601.90001", "2601.90001"])
            )
        ).all()
    for paper in (full, bare):
        ours, ref = rows[paper.arxiv_id], rows["ref-" + paper.arxiv_id]
        assert {**ours, "arxiv_id": None} == {**ref, "arxiv_id": None}
    assert rows["2601.90001"]["authors"] == '["Zo\\u00eb M\\u00fcller", "Bo \\"B\\" Li"]'
    # SQLite keeps times as text: the clock columns are written in the same form as well.
    if batch_store.dialect == "sqlite":
        assert len({len(text) for row in clock for text in row}) == 1
