"""Who is due at their own hour: subscribers grouped by (time zone, hour), queued in one go.

Subscribers who share a time zone and an hour share every sending time, so the question
"who is due now" is asked once per group (a few hundred at most), never per subscriber:
one GROUP BY to list the groups, one INSERT ... SELECT to queue a group's ledger rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from digest.models import DeliveryStatus, Edition, Frequency, SubscriberStatus
from digest.store import schema
from digest.store.base import StoreBase, utcnow

__all__ = ["HourGroup", "HourStore"]


@dataclass(frozen=True, slots=True)
class HourGroup:
    """Active subscribers of one frequency sharing a time zone and an hour (None: the default)."""

    timezone: str | None
    send_hour: int | None
    count: int = 0

    @property
    def default(self) -> bool:
        """True for subscribers who chose neither: they are sent on DIGEST_SCHEDULE."""
        return self.timezone is None and self.send_hour is None


def _in_groups(groups: Iterable[HourGroup]) -> sa.ColumnElement[bool]:
    """Subscribers of any of ``groups``: one row-value IN, NULL (chose nothing) as '' and -1.

    Not an OR per group: a thousand ORs pass SQLite's expression depth limit (1,000).
    """
    s = schema.subscribers
    pairs = [(g.timezone or "", -1 if g.send_hour is None else g.send_hour) for g in groups]
    if not pairs:
        return sa.false()
    row = sa.tuple_(sa.func.coalesce(s.c.timezone, ""), sa.func.coalesce(s.c.send_hour, -1))
    return row.in_(pairs)


def _lacking(edition_id: int, frequency: Frequency, groups: Iterable[HourGroup]) -> sa.Select:
    """Active subscribers of ``groups`` with no ledger row for the edition yet."""
    s, d = schema.subscribers, schema.deliveries
    has_row = sa.select(d.c.id).where(d.c.edition_id == edition_id, d.c.subscriber_id == s.c.id)
    return sa.select(s.c.id).where(
        s.c.status == str(SubscriberStatus.ACTIVE),
        s.c.frequency == str(frequency),
        _in_groups(groups),
        ~has_row.exists(),
    )


class HourStore(StoreBase):
    """The due-subscriber queries behind the subscribers' own hours."""

    def hour_groups(self, frequency: Frequency) -> list[HourGroup]:
        """Active subscribers of ``frequency`` by (time zone, hour), with how many share each."""
        s = schema.subscribers
        query = (
            sa.select(s.c.timezone, s.c.send_hour, sa.func.count())
            .where(s.c.status == str(SubscriberStatus.ACTIVE), s.c.frequency == str(frequency))
            .group_by(s.c.timezone, s.c.send_hour)
        )
        with self.transaction() as conn:
            return [HourGroup(tz, hour, n) for tz, hour, n in conn.execute(query)]

    def count_lacking(
        self, edition_id: int, frequency: Frequency, groups: Iterable[HourGroup]
    ) -> int:
        """How many subscribers of ``groups`` have not had the edition (no ledger row)."""
        query = sa.select(sa.func.count()).select_from(
            _lacking(edition_id, frequency, groups).subquery()
        )
        with self.transaction() as conn:
            return conn.scalar(query) or 0

    def queue_groups(
        self, edition_id: int, frequency: Frequency, groups: Iterable[HourGroup]
    ) -> int:
        """Queue a ledger row for every subscriber of ``groups`` who has none; how many.

        One INSERT ... SELECT: 100,000 subscribers never pass through Python. A row that
        another process inserted meanwhile is left alone (the ledger's unique pair).
        """
        groups = list(groups)
        if not groups:
            return 0
        d = schema.deliveries
        ids = _lacking(edition_id, frequency, groups).subquery()
        rows = sa.select(
            sa.literal(edition_id),
            ids.c.id,
            sa.literal("queued"),
            sa.literal(0),
            sa.literal(utcnow(), schema.UtcDateTime()),
        ).where(sa.true())  # SQLite: a WHERE tells its parser the ON CONFLICT is the upsert's
        columns = ["edition_id", "subscriber_id", "status", "attempts", "updated_at"]
        insert = (postgresql if self.dialect == "postgresql" else sqlite).insert(d)
        query = insert.from_select(columns, rows).on_conflict_do_nothing().returning(d.c.id)
        with self.transaction() as conn:  # rowcount is -1 here on PostgreSQL: count RETURNING
            return len(conn.execute(query).all())

    def rolled_editions(
        self, subscriber_id: int, edition: Edition, reason: str, limit: int = 14
    ) -> list[Edition]:
        """Editions before ``edition`` that gave this subscriber no email for ``reason``
        since their last email; oldest first, at most ``limit`` (two weeks of daily ones).

        What an ``empty_days = "roll"`` subscriber's next email gathers: each of them once,
        since the email that holds them is a sent row later than all of them.
        """
        d, e = schema.deliveries, schema.editions
        mine = sa.and_(
            d.c.subscriber_id == subscriber_id,
            e.c.frequency == str(edition.frequency),
            e.c.id < edition.id,
        )
        last_sent = (
            sa.select(sa.func.coalesce(sa.func.max(e.c.id), 0))
            .select_from(d.join(e, e.c.id == d.c.edition_id))
            .where(mine, d.c.status == str(DeliveryStatus.SENT))
            .scalar_subquery()
        )
        query = (
            sa.select(e.c.id)
            .select_from(d.join(e, e.c.id == d.c.edition_id))
            .where(
                mine,
                d.c.status == str(DeliveryStatus.SKIPPED),
                d.c.last_error == reason,
                e.c.id > last_sent,
            )
            .order_by(e.c.id.desc())
            .limit(limit)
        )
        with self.transaction() as conn:
            ids = list(conn.scalars(query))
        return [x for i in reversed(ids) if (x := self.get_edition(i)) is not None]  # type: ignore[attr-defined]
