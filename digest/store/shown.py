"""What each subscriber's emails showed, and which of those papers they heard about again.

One row per (subscriber, paper), written as their email is made for sending, holding the paper's
signals as the email showed them: "since you last saw it" compares against that snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from digest.models import Paper
from digest.store import schema
from digest.store.base import StoreBase, in_chunks, utcnow
from digest.store.papers import row_to_paper

__all__ = ["SURGE_MIN_GAIN", "Seen", "ShownStore"]

# A surge needs at least this many more upvotes or stars (and a doubling, checked by
# digest.themes.followups); the query uses it to leave out papers that cannot qualify.
SURGE_MIN_GAIN = 20


@dataclass(frozen=True, slots=True)
class Seen:
    """A paper as one subscriber's email showed it: where, when, and its signals then."""

    arxiv_id: str
    edition_id: int
    shown_at: datetime
    upvotes: int
    github_stars: int | None
    github_url: str | None
    project_url: str | None
    version: int | None


def _changed(s: sa.Table, p: sa.Table) -> sa.ColumnElement[bool]:
    """Rows whose paper may have something to tell: a coarse filter, refined in Python."""
    return sa.or_(
        sa.and_(s.c.github_url.is_(None), p.c.github_url.is_not(None)),
        sa.and_(s.c.project_url.is_(None), p.c.project_url.is_not(None)),
        sa.and_(s.c.version.is_not(None), p.c.version > s.c.version),
        p.c.upvotes >= s.c.upvotes + SURGE_MIN_GAIN,
        sa.and_(
            s.c.github_stars.is_not(None), p.c.github_stars >= s.c.github_stars + SURGE_MIN_GAIN
        ),
    )


class ShownStore(StoreBase):
    """Record the papers each email showed; find those with news since; mark them told."""

    def _insert_shown(self) -> sa.Insert:
        t = schema.shown_papers
        keys = ["subscriber_id", "arxiv_id"]
        if self.dialect == "postgresql":
            return postgresql.insert(t).on_conflict_do_nothing(index_elements=keys)
        return sqlite.insert(t).on_conflict_do_nothing(index_elements=keys)

    def record_shown(
        self, edition_id: int, shown: Mapping[int, Sequence[Paper]], now: datetime | None = None
    ) -> None:
        """Note which papers (with their signals as shown) each subscriber's email holds.

        ``shown`` maps subscriber id -> papers. One executemany for the whole batch; a paper a
        subscriber was shown before keeps its first snapshot.
        """
        now = now or utcnow()
        rows = [
            {
                "subscriber_id": sid,
                "arxiv_id": paper.arxiv_id,
                "edition_id": edition_id,
                "shown_at": now,
                "upvotes": paper.upvotes,
                "github_stars": paper.github_stars,
                "github_url": paper.github_url,
                "project_url": paper.project_url,
                "version": paper.version,
            }
            for sid, papers in shown.items()
            for paper in papers
        ]
        if rows:
            with self.transaction() as conn:
                conn.execute(self._insert_shown(), rows)

    def followup_candidates(
        self, subscriber_ids: Iterable[int], edition_id: int, since: datetime
    ) -> dict[int, list[tuple[Seen, Paper]]]:
        """Papers shown to these subscribers since ``since`` whose signals may have news.

        Leaves out papers already followed up in another edition (a follow-up is told once)
        and keeps those followed up in ``edition_id`` itself, so a resent email is the same.
        """
        s, p = schema.shown_papers, schema.papers
        seen_columns = [
            s.c.subscriber_id,
            s.c.edition_id.label("seen_edition_id"),
            s.c.shown_at.label("seen_at"),
            s.c.upvotes.label("seen_upvotes"),
            s.c.github_stars.label("seen_stars"),
            s.c.github_url.label("seen_github_url"),
            s.c.project_url.label("seen_project_url"),
            s.c.version.label("seen_version"),
        ]
        found: dict[int, list[tuple[Seen, Paper]]] = {}
        with self.transaction() as conn:
            for chunk in in_chunks(subscriber_ids):
                query = (
                    sa.select(p, *seen_columns)
                    .join(p, p.c.arxiv_id == s.c.arxiv_id)
                    .where(
                        s.c.subscriber_id.in_(chunk),
                        s.c.shown_at >= since,
                        s.c.edition_id != edition_id,
                        sa.or_(
                            s.c.followup_edition_id.is_(None),
                            s.c.followup_edition_id == edition_id,
                        ),
                        _changed(s, p),
                    )
                    .order_by(s.c.subscriber_id, s.c.shown_at, s.c.arxiv_id)
                )
                for row in conn.execute(query).mappings():
                    seen = Seen(
                        arxiv_id=row["arxiv_id"],
                        edition_id=row["seen_edition_id"],
                        shown_at=row["seen_at"],
                        upvotes=row["seen_upvotes"],
                        github_stars=row["seen_stars"],
                        github_url=row["seen_github_url"],
                        project_url=row["seen_project_url"],
                        version=row["seen_version"],
                    )
                    found.setdefault(row["subscriber_id"], []).append((seen, row_to_paper(row)))
        return found

    def mark_followed_up(self, edition_id: int, told: Iterable[tuple[int, str]]) -> None:
        """Record that ``edition_id``'s emails tell these (subscriber id, arXiv id) pairs.

        One executemany per batch; from now on no other edition tells them again.
        """
        t = schema.shown_papers
        rows = [{"sid": sid, "aid": arxiv_id, "eid": edition_id} for sid, arxiv_id in told]
        if not rows:
            return
        query = (
            sa.update(t)
            .where(
                t.c.subscriber_id == sa.bindparam("sid"),
                t.c.arxiv_id == sa.bindparam("aid"),
                t.c.followup_edition_id.is_(None),
            )
            .values(followup_edition_id=sa.bindparam("eid"))
        )
        with self.transaction() as conn:
            conn.execute(query, rows)

    def watched_papers(self, since: datetime) -> dict[str, date | None]:
        """Papers shown since ``since`` to a subscriber who wants follow-ups, not yet told.

        arXiv id -> the day (UTC) a Hugging Face list showed it, None for other sources: what
        collect refreshes, so only papers a reader may still hear about cost requests.
        """
        s, p, sub = schema.shown_papers, schema.papers, schema.subscribers
        watched = (
            sa.select(s.c.arxiv_id)
            .join(sub, sub.c.id == s.c.subscriber_id)
            .where(
                s.c.shown_at >= since,
                s.c.followup_edition_id.is_(None),
                sub.c.followups.is_(True),
                sub.c.status == "active",
            )
        )
        query = sa.select(p.c.arxiv_id, p.c.listed_at, p.c.sources).where(p.c.arxiv_id.in_(watched))
        with self.transaction() as conn:
            rows = conn.execute(query).all()
        return {
            arxiv_id: listed.date() if listed and "hf" in (sources or ()) else None
            for arxiv_id, listed, sources in rows
        }
