"""The delivery ledger: one row per (edition, subscriber), moved through its states."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from digest.models import Delivery, DeliveryStatus
from digest.store import schema
from digest.store.base import StoreBase, utcnow


def _row_to_delivery(row: sa.RowMapping) -> Delivery:
    return Delivery(
        edition_id=row["edition_id"],
        subscriber_id=row["subscriber_id"],
        status=DeliveryStatus(row["status"]),
        attempts=row["attempts"],
        last_error=row["last_error"],
        message_id=row["message_id"],
        id=row["id"],
        updated_at=row["updated_at"],
    )


class DeliveryStore(StoreBase):
    """Queries on the deliveries table."""

    def _insert_ignore(self) -> sa.Insert:
        t = schema.deliveries
        if self.dialect == "postgresql":
            return postgresql.insert(t).on_conflict_do_nothing(
                constraint="uq_deliveries_edition_subscriber"
            )
        return sqlite.insert(t).on_conflict_do_nothing(
            index_elements=["edition_id", "subscriber_id"]
        )

    def queue_deliveries(self, edition_id: int, subscriber_ids: Iterable[int]) -> int:
        """Add a queued row per subscriber unless one exists; returns how many were added."""
        now = utcnow()
        rows = [
            {
                "edition_id": edition_id,
                "subscriber_id": sid,
                "status": "queued",
                "attempts": 0,
                "updated_at": now,
            }
            for sid in subscriber_ids
        ]
        if not rows:
            return 0
        with self.transaction() as conn:
            return conn.execute(self._insert_ignore(), rows).rowcount or 0

    def deliveries(
        self, edition_id: int, statuses: Iterable[DeliveryStatus] | None = None
    ) -> list[Delivery]:
        """The ledger rows of an edition, optionally only those in ``statuses``."""
        t = schema.deliveries
        query = sa.select(t).where(t.c.edition_id == edition_id).order_by(t.c.id)
        if statuses is not None:
            query = query.where(t.c.status.in_([str(s) for s in statuses]))
        with self.transaction() as conn:
            return [_row_to_delivery(r) for r in conn.execute(query).mappings()]

    def mark_delivery(
        self,
        delivery_id: int,
        status: DeliveryStatus,
        *,
        expect: Iterable[DeliveryStatus] | None = None,
        error: str | None = None,
        message_id: str | None = None,
        count_attempt: bool = False,
    ) -> bool:
        """Move a delivery to ``status``, only from a state in ``expect`` when given.

        Committed before returning, so ``sending`` is on disk before the SMTP DATA command.
        Returns False when the row was not in an expected state (another worker has it).
        """
        t = schema.deliveries
        now = utcnow()
        values: dict = {"status": str(status), "updated_at": now}
        if error is not None:
            values["last_error"] = error[:500]
        if message_id is not None:
            values["message_id"] = message_id
        if count_attempt:
            values["attempts"] = t.c.attempts + 1
        if status is DeliveryStatus.SENT:
            values["sent_at"] = now
        query = sa.update(t).where(t.c.id == delivery_id).values(**values)
        if expect is not None:
            query = query.where(t.c.status.in_([str(s) for s in expect]))
        with self.transaction() as conn:
            return conn.execute(query).rowcount == 1

    def mark_stale_sending_unknown(self, edition_id: int | None = None) -> int:
        """After a crash: rows left in ``sending`` become ``unknown`` (never resent on their own)."""
        t = schema.deliveries
        query = (
            sa.update(t)
            .where(t.c.status == str(DeliveryStatus.SENDING))
            .values(status=str(DeliveryStatus.UNKNOWN), updated_at=utcnow(),
                    last_error="interrupted between SENDING and the server's reply")
        )  # fmt: skip
        if edition_id is not None:
            query = query.where(t.c.edition_id == edition_id)
        with self.transaction() as conn:
            return conn.execute(query).rowcount or 0

    def delivery_counts(self, edition_id: int | None = None) -> dict[str, int]:
        """How many ledger rows are in each state (of one edition, or all)."""
        t = schema.deliveries
        query = sa.select(t.c.status, sa.func.count()).group_by(t.c.status)
        if edition_id is not None:
            query = query.where(t.c.edition_id == edition_id)
        with self.transaction() as conn:
            return {status: n for status, n in conn.execute(query)}
