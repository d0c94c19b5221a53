"""Leases and locks: one holder of a named lease or lock at a time, across processes.

A lease is a row of the ``locks`` table with an expiry, taken and renewed by its holder; the
scheduler's run lock is a PostgreSQL advisory lock, or such a lease on SQLite. Holders are
named ``host:pid:random`` (``new_holder``) so a holder on this machine that died can be told.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta

import sqlalchemy as sa

from digest.store import schema
from digest.store.base import StoreBase, StoreError, advisory_key, utcnow

__all__ = ["LeaseStore", "holder_is_gone", "new_holder"]


def new_holder() -> str:
    """A name for this process in the lease and claim columns: host, pid and a random part.

    Host and pid let a later process on the same machine see that this one has died.
    """
    return f"{_host()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _host() -> str:
    # Cut so host, pid and the random part fit the 128-character holder columns.
    return socket.gethostname()[:80]


def holder_is_gone(holder: str) -> tuple[bool, int | None]:
    """``(True, pid)`` when ``holder`` was a process on this machine that no longer runs."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host == _host() and pid.isdigit() and not _alive(int(pid)):
        return True, int(pid)
    return False, None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


class LeaseStore(StoreBase):
    """Named leases (rows with an expiry) and the scheduler's run lock."""

    def acquire_lease(self, name: str, holder: str, ttl: timedelta) -> bool:
        """Take (or renew) the named lease for ``holder`` unless another holder's is unexpired.

        Works the same on SQLite and PostgreSQL: the row is the lock, and the conditional
        UPDATE/INSERT inside one transaction decides who gets it.
        """
        now = utcnow()
        t = schema.locks
        with self.transaction() as conn:
            taken = conn.execute(
                sa.update(t)
                .where(t.c.name == name, sa.or_(t.c.holder == holder, t.c.expires_at < now))
                .values(holder=holder, expires_at=now + ttl)
            ).rowcount
            if taken:
                return True
            try:
                with conn.begin_nested():
                    conn.execute(
                        sa.insert(t).values(name=name, holder=holder, expires_at=now + ttl)
                    )
            except sa.exc.IntegrityError:
                return False
            return True

    def release_lease(self, name: str, holder: str) -> None:
        """Give up the named lease if ``holder`` has it."""
        t = schema.locks
        with self.transaction() as conn:
            conn.execute(sa.delete(t).where(t.c.name == name, t.c.holder == holder))

    def lease_holder(self, name: str) -> str | None:
        """Who holds the named lease now (expired or not), or None."""
        t = schema.locks
        with self.transaction() as conn:
            return conn.scalar(sa.select(t.c.holder).where(t.c.name == name))

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
        key = advisory_key(name)
        with self.engine.connect() as conn:
            taken = bool(conn.scalar(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}))
            conn.commit()
            try:
                yield taken
            finally:
                if taken:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()
