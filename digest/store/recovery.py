"""After a crash: the ledger rows a dead run left behind, and outcomes an admin must resolve.

A run stamps its holder (``new_holder``) on the rows it claims; digest.delivery.recovery asks
``LeaseStore.holder_gone`` about each holder with rows in ``sending`` and calls these.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from digest.models import DeliveryStatus
from digest.store import schema
from digest.store.base import StoreBase, utcnow

__all__ = ["RecoveryStore"]


class RecoveryStore(StoreBase):
    """Ledger queries for crashed runs and unknown outcomes."""

    def sending_holders(self) -> list[str]:
        """The holders (runs) that have rows in ``sending`` now, in any edition."""
        t = schema.deliveries
        query = (
            sa.select(t.c.claimed_by)
            .where(t.c.status == str(DeliveryStatus.SENDING), t.c.claimed_by.is_not(None))
            .distinct()
        )
        with self.transaction() as conn:
            return list(conn.scalars(query))

    def mark_sending_unknown(
        self, *, holder: str | None = None, older_than: datetime | None = None
    ) -> dict[int, int]:
        """After a crash: rows ``holder`` left in ``sending`` become ``unknown``; per edition id.

        Never resent on their own. The row keeps ``claimed_by``, so the crashed run's unknown
        count can be shown. Without ``holder``: rows of no holder, older than ``older_than``.
        """
        t = schema.deliveries
        which = [t.c.status == str(DeliveryStatus.SENDING)]
        which.append(t.c.claimed_by == holder if holder else t.c.claimed_by.is_(None))
        if older_than is not None:
            which.append(t.c.updated_at < older_than)
        with self.transaction() as conn:
            counts = dict(
                conn.execute(
                    sa.select(t.c.edition_id, sa.func.count())
                    .where(*which)
                    .group_by(t.c.edition_id)
                ).all()
            )
            conn.execute(
                sa.update(t)
                .where(*which)
                .values(status=str(DeliveryStatus.UNKNOWN), updated_at=utcnow(),
                        last_error="interrupted between SENDING and the server's reply")
            )  # fmt: skip
        return counts

    def holder_unknown(self, holder: str) -> int:
        """Rows ``holder`` left ``sending`` or ``unknown``: a crashed run's unknown count."""
        t = schema.deliveries
        query = sa.select(sa.func.count()).where(
            t.c.claimed_by == holder,
            t.c.status.in_([str(DeliveryStatus.SENDING), str(DeliveryStatus.UNKNOWN)]),
        )
        with self.transaction() as conn:
            return conn.scalar(query) or 0

    def unknown_counts(self) -> dict[str, int]:
        """Rows whose outcome is unknown, by edition key (every edition): what an admin must resolve."""
        t, e = schema.deliveries, schema.editions
        query = (
            sa.select(e.c.key, sa.func.count())
            .join(e, e.c.id == t.c.edition_id)
            .where(t.c.status == str(DeliveryStatus.UNKNOWN))
            .group_by(e.c.key)
            .order_by(e.c.key)
        )
        with self.transaction() as conn:
            return dict(conn.execute(query).all())

    def accept_unknown(self, edition_id: int) -> int:
        """``unknown`` rows become ``sent`` on an admin's word (noted in the row); how many."""
        t = schema.deliveries
        query = (
            sa.update(t)
            .where(t.c.edition_id == edition_id, t.c.status == str(DeliveryStatus.UNKNOWN))
            .values(status=str(DeliveryStatus.SENT), updated_at=utcnow(),
                    last_error="outcome unknown; accepted as sent by an admin (--accept-unknown)")
        )  # fmt: skip
        with self.transaction() as conn:
            return conn.execute(query).rowcount or 0

    def requeue_unknown(self, edition_id: int) -> int:
        """``unknown`` rows back to ``queued``: an admin decided to resend them."""
        t = schema.deliveries
        query = (
            sa.update(t)
            .where(t.c.edition_id == edition_id, t.c.status == str(DeliveryStatus.UNKNOWN))
            .values(status=str(DeliveryStatus.QUEUED), claimed_by=None, updated_at=utcnow(),
                    next_attempt_at=None)
        )  # fmt: skip
        with self.transaction() as conn:
            return conn.execute(query).rowcount or 0
