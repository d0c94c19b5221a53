"""Who is due at their own hour: subscribers grouped by (time zone, hour), queued in one go.

Subscribers who share a time zone and an hour share every sending time, so the question
"who is due now" is asked once per group (a few hundred at most), never per subscriber:
one GROUP BY to list the groups, one INSERT ... SELECT to queue a group's ledger rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

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


def _pairs(groups: Iterable[HourGroup]) -> list[tuple[str, int]]:
    """Groups as (time zone, hour) with NULL (chose nothing) as '' and -1, to compare by =."""
    return [(g.timezone or "", -1 if g.send_hour is None else g.send_hour) for g in groups]


def _members(frequency: Frequency, groups: Iterable[HourGroup], dialect: str) -> sa.Select:
    """Ids of the active subscribers of ``frequency`` in ``groups``.

    The groups are matched as one (time zone, hour) pair: on PostgreSQL by a join with a
    VALUES list (a hash join, not a list tested per row), on SQLite by a row-value IN (a
    thousand ORs would pass its expression depth limit, and it has no VALUES with column
    names). No anti-join with the ledger here: inside an INSERT into that same ledger,
    PostgreSQL walked the index entries of the rows the statement had just inserted, once per
    subscriber (72 s for 20,000); the unique pair skips those who have a row instead.
    """
    s = schema.subscribers
    pairs = _pairs(groups)
    tz, hour = sa.func.coalesce(s.c.timezone, ""), sa.func.coalesce(s.c.send_hour, -1)
    query = sa.select(s.c.id).where(
        s.c.status == str(SubscriberStatus.ACTIVE), s.c.frequency == str(frequency)
    )
    if not pairs:
        return query.where(sa.false())
    if dialect == "postgresql":
        wanted = sa.values(
            sa.column("tz", sa.String), sa.column("hour", sa.Integer), name="due_groups"
        ).data(pairs)
        return query.join_from(s, wanted, sa.and_(tz == wanted.c.tz, hour == wanted.c.hour))
    return query.where(sa.tuple_(tz, hour).in_(pairs))


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
        """How many subscribers of ``groups`` have not had the edition (no ledger row).

        The members, less those of them with a row: two plain counts, whatever the planner
        thinks of the ledger's size (a correlated NOT EXISTS went quadratic on stale stats).
        """
        groups = list(groups)
        members = _members(frequency, groups, self.dialect).subquery()
        d = schema.deliveries
        everyone = sa.select(sa.func.count()).select_from(members)
        served = (
            sa.select(sa.func.count())
            .select_from(d.join(members, members.c.id == d.c.subscriber_id))
            .where(d.c.edition_id == edition_id)
        )
        with self.transaction() as conn:
            return (conn.scalar(everyone) or 0) - (conn.scalar(served) or 0)

    def queue_groups(
        self, edition_id: int, frequency: Frequency, groups: Iterable[HourGroup]
    ) -> int:
        """Queue a ledger row for every subscriber of ``groups`` who has none; how many.

        One INSERT ... SELECT: 100,000 subscribers never pass through Python. Whoever has a
        row already (this edition sent, or inserted meanwhile by another process) is skipped
        by the ledger's unique pair.
        """
        groups = list(groups)
        if not groups:
            return 0
        d = schema.deliveries
        ids = _members(frequency, groups, self.dialect).subquery()
        rows = sa.select(
            sa.literal(edition_id),
            ids.c.id,
            sa.literal("queued"),
            sa.literal(0),
            sa.literal(utcnow(), schema.UtcDateTime()),
        ).where(sa.true())  # SQLite: a WHERE tells its parser the ON CONFLICT is the upsert's
        columns = ["edition_id", "subscriber_id", "status", "attempts", "updated_at"]
        query = (
            self.dialect_insert(d)
            .from_select(columns, rows)
            .on_conflict_do_nothing()
            .returning(d.c.id)
        )
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
