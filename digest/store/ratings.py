"""A subscriber's likes and dislikes: one row per (subscriber, arXiv id), never shared."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from digest.models import Paper
from digest.store import schema
from digest.store.base import StoreBase, utcnow

__all__ = ["RatingStore"]


class RatingStore(StoreBase):
    """Record and read "more like this" (+1) and "less like this" (-1)."""

    def set_rating(self, subscriber_id: int, arxiv_id: str, value: int | None) -> None:
        """Like (+1), dislike (-1) or forget (None) a paper for one subscriber.

        Idempotent: repeating a choice changes nothing, a new choice replaces the old one.
        """
        if value not in (1, -1, None):
            raise ValueError("a rating is +1, -1 or None")
        t = schema.ratings
        mine = (t.c.subscriber_id == subscriber_id) & (t.c.arxiv_id == arxiv_id)
        with self.transaction() as conn:
            if value is None:
                conn.execute(sa.delete(t).where(mine))
                return
            changed = conn.execute(sa.update(t).where(mine).values(value=value)).rowcount
            if not changed:
                conn.execute(
                    sa.insert(t).values(
                        subscriber_id=subscriber_id,
                        arxiv_id=arxiv_id,
                        value=value,
                        created_at=utcnow(),
                    )
                )

    def save_reference_papers(self, papers: Iterable[Paper]) -> int:
        """Keep the text of papers readers liked that no listing brought; returns how many new.

        They live beside ``papers``, not in it, so no edition lists them as new; a paper
        already stored or kept is left as it is.
        """
        r = schema.reference_papers
        batch = {p.arxiv_id: p for p in papers}
        with self.transaction() as conn:
            known = set(conn.scalars(sa.select(schema.papers.c.arxiv_id).where(
                schema.papers.c.arxiv_id.in_(list(batch)))))  # fmt: skip
            known |= set(conn.scalars(sa.select(r.c.arxiv_id).where(r.c.arxiv_id.in_(list(batch)))))
            rows = [
                {
                    "arxiv_id": p.arxiv_id,
                    "title": p.title,
                    "abstract": p.abstract,
                    "authors": list(p.authors),
                    "categories": list(p.categories),
                    "fetched_at": utcnow(),
                }
                for a, p in batch.items()
                if a not in known
            ]
            if rows:
                conn.execute(sa.insert(r), rows)
        return len(rows)

    def rating(self, subscriber_id: int, arxiv_id: str) -> int | None:
        """This subscriber's rating of this paper: +1, -1, or None."""
        t = schema.ratings
        with self.transaction() as conn:
            return conn.scalar(
                sa.select(t.c.value).where(
                    t.c.subscriber_id == subscriber_id, t.c.arxiv_id == arxiv_id
                )
            )
