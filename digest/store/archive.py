"""What the web archive reads: published editions with their themes, and search over papers.

Search runs on the full-text index migration 0002_archive_search made (FTS5 on SQLite, a GIN
index on PostgreSQL) over words digest.store.search folded in Python, so both databases find
the same papers for the same query; results come most upvoted first, then newest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digest.models import Edition, EditionStatus, Paper
from digest.store import schema
from digest.store.base import StoreBase, in_chunks
from digest.store.editions import edition_from_row
from digest.store.papers import row_to_paper
from digest.store.search import fts5_query, tsquery

__all__ = ["ArchiveStore", "EditionOverview", "SearchHit", "SearchResult", "ThemeOverview"]


@dataclass(frozen=True, slots=True)
class ThemeOverview:
    """One theme of an edition as the archive index shows it: label, size, lead paper."""

    label: str
    size: int
    lead: Paper


@dataclass(frozen=True, slots=True)
class EditionOverview:
    """A published edition (its ``themes`` left empty) with an overview of each theme."""

    edition: Edition
    themes: tuple[ThemeOverview, ...]

    @property
    def size(self) -> int:
        """How many papers the edition holds."""
        return sum(t.size for t in self.themes)


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A paper that matches, and the first published edition (and theme) that held it."""

    paper: Paper
    edition_key: str | None = None
    edition_date: date | None = None
    theme: str | None = None
    theme_position: int | None = None


@dataclass(frozen=True, slots=True)
class SearchResult:
    """The first hits of a search and how many papers match in all."""

    hits: tuple[SearchHit, ...]
    total: int


# The FTS5 table is schema.SEARCH_TABLE; only the query words are a parameter.
_FTS5_MATCH = "SELECT rowid FROM papers_search WHERE papers_search MATCH :q"


def _published() -> sa.ColumnElement[bool]:
    return schema.editions.c.status != str(EditionStatus.DRAFT)


class ArchiveStore(StoreBase):
    """Queries of the web archive."""

    def published_editions(self, limit: int, offset: int = 0) -> tuple[list[EditionOverview], int]:
        """Published editions newest first (``limit`` from ``offset``), and how many there are."""
        e = schema.editions
        query = (
            sa.select(e)
            .where(_published())
            .order_by(e.c.date.desc(), e.c.created_at.desc(), e.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        with self.transaction() as conn:
            total = conn.scalar(sa.select(sa.func.count()).select_from(e).where(_published()))
            rows = conn.execute(query).mappings().all()
            themes = _theme_overviews(conn, [r["id"] for r in rows])
        editions = [
            EditionOverview(edition_from_row(r, ()), tuple(themes.get(r["id"], ()))) for r in rows
        ]
        return editions, total or 0

    def search_papers(self, query: str, limit: int = 50) -> SearchResult:
        """Stored papers matching every word of ``query`` (each as a word prefix)."""
        p = schema.papers
        if self.dialect == "sqlite":
            expression = fts5_query(query)
            matched = sa.text(_FTS5_MATCH)
            condition = p.c.id.in_(matched.bindparams(q=expression).columns(sa.column("rowid")))
        else:
            expression = tsquery(query)
            vector = sa.literal_column(schema.SEARCH_VECTOR)
            simple = sa.literal_column("'simple'")
            condition = vector.op("@@")(sa.func.to_tsquery(simple, expression))
        if expression is None:
            return SearchResult((), 0)
        order = (p.c.upvotes.desc(), p.c.first_seen_at.desc(), p.c.id.desc())
        with self.transaction() as conn:
            total = conn.scalar(sa.select(sa.func.count()).select_from(p).where(condition))
            rows = conn.execute(sa.select(p).where(condition).order_by(*order).limit(limit))
            papers = [(r["id"], row_to_paper(r)) for r in rows.mappings()]
            where = _first_editions(conn, [pid for pid, _ in papers])
        hits = tuple(SearchHit(paper, *where.get(pid, ())) for pid, paper in papers)
        return SearchResult(hits, total or 0)


def _theme_overviews(conn: Connection, edition_ids: list[int]) -> dict[int, list[ThemeOverview]]:
    """Each edition's themes in order, with their sizes and lead papers."""
    p, ep = schema.papers, schema.edition_papers
    found: dict[int, list[ThemeOverview]] = {}
    for chunk in in_chunks(edition_ids):
        sizes = dict(
            ((eid, pos), n)
            for eid, pos, n in conn.execute(
                sa.select(ep.c.edition_id, ep.c.theme_position, sa.func.count())
                .where(ep.c.edition_id.in_(chunk))
                .group_by(ep.c.edition_id, ep.c.theme_position)
            )
        )
        leads = (
            sa.select(p, ep.c.edition_id, ep.c.theme, ep.c.theme_position)
            .join(ep, ep.c.paper_id == p.c.id)
            .where(ep.c.edition_id.in_(chunk), ep.c.position == 0)
            .order_by(ep.c.edition_id, ep.c.theme_position)
        )
        for r in conn.execute(leads).mappings():
            size = sizes.get((r["edition_id"], r["theme_position"]), 1)
            overview = ThemeOverview(r["theme"], size, row_to_paper(r))
            found.setdefault(r["edition_id"], []).append(overview)
    return found


def _first_editions(conn: Connection, paper_ids: list[int]) -> dict[int, tuple]:
    """For each paper, (key, date, theme, theme position) of the first published edition."""
    e, ep = schema.editions, schema.edition_papers
    found: dict[int, tuple] = {}
    for chunk in in_chunks(paper_ids):
        query = (
            sa.select(ep.c.paper_id, e.c.key, e.c.date, ep.c.theme, ep.c.theme_position)
            .join(e, e.c.id == ep.c.edition_id)
            .where(ep.c.paper_id.in_(chunk), _published())
            .order_by(e.c.created_at, e.c.id)
        )
        for paper_id, key, day, theme, position in conn.execute(query):
            if isinstance(day, str):  # SQLite hands back text for a Date in a plain select
                day = date.fromisoformat(day)
            found.setdefault(paper_id, (key, day, theme, position))
    return found
