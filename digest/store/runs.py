"""Runs: a record of each collect/send/run for `digest status`."""

from __future__ import annotations

import sqlalchemy as sa

from digest.store import schema
from digest.store.base import StoreBase, utcnow

__all__ = ["RunStore"]


class RunStore(StoreBase):
    """Queries on the runs table."""

    def start_run(
        self, kind: str, edition_key: str | None = None, holder: str | None = None
    ) -> int:
        """Record that a run of ``kind`` started; returns its id.

        ``holder`` (kept alive with ``Store.alive``) lets others tell at once that it crashed.
        """
        with self.transaction() as conn:
            return conn.execute(
                sa.insert(schema.runs).values(
                    kind=kind, edition_key=edition_key, started_at=utcnow(), outcome="running",
                    holder=holder,
                )
            ).inserted_primary_key[0]  # fmt: skip

    def running_holders(self) -> list[str]:
        """The holders of runs still marked running (alive, or crashed and not yet noticed)."""
        t = schema.runs
        query = sa.select(t.c.holder).where(t.c.outcome == "running", t.c.holder.is_not(None))
        with self.transaction() as conn:
            return list(conn.scalars(query.distinct()))

    def crash_runs(self, holder: str, detail: str) -> int:
        """Runs of ``holder`` still marked running end as ``crashed`` (its process is gone)."""
        t = schema.runs
        query = (
            sa.update(t)
            .where(t.c.holder == holder, t.c.outcome == "running")
            .values(outcome="crashed", finished_at=utcnow(), detail=detail[:500])
        )
        with self.transaction() as conn:
            return conn.execute(query).rowcount or 0

    def finish_run(
        self, run_id: int, outcome: str, detail: str = "", edition_key: str | None = None
    ) -> None:
        """Record how a run ended: ok, nothing, failed, paused or crashed, with a one-line detail."""
        values: dict = {"finished_at": utcnow(), "outcome": outcome, "detail": detail}
        if edition_key is not None:
            values["edition_key"] = edition_key
        with self.transaction() as conn:
            conn.execute(sa.update(schema.runs).where(schema.runs.c.id == run_id).values(**values))

    def recent_runs(self, limit: int = 10) -> list[dict]:
        """The newest runs first, as plain dicts."""
        t = schema.runs
        with self.transaction() as conn:
            rows = conn.execute(sa.select(t).order_by(t.c.id.desc()).limit(limit)).mappings()
            return [dict(r) for r in rows]

    # --- what `digest status` shows ---

    def paused_runs(self) -> list[dict]:
        """Runs whose latest attempt at an edition ended ``paused``, newest first.

        A paused run that a later run of the same edition has since finished is not listed.
        """
        t = schema.runs
        latest = (
            sa.select(sa.func.max(t.c.id))
            .where(t.c.edition_key.is_not(None))
            .group_by(t.c.edition_key)
            .scalar_subquery()
        )
        query = (
            sa.select(t).where(t.c.outcome == "paused", t.c.id.in_(latest)).order_by(t.c.id.desc())
        )
        with self.transaction() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]
