"""What each subscriber's emails showed, and which of those papers they were told about again.

Two compact records, written as a send run makes the emails: per edition, each paper's
signals as its emails showed them (``shown_snapshots``, one row per paper); per subscriber
and edition, the arXiv ids their email held and the follow-ups it told (``shown_emails``, one
row per email). "Since you last saw it" compares a paper now against the snapshot of the
edition that first showed it to that reader.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digest.models import Paper
from digest.store import schema
from digest.store.base import StoreBase, among, utcnow
from digest.store.papers import row_to_paper

__all__ = ["SURGE_MIN_GAIN", "Seen", "ShownEmail", "ShownStore"]

# A surge needs at least this many more upvotes or stars (and a doubling, checked by
# digest.themes.followups); the query uses it to leave out papers that cannot qualify.
SURGE_MIN_GAIN = 20


@dataclass(frozen=True, slots=True)
class Seen:
    """A paper as an edition's emails showed it: which edition, when, and its signals then."""

    arxiv_id: str
    edition_id: int
    shown_at: datetime
    upvotes: int
    github_stars: int | None
    github_url: str | None
    project_url: str | None
    version: int | None


@dataclass(frozen=True, slots=True)
class ShownEmail:
    """One email a subscriber got: its edition, when, the papers it held, what it told again."""

    edition_id: int
    shown_at: datetime
    papers: frozenset[str]
    told: frozenset[str]


def _has_news(s: sa.Table, p: sa.Table) -> sa.ColumnElement[bool]:
    """Snapshots whose paper may have news: a coarse filter, refined in Python."""
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
    """Record what emails showed; find the papers with news since; read a reader's emails."""

    def _insert_unless_there(self, table: sa.Table, keys: list[str]) -> sa.Insert:
        return self.dialect_insert(table).on_conflict_do_nothing(index_elements=keys)

    def snapshot_edition(
        self,
        edition_id: int,
        papers: Iterable[Paper],
        now: datetime | None = None,
        *,
        forget_before: datetime | None = None,
    ) -> None:
        """Keep each paper's signals as ``edition_id``'s emails show them (the first time only).

        Snapshots taken before ``forget_before`` are deleted on the way: no follow-up looks
        back that far.
        """
        now = now or utcnow()
        t = schema.shown_snapshots
        rows = [
            {"edition_id": edition_id, "arxiv_id": p.arxiv_id, "taken_at": now,
             "upvotes": p.upvotes, "github_stars": p.github_stars, "github_url": p.github_url,
             "project_url": p.project_url, "version": p.version}
            for p in papers
        ]  # fmt: skip
        with self.transaction() as conn:
            if forget_before is not None:
                conn.execute(sa.delete(t).where(t.c.taken_at < forget_before))
            if rows:
                conn.execute(self._insert_unless_there(t, ["edition_id", "arxiv_id"]), rows)

    def papers_with_news(self, since: datetime, but: int | None = None) -> list[tuple[Seen, Paper]]:
        """Papers of editions shown since ``since`` (not edition ``but``) that may have news.

        Each pair is the snapshot and the paper now; one query for every reader.
        """
        s, p = schema.shown_snapshots, schema.papers
        query = (
            sa.select(
                p,
                s.c.edition_id,
                s.c.taken_at,
                s.c.upvotes.label("seen_upvotes"),
                s.c.github_stars.label("seen_stars"),
                s.c.github_url.label("seen_github_url"),
                s.c.project_url.label("seen_project_url"),
                s.c.version.label("seen_version"),
            )
            .join(p, p.c.arxiv_id == s.c.arxiv_id)
            .where(s.c.taken_at >= since, _has_news(s, p))
        )
        if but is not None:
            query = query.where(s.c.edition_id != but)
        with self.transaction() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            (
                Seen(
                    r["arxiv_id"],
                    r["edition_id"],
                    r["taken_at"],
                    r["seen_upvotes"],
                    r["seen_stars"],
                    r["seen_github_url"],
                    r["seen_project_url"],
                    r["seen_version"],
                ),  # fmt: skip
                row_to_paper(r),
            )
            for r in rows
        ]

    def shown_emails(
        self, subscriber_ids: Iterable[int], since: datetime
    ) -> dict[int, list[ShownEmail]]:
        """The emails these subscribers got since ``since``, oldest first, by subscriber id."""
        with self.transaction() as conn:
            return self._shown_emails(conn, subscriber_ids, since)

    async def shown_emails_async(
        self, subscriber_ids: Iterable[int], since: datetime
    ) -> dict[int, list[ShownEmail]]:
        """``shown_emails`` from a coroutine (``StoreBase.in_transaction``)."""
        return await self.in_transaction(
            functools.partial(self._shown_emails, subscriber_ids=subscriber_ids, since=since)
        )

    def _shown_emails(
        self, conn: Connection, subscriber_ids: Iterable[int], since: datetime
    ) -> dict[int, list[ShownEmail]]:
        t = schema.shown_emails
        found: dict[int, list[ShownEmail]] = {}
        # Readers with the same topics got the same list: read as text, each list is decoded
        # once (decoding every row was most of a batch's cost in bench/followups.py).
        decoded: dict[str, frozenset[str]] = {}
        columns = (t.c.subscriber_id, t.c.edition_id, t.c.shown_at,
                   sa.cast(t.c.papers, sa.Text), sa.cast(t.c.told, sa.Text))  # fmt: skip
        for ids in among(t.c.subscriber_id, subscriber_ids, self.dialect):
            query = (
                sa.select(*columns)
                .where(ids, t.c.shown_at >= since)
                .order_by(t.c.subscriber_id, t.c.shown_at, t.c.edition_id)
            )
            for sid, edition_id, shown_at, papers, told in conn.execute(query):
                for text in (papers, told):
                    if text not in decoded:
                        decoded[text] = frozenset(json.loads(text))
                found.setdefault(sid, []).append(
                    ShownEmail(edition_id, shown_at, decoded[papers], decoded[told])
                )
        return found

    def record_emails(
        self,
        edition_id: int,
        emails: Mapping[int, tuple[Sequence[str], Sequence[str]]],
        now: datetime | None = None,
        *,
        forget_before: datetime | None = None,
    ) -> None:
        """Note each email of a batch: subscriber id -> (arXiv ids it holds, ids it told again).

        One executemany for the batch; an email recorded before (a resend) stays as it was.
        Emails older than ``forget_before`` are deleted on the way.
        """
        with self.transaction() as conn:
            self._record_emails(conn, edition_id, emails, now or utcnow(), forget_before)

    async def record_emails_async(
        self,
        edition_id: int,
        emails: Mapping[int, tuple[Sequence[str], Sequence[str]]],
        now: datetime,
        *,
        forget_before: datetime | None = None,
    ) -> None:
        """``record_emails`` from a coroutine (``StoreBase.in_transaction``)."""
        await self.in_transaction(
            functools.partial(self._record_emails, edition_id=edition_id, emails=emails,
                              now=now, forget_before=forget_before)
        )  # fmt: skip

    def _record_emails(
        self,
        conn: Connection,
        edition_id: int,
        emails: Mapping[int, tuple[Sequence[str], Sequence[str]]],
        now: datetime,
        forget_before: datetime | None,
    ) -> None:
        t = schema.shown_emails
        if forget_before is not None:
            conn.execute(sa.delete(t).where(t.c.shown_at < forget_before))
        if not emails:
            return
        _insert_emails_json(conn, edition_id, emails, now)

    def watched_papers(self, since: datetime) -> dict[str, date | None]:
        """Papers of the editions sent since ``since``: what collect refreshes for follow-ups.

        arXiv id -> the day (UTC) a Hugging Face list showed it, None for other sources.
        """
        s, p = schema.shown_snapshots, schema.papers
        recent = sa.select(s.c.arxiv_id).where(s.c.taken_at >= since)
        query = sa.select(p.c.arxiv_id, p.c.listed_at, p.c.sources).where(p.c.arxiv_id.in_(recent))
        with self.transaction() as conn:
            rows = conn.execute(query).all()
        return {
            arxiv_id: listed.date() if listed and "hf" in (sources or ()) else None
            for arxiv_id, listed, sources in rows
        }


