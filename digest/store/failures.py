"""Failed deliveries: grouped by cause for `digest status`, queued again by `send --retry-failed`.

A failed row keeps why it failed (``failure``, a FailureKind) and the SMTP reply code beside
its ``last_error``, so both questions are answered from columns, never by parsing text.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from digest.models import DeliveryStatus, FailureKind, SubscriberStatus
from digest.store import schema
from digest.store.base import StoreBase, utcnow

__all__ = ["FailureGroup", "FailureStore"]

_t, _s, _e = schema.deliveries, schema.subscribers, schema.editions
_FAILED = _t.c.status == str(DeliveryStatus.FAILED)
# A failed row may be sent again when its cause may be fixed (not a 5.1.x hard bounce), it
# never reached anyone (no sent_at), and its subscriber is still active: bounced, unsubscribed,
# paused and deleted people (the deleted are on the suppression list and have no row) are not.
_RETRYABLE = sa.and_(
    _FAILED,
    _t.c.sent_at.is_(None),
    sa.or_(_t.c.failure.is_(None), _t.c.failure.in_([str(k) for k in FailureKind if k.retryable])),
    sa.select(_s.c.id)
    .where(_s.c.id == _t.c.subscriber_id, _s.c.status == str(SubscriberStatus.ACTIVE))
    .exists(),
)


@dataclass(frozen=True)
class FailureGroup:
    """Failed rows sharing one cause: how many, in which editions, how many may be retried."""

    failure: FailureKind | None  # None: failed before causes were recorded, cause unknown
    code: str | None  # the SMTP reply code, e.g. "550 5.7.1"
    detail: str | None  # for emails that could not be built: the error, the same for each row
    count: int
    retryable: int
    editions: tuple[str, ...]


class FailureStore(StoreBase):
    """Queries on the failed rows of the delivery ledger."""

    def failure_groups(self, edition_id: int | None = None) -> list[FailureGroup]:
        """Failed rows grouped by cause, the largest group first."""
        # A literal, not a bound parameter: PostgreSQL must see the same expression in GROUP BY.
        render = sa.literal_column(f"'{FailureKind.RENDER}'")
        detail = sa.case((_t.c.failure == render, _t.c.last_error))
        retryable = sa.func.sum(sa.case((_RETRYABLE, 1), else_=0))
        query = (
            sa.select(_t.c.failure, _t.c.failure_code, detail, _e.c.key, sa.func.count(), retryable)
            .join(_e, _e.c.id == _t.c.edition_id)
            .where(_FAILED)
            .group_by(_t.c.failure, _t.c.failure_code, detail, _e.c.key)
        )
        if edition_id is not None:
            query = query.where(_t.c.edition_id == edition_id)
        groups: dict[tuple, list] = {}
        with self.transaction() as conn:
            for failure, code, text, key, count, ok in conn.execute(query):
                group = groups.setdefault((failure, code, text), [0, 0, []])
                group[0] += count
                group[1] += ok or 0
                group[2].append(key)
        found = [
            FailureGroup(
                failure=FailureKind(failure) if failure else None,
                code=code,
                detail=text,
                count=count,
                retryable=ok,
                editions=tuple(sorted(keys)),
            )  # fmt: skip
            for (failure, code, text), (count, ok, keys) in groups.items()
        ]
        return sorted(found, key=lambda g: (-g.count, str(g.failure), g.code or ""))

    def retryable_failures(self, edition_id: int) -> int:
        """How many failed rows of an edition `send --retry-failed` would queue again."""
        query = sa.select(sa.func.count()).where(_t.c.edition_id == edition_id, _RETRYABLE)
        with self.transaction() as conn:
            return conn.scalar(query) or 0

    def requeue_failed(self, edition_id: int) -> int:
        """Queue an edition's retryable failed rows again (an admin fixed the cause); how many.

        Each row starts over (attempts 0, no cause) but stays the same row, so the ledger's
        one row per (edition, subscriber) still guarantees nobody gets the edition twice.
        """
        query = (
            sa.update(_t)
            .where(_t.c.edition_id == edition_id, _RETRYABLE)
            .values(status=str(DeliveryStatus.QUEUED), attempts=0, next_attempt_at=None,
                    claimed_by=None, failure=None, failure_code=None, updated_at=utcnow())
        )  # fmt: skip
        with self.transaction() as conn:
            return conn.execute(query).rowcount or 0
