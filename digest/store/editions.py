"""Editions: the papers of one day or week in their themes, and their status."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import date

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digest.models import Edition, EditionStatus, Frequency, Paper, Theme
from digest.store import schema
from digest.store.base import StoreBase, in_chunks, utcnow
from digest.store.papers import row_to_paper

__all__ = ["EditionStore", "edition_from_row"]


class EditionStore(StoreBase):
    """Editions, their themes and papers."""

    def save_edition(self, edition: Edition) -> Edition:
        """Store a new edition with its themes; returns it with its id.

        Raises ``AlreadyExists`` if an edition with this key exists.
        """
        now = utcnow()
        with self.transaction() as conn:
            edition_id = conn.execute(
                sa.insert(schema.editions).values(
                    key=edition.key,
                    frequency=str(edition.frequency),
                    date=edition.date,
                    status=str(edition.status),
                    created_at=now,
                )
            ).inserted_primary_key[0]
            ids = _paper_ids(conn, [p.arxiv_id for p in edition.papers])
            rows = [
                {
                    "edition_id": edition_id,
                    "paper_id": ids[paper.arxiv_id],
                    "theme": theme.label,
                    "theme_position": t_pos,
                    "position": p_pos,
                }
                for t_pos, theme in enumerate(edition.themes)
                for p_pos, paper in enumerate(theme.papers)
            ]
            if rows:
                conn.execute(sa.insert(schema.edition_papers), rows)
        return dataclasses.replace(edition, id=edition_id, created_at=now)

    def get_edition(self, key_or_id: str | int) -> Edition | None:
        """The edition by key (``daily-2026-11-26``) or numeric id, with its themes."""
        e = schema.editions
        cond = e.c.id == key_or_id if isinstance(key_or_id, int) else e.c.key == key_or_id
        with self.transaction() as conn:
            row = conn.execute(sa.select(e).where(cond)).mappings().first()
            return _load_edition(conn, row) if row else None

    def latest_edition(self, frequency: Frequency | None = None) -> Edition | None:
        """The newest edition (of ``frequency`` when given), or None."""
        e = schema.editions
        query = sa.select(e).order_by(e.c.created_at.desc(), e.c.id.desc()).limit(1)
        if frequency is not None:
            query = query.where(e.c.frequency == str(frequency))
        with self.transaction() as conn:
            row = conn.execute(query).mappings().first()
            return _load_edition(conn, row) if row else None

    def list_editions(self, limit: int = 50) -> list[Edition]:
        """Editions newest first, without their papers (themes left empty)."""
        e = schema.editions
        query = sa.select(e).order_by(e.c.created_at.desc(), e.c.id.desc()).limit(limit)
        with self.transaction() as conn:
            return [edition_from_row(r, ()) for r in conn.execute(query).mappings()]

    def editions_in(self, status: EditionStatus, limit: int = 50) -> list[Edition]:
        """Editions in ``status`` (e.g. drafts waiting for approval), oldest first, no papers."""
        e = schema.editions
        query = (
            sa.select(e)
            .where(e.c.status == str(status))
            .order_by(e.c.created_at, e.c.id)
            .limit(limit)
        )
        with self.transaction() as conn:
            return [edition_from_row(r, ()) for r in conn.execute(query).mappings()]

    def approve_edition(self, edition_id: int) -> bool:
        """Move a draft to ``approved``; False when it was not a draft (approved or sent already)."""
        e = schema.editions
        query = (
            sa.update(e)
            .where(e.c.id == edition_id, e.c.status == str(EditionStatus.DRAFT))
            .values(status=str(EditionStatus.APPROVED), approved_at=utcnow())
        )
        with self.transaction() as conn:
            return conn.execute(query).rowcount == 1

    def set_edition_status(self, edition_id: int, status: EditionStatus) -> None:
        """Mark an edition draft, sending or sent."""
        values: dict = {"status": str(status)}
        if status is EditionStatus.SENT:
            values["sent_at"] = utcnow()
        with self.transaction() as conn:
            conn.execute(
                sa.update(schema.editions)
                .where(schema.editions.c.id == edition_id)
                .values(**values)
            )


def _paper_ids(conn: Connection, arxiv_ids: Sequence[str]) -> dict[str, int]:
    p = schema.papers
    found: dict[str, int] = {}
    for chunk in in_chunks(arxiv_ids):
        for arxiv_id, pid in conn.execute(
            sa.select(p.c.arxiv_id, p.c.id).where(p.c.arxiv_id.in_(chunk))
        ):
            found[arxiv_id] = pid
    missing = set(arxiv_ids) - found.keys()
    if missing:
        raise ValueError(f"edition refers to papers not in the store: {sorted(missing)[:5]}")
    return found


def edition_from_row(row: sa.RowMapping, themes: tuple[Theme, ...]) -> Edition:
    """The Edition of an ``editions`` row, holding ``themes``."""
    return Edition(
        key=row["key"],
        frequency=Frequency(row["frequency"]),
        date=row["date"] if isinstance(row["date"], date) else date.fromisoformat(row["date"]),
        themes=themes,
        id=row["id"],
        status=EditionStatus(row["status"]),
        created_at=row["created_at"],
        approved_at=row["approved_at"],
    )


def _load_edition(conn: Connection, row: sa.RowMapping) -> Edition:
    p, ep = schema.papers, schema.edition_papers
    query = (
        sa.select(p, ep.c.theme, ep.c.theme_position)
        .join(ep, ep.c.paper_id == p.c.id)
        .where(ep.c.edition_id == row["id"])
        .order_by(ep.c.theme_position, ep.c.position)
    )
    themes: dict[int, tuple[str, list[Paper]]] = {}
    for r in conn.execute(query).mappings():
        themes.setdefault(r["theme_position"], (r["theme"], []))[1].append(row_to_paper(r))
    built = tuple(Theme(label, tuple(ps)) for _, (label, ps) in sorted(themes.items()))
    return edition_from_row(row, built)