def _insert_emails_json(
    conn: Connection,
    edition_id: int,
    emails: Mapping[int, tuple[Sequence[str], Sequence[str]]],
    now: datetime,
) -> None:
    """``record_emails``' rows: one statement over one JSON document, each distinct list
    encoded once. (An executemany sent a statement per email, half the CPU of a batch's
    bookkeeping; text arrays cost as much again in psycopg's quoting of each list. On SQLite
    its binding of each row's values took twice the time of this statement.)"""
    texts: dict[tuple[str, ...], str] = {}

    def text(ids: Sequence[str]) -> str:
        key = tuple(ids)
        found = texts.get(key)
        if found is None:  # readers with the same topics share their lists
            found = texts[key] = json.dumps(list(key))  # SQLite stores it minified: reads alike
        return found

    rows = ",".join(
        f"[{int(sid)},{text(shown)},{text(again)}]" for sid, (shown, again) in emails.items()
    )
    when = schema.shown_emails.c.shown_at.type.bind_processor(conn.dialect)
    if conn.dialect.name == "postgresql":
        columns = "(e->>0)::integer, %s, %s, e->1, e->2 FROM json_array_elements(%s::json) AS e"
    else:  # SQLite's JSON functions; its upsert after a SELECT needs a WHERE to parse
        columns = ("json_extract(e.value, '$[0]'), ?, ?, json_extract(e.value, '$[1]'), "
                   "json_extract(e.value, '$[2]') FROM json_each(?) AS e WHERE true")  # fmt: skip
    conn.exec_driver_sql(
        "INSERT INTO shown_emails (subscriber_id, edition_id, shown_at, papers, told) "  # noqa: S608
        f"SELECT {columns} ON CONFLICT (subscriber_id, edition_id) DO NOTHING",
        (edition_id, when(now) if when else now, f"[{rows}]"),
    )
