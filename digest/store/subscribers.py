"""Subscribers and the suppression list."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import sqlalchemy as sa

from digest.models import Frequency, Subscriber, SubscriberStatus
from digest.store import schema
from digest.store.base import StoreBase, utcnow


def _row_to_subscriber(row: sa.RowMapping) -> Subscriber:
    return Subscriber(
        email=row["email"],
        id=row["id"],
        status=SubscriberStatus(row["status"]),
        topics=tuple(row["topics"] or ()),
        keywords=tuple(row["keywords"] or ()),
        frequency=Frequency(row["frequency"]),
        max_papers=row["max_papers"],
        min_score=row["min_score"],
        created_at=row["created_at"],
        confirmed_at=row["confirmed_at"],
    )


class SubscriberStore(StoreBase):
    """Queries on subscribers and suppressions."""

    def add_subscriber(self, subscriber: Subscriber) -> Subscriber:
        """Insert a subscriber (email already normalised); returns it with its id.

        Raises ``sqlalchemy.exc.IntegrityError`` when the address is already on the list.
        """
        now = utcnow()
        confirmed = now if subscriber.status is SubscriberStatus.ACTIVE else None
        with self.transaction() as conn:
            new_id = conn.execute(
                sa.insert(schema.subscribers).values(
                    email=subscriber.email,
                    status=str(subscriber.status),
                    topics=list(subscriber.topics),
                    keywords=list(subscriber.keywords),
                    frequency=str(subscriber.frequency),
                    max_papers=subscriber.max_papers,
                    min_score=subscriber.min_score,
                    created_at=now,
                    confirmed_at=confirmed,
                    confirm_nonce=0,
                )
            ).inserted_primary_key[0]
        return dataclasses.replace(subscriber, id=new_id, created_at=now, confirmed_at=confirmed)

    def get_subscriber(self, subscriber_id: int) -> Subscriber | None:
        """The subscriber with this id, or None."""
        t = schema.subscribers
        with self.transaction() as conn:
            row = conn.execute(sa.select(t).where(t.c.id == subscriber_id)).mappings().first()
        return _row_to_subscriber(row) if row else None

    def find_subscriber(self, email: str) -> Subscriber | None:
        """The subscriber with this (normalised) address, or None."""
        t = schema.subscribers
        with self.transaction() as conn:
            row = conn.execute(sa.select(t).where(t.c.email == email)).mappings().first()
        return _row_to_subscriber(row) if row else None

    def list_subscribers(self, status: SubscriberStatus | None = None) -> list[Subscriber]:
        """Every subscriber (of ``status`` when given), oldest first."""
        t = schema.subscribers
        query = sa.select(t).order_by(t.c.id)
        if status is not None:
            query = query.where(t.c.status == str(status))
        with self.transaction() as conn:
            return [_row_to_subscriber(r) for r in conn.execute(query).mappings()]

    def iter_active_subscribers(
        self, frequency: Frequency | None = None, batch_size: int = 1000
    ) -> Iterator[Subscriber]:
        """Active subscribers in id order, fetched ``batch_size`` at a time (never all at once)."""
        t = schema.subscribers
        last_id = 0
        while True:
            query = (
                sa.select(t)
                .where(t.c.status == str(SubscriberStatus.ACTIVE), t.c.id > last_id)
                .order_by(t.c.id)
                .limit(batch_size)
            )
            if frequency is not None:
                query = query.where(t.c.frequency == str(frequency))
            with self.transaction() as conn:
                batch = [_row_to_subscriber(r) for r in conn.execute(query).mappings()]
            if not batch:
                return
            yield from batch
            last_id = batch[-1].id  # type: ignore[assignment]

    def set_subscriber_status(self, subscriber_id: int, status: SubscriberStatus) -> None:
        """Change a subscriber's status, stamping confirmation and unsubscription times."""
        values: dict = {"status": str(status)}
        if status is SubscriberStatus.ACTIVE:
            values["confirmed_at"] = utcnow()
        elif status is SubscriberStatus.UNSUBSCRIBED:
            values["unsubscribed_at"] = utcnow()
        t = schema.subscribers
        with self.transaction() as conn:
            conn.execute(sa.update(t).where(t.c.id == subscriber_id).values(**values))
