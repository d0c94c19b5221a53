"""Subscriber rows read back as Subscribers, with their ratings (every store query of readers)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digest.models import Frequency, Subscriber, SubscriberStatus
from digest.store import schema
from digest.store.base import among

__all__ = ["READERS", "with_ratings"]


# The list columns of a subscriber row (JSON).
_LISTS = ("topics", "keywords", "follow_authors", "follow_orgs")
# Subscriber rows as every query of them reads them, the list columns as JSON text: a batch of
# readers repeats a few topic lists hundreds of times, and each distinct text is decoded once
# (``_list``), where the driver decoded every value of every row (a quarter of the CPU of
# claiming a batch).
READERS = sa.select(
    *(sa.cast(c, sa.Text).label(c.name) if c.name in _LISTS else c for c in schema.subscribers.c)
)


def _list(text: str | None, seen: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """A list column's JSON text as a tuple, each distinct text decoded once."""
    if text is None:
        return ()
    found = seen.get(text)
    if found is None:
        found = seen[text] = tuple(json.loads(text))
    return found


def _row_to_subscriber(
    row: sa.RowMapping, ratings: dict[str, int] | None, seen: dict[str, tuple[str, ...]]
) -> Subscriber:
    """A row of READERS as a Subscriber (``seen``: the list texts decoded so far)."""
    rated = ratings or {}
    return Subscriber(
        email=row["email"],
        id=row["id"],
        status=SubscriberStatus(row["status"]),
        topics=_list(row["topics"], seen),
        keywords=_list(row["keywords"], seen),
        frequency=Frequency(row["frequency"]),
        max_papers=row["max_papers"],
        min_score=row["min_score"],
        created_at=row["created_at"],
        confirmed_at=row["confirmed_at"],
        likes=tuple(a for a, v in rated.items() if v > 0),
        dislikes=tuple(a for a, v in rated.items() if v < 0),
        blend=row["blend"],
        follow_authors=_list(row["follow_authors"], seen),
        follow_orgs=_list(row["follow_orgs"], seen),
        timezone=row["timezone"],
        send_hour=row["send_hour"],
        empty_days=row["empty_days"] or "skip",
        followups=bool(row["followups"]),
    )


def with_ratings(conn: Connection, rows: Sequence[sa.RowMapping]) -> list[Subscriber]:
    """Subscribers of ``rows`` (of READERS) with their likes and dislikes, in one query per
    chunk."""
    rated: dict[int, dict[str, int]] = {}
    t = schema.ratings
    for ids in among(t.c.subscriber_id, [r["id"] for r in rows], conn.dialect.name):
        query = (
            sa.select(t.c.subscriber_id, t.c.arxiv_id, t.c.value)
            .where(ids)
            .order_by(t.c.subscriber_id, t.c.created_at, t.c.arxiv_id)
        )
        for sid, arxiv_id, value in conn.execute(query):
            rated.setdefault(sid, {})[arxiv_id] = value
    seen: dict[str, tuple[str, ...]] = {}
    return [_row_to_subscriber(r, rated.get(r["id"]), seen) for r in rows]
