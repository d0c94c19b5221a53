"""Runs: a record of each collect/send/run for `digest status`."""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator
from datetime import timedelta

import sqlalchemy as sa

from digest.store import schema
from digest.store.base import StoreBase, StoreError, utcnow


class RunStore(StoreBase):
    """Queries on the runs table."""

    def start_run(self, kind: str, edition_key: str | None = None) -> int:
        """Record that a run of ``kind`` started; returns its id."""
        with self.transaction() as conn:
            return conn.execute(
                sa.insert(schema.runs).values(
                    kind=kind, edition_key=edition_key, started_at=utcnow(), outcome="running"
                )
            ).inserted_primary_key[0]

    def finish_run(
        self, run_id: int, outcome: str, detail: str = "", edition_key: str | None = None
    ) -> None:
        """Record how a run ended: ok, nothing, failed or paused, with a one-line detail."""
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

    # --- the scheduler's lock: one process runs an edition at a time ---

    @contextlib.contextmanager
    def run_lock(
        self, name: str, holder: str, ttl: timedelta = timedelta(minutes=10)
    ) -> Iterator[bool]:
        """Hold the database-wide lock ``name`` for the block; yields False if another has it.

        PostgreSQL: a session advisory lock on a connection kept open for the block, so a
        crashed holder releases it at once. SQLite: the lease row of `acquire_lease`, renewed
        by a background thread every ``ttl / 3`` so a long send keeps it, and left to expire
        (after ``ttl``) if the holder dies.
        """
        if self.dialect == "postgresql":
            with self._advisory_lock(name) as taken:
                yield taken
            return
        if not self.acquire_lease(name, holder, ttl):
            yield False
            return
        stop = threading.Event()
        renewer = threading.Thread(
            target=self._renew_lease, args=(name, holder, ttl, stop), daemon=True
        )
        renewer.start()
        try:
            yield True
        finally:
            stop.set()
            renewer.join()
            self.release_lease(name, holder)

    def _renew_lease(self, name: str, holder: str, ttl: timedelta, stop: threading.Event) -> None:
        while not stop.wait(ttl.total_seconds() / 3):
            try:
                self.acquire_lease(name, holder, ttl)
            except StoreError:  # a busy database: try again next period, the lease still holds
                continue

    @contextlib.contextmanager
    def _advisory_lock(self, name: str) -> Iterator[bool]:
        # A stable 64-bit key from the name (Python's hash() differs between processes).
        key = int.from_bytes(
            hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True
        )
        with self.engine.connect() as conn:
            taken = bool(conn.scalar(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}))
            conn.commit()
            try:
                yield taken
            finally:
                if taken:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()

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
