"""Subscribers and the suppression list."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digest.models import Frequency, Subscriber, SubscriberStatus
from digest.store import schema
from digest.store.base import StoreBase, in_chunks, utcnow
from digest.store.readers import READERS, with_ratings

__all__ = ["SubscriberStore"]

_UNSET = object()  # "leave this column alone" where None is a real value


# Subscriber fields kept as columns of its row (revision 0005); likes live in `ratings`.
_PROFILE_FIELDS = (
    "blend",
    "follow_authors",
    "follow_orgs",
    "timezone",
    "send_hour",
    "empty_days",
    "followups",
)


def _profile_values(subscriber: Subscriber) -> dict:
    """The profile columns of a subscriber row, as stored."""
    values = {name: getattr(subscriber, name) for name in _PROFILE_FIELDS}
    values["follow_authors"] = list(subscriber.follow_authors)
    values["follow_orgs"] = list(subscriber.follow_orgs)
    return values


def _insert(conn: Connection, subscriber: Subscriber, now: datetime) -> Subscriber:
    """Insert one subscriber row; dates it lacks are now (confirmed only when ACTIVE)."""
    created = subscriber.created_at or now  # an import keeps the dates of its file
    confirmed = subscriber.confirmed_at or (
        now if subscriber.status is SubscriberStatus.ACTIVE else None
    )
    new_id = conn.execute(
        sa.insert(schema.subscribers).values(
            email=subscriber.email,
            status=str(subscriber.status),
            topics=list(subscriber.topics),
            keywords=list(subscriber.keywords),
            frequency=str(subscriber.frequency),
            max_papers=subscriber.max_papers,
            min_score=subscriber.min_score,
            created_at=created,
            confirmed_at=confirmed,
            confirm_nonce=0,
            **_profile_values(subscriber),
        )
    ).inserted_primary_key[0]
    ratings = [(a, 1) for a in subscriber.likes] + [(a, -1) for a in subscriber.dislikes]
    if ratings:
        conn.execute(
            sa.insert(schema.ratings),
            [
                {"subscriber_id": new_id, "arxiv_id": a, "value": v, "created_at": now}
                for a, v in dict(ratings).items()
            ],
        )
    return dataclasses.replace(subscriber, id=new_id, created_at=created, confirmed_at=confirmed)


class SubscriberStore(StoreBase):
    """Queries on subscribers and suppressions."""

    def add_subscriber(self, subscriber: Subscriber) -> Subscriber:
        """Insert a subscriber (email already normalised); returns it with its id.

        Raises ``AlreadyExists`` when the address is already on the list.
        """
        with self.transaction() as conn:
            return _insert(conn, subscriber, utcnow())

    def get_subscriber(self, subscriber_id: int) -> Subscriber | None:
        """The subscriber with this id, or None."""
        t = schema.subscribers
        with self.transaction() as conn:
            row = conn.execute(READERS.where(t.c.id == subscriber_id)).mappings().first()
            return with_ratings(conn, [row])[0] if row else None

    def find_subscriber(self, email: str) -> Subscriber | None:
        """The subscriber with this (normalised) address, or None."""
        t = schema.subscribers
        with self.transaction() as conn:
            row = conn.execute(READERS.where(t.c.email == email)).mappings().first()
            return with_ratings(conn, [row])[0] if row else None

    def list_subscribers(self, status: SubscriberStatus | None = None) -> list[Subscriber]:
        """Every subscriber (of ``status`` when given), oldest first."""
        t = schema.subscribers
        query = READERS.order_by(t.c.id)
        if status is not None:
            query = query.where(t.c.status == str(status))
        with self.transaction() as conn:
            return with_ratings(conn, conn.execute(query).mappings().all())

    def iter_active_subscribers(
        self, frequency: Frequency | None = None, batch_size: int = 1000
    ) -> Iterator[Subscriber]:
        """Active subscribers in id order, fetched ``batch_size`` at a time (never all at once)."""
        t = schema.subscribers
        last_id = 0
        while True:
            query = (
                READERS.where(t.c.status == str(SubscriberStatus.ACTIVE), t.c.id > last_id)
                .order_by(t.c.id)
                .limit(batch_size)
            )
            if frequency is not None:
                query = query.where(t.c.frequency == str(frequency))
            with self.transaction() as conn:
                batch = with_ratings(conn, conn.execute(query).mappings().all())
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

    # --- status, preferences, confirmation -------------------------------------------------

    def unsubscribe(self, subscriber_id: int) -> bool:
        """Mark a subscriber unsubscribed at once; True when this call changed the status.

        Repeating is harmless: an unsubscribed (or bounced) subscriber is left as it is, and
        the first unsubscription time is kept.
        """
        t = schema.subscribers
        keep = [str(SubscriberStatus.UNSUBSCRIBED), str(SubscriberStatus.BOUNCED)]
        with self.transaction() as conn:
            changed = conn.execute(
                sa.update(t)
                .where(t.c.id == subscriber_id, t.c.status.not_in(keep))
                .values(status=str(SubscriberStatus.UNSUBSCRIBED), unsubscribed_at=utcnow())
            ).rowcount
        return changed == 1

    def change_status(
        self, subscriber_id: int, status: SubscriberStatus, *, expect: Iterable[SubscriberStatus]
    ) -> bool:
        """Move a subscriber to ``status`` only from a state in ``expect``; True when it moved.

        Used for pause/resume, so a stale form cannot, say, resume a bounced address.
        """
        t = schema.subscribers
        values: dict = {"status": str(status)}
        if status is SubscriberStatus.UNSUBSCRIBED:
            values["unsubscribed_at"] = utcnow()
        with self.transaction() as conn:
            return (
                conn.execute(
                    sa.update(t)
                    .where(t.c.id == subscriber_id, t.c.status.in_([str(s) for s in expect]))
                    .values(**values)
                ).rowcount
                == 1
            )

    def update_preferences(
        self,
        subscriber_id: int,
        *,
        topics: Sequence[str] | None = None,
        keywords: Sequence[str] | None = None,
        frequency: Frequency | None = None,
        max_papers: int | None | object = _UNSET,
        **profile: object,
    ) -> Subscriber | None:
        """Change what a subscriber receives (only the arguments given); returns the new row.

        ``profile`` takes the profile fields of Subscriber by name (blend, follow_authors,
        follow_orgs, timezone, send_hour, empty_days, followups); likes go through set_rating.
        """
        unknown = set(profile) - set(_PROFILE_FIELDS)
        if unknown:
            raise TypeError(f"not a profile field: {', '.join(sorted(unknown))}")
        values: dict = {
            k: list(v) if isinstance(v, tuple | list) else v for k, v in profile.items()
        }
        if topics is not None:
            values["topics"] = list(topics)
        if keywords is not None:
            values["keywords"] = list(keywords)
        if frequency is not None:
            values["frequency"] = str(frequency)
        if max_papers is not _UNSET:
            values["max_papers"] = max_papers
        t = schema.subscribers
        if values:
            with self.transaction() as conn:
                conn.execute(sa.update(t).where(t.c.id == subscriber_id).values(**values))
        return self.get_subscriber(subscriber_id)

    def next_confirm_nonce(self, subscriber_id: int) -> int:
        """Bump and return the subscriber's confirmation nonce (1, 2, ...).

        Each confirmation email carries the newest nonce, so only the latest link works, once.
        """
        t = schema.subscribers
        with self.transaction() as conn:
            conn.execute(
                sa.update(t)
                .where(t.c.id == subscriber_id)
                .values(confirm_nonce=t.c.confirm_nonce + 1)
            )
            return conn.scalar(sa.select(t.c.confirm_nonce).where(t.c.id == subscriber_id))

    def confirmation_open(self, subscriber_id: int, nonce: int) -> bool:
        """True when ``nonce`` is the subscriber's current one and they still wait to confirm."""
        t = schema.subscribers
        waiting = [str(SubscriberStatus.UNCONFIRMED), str(SubscriberStatus.UNSUBSCRIBED)]
        query = sa.select(t.c.id).where(
            t.c.id == subscriber_id, t.c.confirm_nonce == nonce, t.c.status.in_(waiting)
        )
        with self.transaction() as conn:
            return conn.scalar(query) is not None

    def confirm_subscriber(self, subscriber_id: int, nonce: int) -> Subscriber | None:
        """Use a confirmation nonce: activate the subscriber if ``nonce`` is the current one.

        One conditional UPDATE, so two clicks racing each other confirm once. Returns the
        confirmed subscriber, or None when the nonce was already used or replaced.
        """
        t = schema.subscribers
        waiting = [str(SubscriberStatus.UNCONFIRMED), str(SubscriberStatus.UNSUBSCRIBED)]
        with self.transaction() as conn:
            used = conn.execute(
                sa.update(t)
                .where(
                    t.c.id == subscriber_id,
                    t.c.confirm_nonce == nonce,
                    t.c.status.in_(waiting),
                )
                .values(
                    status=str(SubscriberStatus.ACTIVE),
                    confirmed_at=utcnow(),
                    unsubscribed_at=None,
                    confirm_nonce=t.c.confirm_nonce + 1,
                )
            ).rowcount
        return self.get_subscriber(subscriber_id) if used == 1 else None

    # --- deletion and the suppression list -------------------------------------------------

    def delete_subscriber(self, subscriber_id: int, email_hash: str) -> bool:
        """Delete a subscriber's row (their ledger rows go with it) and suppress the address.

        Only the salted hash stays, so a later import or subscribe of the address is refused.
        """
        t = schema.subscribers
        with self.transaction() as conn:
            gone = conn.execute(sa.delete(t).where(t.c.id == subscriber_id)).rowcount
            _suppress(conn, email_hash, "deleted")
        return gone == 1

    def suppress(self, email_hash: str, reason: str) -> None:
        """Put a salted address hash on the suppression list (idempotent)."""
        with self.transaction() as conn:
            _suppress(conn, email_hash, reason)

    def is_suppressed(self, email_hash: str) -> bool:
        """Whether this salted address hash is on the suppression list."""
        s = schema.suppressions
        with self.transaction() as conn:
            return (
                conn.scalar(sa.select(s.c.reason).where(s.c.email_hash == email_hash)) is not None
            )

    def suppressed_among(self, email_hashes: Iterable[str]) -> set[str]:
        """Which of these hashes are suppressed (one query per 500, for imports)."""
        s = schema.suppressions
        found: set[str] = set()
        with self.transaction() as conn:
            for chunk in in_chunks(email_hashes):
                found.update(
                    conn.scalars(sa.select(s.c.email_hash).where(s.c.email_hash.in_(chunk)))
                )
        return found

    def existing_emails(self, emails: Iterable[str]) -> set[str]:
        """Which of these (normalised) addresses are already on the list."""
        t = schema.subscribers
        found: set[str] = set()
        with self.transaction() as conn:
            for chunk in in_chunks(emails):
                found.update(conn.scalars(sa.select(t.c.email).where(t.c.email.in_(chunk))))
        return found

    def add_subscribers(self, subscribers: Iterable[Subscriber]) -> list[Subscriber]:
        """Insert many subscribers in one transaction, skipping addresses already present.

        Returns the ones inserted, with ids. All or nothing on a database error.
        """
        t = schema.subscribers
        now = utcnow()
        added: list[Subscriber] = []
        with self.transaction() as conn:
            for sub in subscribers:
                if conn.scalar(sa.select(t.c.id).where(t.c.email == sub.email)) is not None:
                    continue
                added.append(_insert(conn, sub, now))
        return added

    def count_subscribers(self) -> dict[str, int]:
        """How many subscribers are in each status."""
        t = schema.subscribers
        with self.transaction() as conn:
            rows = conn.execute(sa.select(t.c.status, sa.func.count()).group_by(t.c.status))
            return {status: n for status, n in rows}


def _suppress(conn: Connection, email_hash: str, reason: str) -> None:
    s = schema.suppressions
    exists = conn.scalar(sa.select(s.c.email_hash).where(s.c.email_hash == email_hash))
    if exists is None:
        conn.execute(
            sa.insert(s).values(email_hash=email_hash, reason=reason[:32], created_at=utcnow())
        )
