"""Leases and locks: one holder of a named lease or lock at a time, across processes.

A lease is a row of the ``locks`` table with an expiry, taken and renewed by its holder; the
scheduler's run lock is a PostgreSQL advisory lock, or such a lease on SQLite. Holders are
named ``host:pid:random`` (``new_holder``) so a holder on this machine that died can be told.

A run that records its holder (in ``runs`` and in the ledger rows it is sending) keeps that
holder visibly alive with ``alive``; ``holder_gone`` tells at once when its process died: on
PostgreSQL from a session advisory lock (the server drops it with the connection, on any
host), on SQLite from the process id on this machine or else the holder's expired lease row.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import sqlalchemy as sa

from digest.store import schema
from digest.store.base import StoreBase, StoreError, advisory_key, utcnow

__all__ = ["ALIVE_TTL", "LeaseStore", "holder_is_gone", "new_holder"]

# How long a holder on another machine (SQLite only) counts as alive without a renewal.
ALIVE_TTL = timedelta(minutes=2)


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


def _alive_name(holder: str) -> str:
    """The lease row (and advisory lock) name that says ``holder`` is alive; fits 64 chars."""
    return "alive:" + hashlib.blake2b(holder.encode(), digest_size=12).hexdigest()


class LeaseStore(StoreBase):
    """Named leases (rows with an expiry), the scheduler's run lock, and live holders."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        super().__init__(url, echo=echo)
        # The holders this process keeps alive through this Store, so nested ``alive`` blocks
        # of one holder (a scheduled run and the send inside it) share one lock or lease.
        self._present: Counter[str] = Counter()
        self._present_lock = threading.Lock()

    @contextlib.contextmanager
    def alive(self, holder: str) -> Iterator[None]:
        """Keep ``holder`` visibly alive for the block, for ``holder_gone`` in other processes.

        PostgreSQL: a session advisory lock on a connection held for the block. SQLite: a
        lease row renewed by a thread. Re-entrant for the same holder on this Store.
        """
        with self._present_lock:
            self._present[holder] += 1
            outer = self._present[holder] == 1
        name = _alive_name(holder)
        try:
            if not outer:
                yield
            elif self.dialect == "postgresql":
                with self._advisory_lock(name, wait=True):
                    yield
            else:
                with self._renewed_lease(name, holder, ALIVE_TTL):
                    yield
        finally:
            with self._present_lock:
                self._present[holder] -= 1
                if not self._present[holder]:
                    del self._present[holder]

    def holder_gone(self, holder: str) -> bool:
        """True when the process behind ``holder`` no longer runs (crashed or killed).

        Only meaningful for holders that used ``alive``: one that never did counts as gone.
        """
        with self._present_lock:
            if self._present[holder]:
                return False
        if self.dialect == "postgresql":
            with self._advisory_lock(_alive_name(holder)) as taken:
                return taken  # we could take its lock: no session holds it any more
        if holder_is_gone(holder)[0]:
            return True
        t = schema.locks
        with self.transaction() as conn:
            expires = conn.scalar(
                sa.select(t.c.expires_at).where(
                    t.c.name == _alive_name(holder), t.c.holder == holder
                )
            )
        return expires is None or expires < utcnow()

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
        with self._renewed_lease(name, holder, ttl, taken=True):
            yield True

    @contextlib.contextmanager
    def _renewed_lease(
        self, name: str, holder: str, ttl: timedelta, *, taken: bool = False
    ) -> Iterator[None]:
        """Hold the lease ``name`` for the block, renewed every ``ttl / 3`` by a thread."""
        if not taken:
            self.acquire_lease(name, holder, ttl)
        stop = threading.Event()
        renewer = threading.Thread(
            target=self._renew_lease, args=(name, holder, ttl, stop), daemon=True
        )
        renewer.start()
        try:
            yield
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
    def _advisory_lock(self, name: str, *, wait: bool = False) -> Iterator[bool]:
        """A PostgreSQL session advisory lock on a connection kept for the block."""
        key = advisory_key(name)
        take = "SELECT pg_advisory_lock(:k), true" if wait else "SELECT pg_try_advisory_lock(:k)"
        with self.engine.connect() as conn:
            taken = bool(conn.execute(sa.text(take), {"k": key}).all()[0][-1])
            conn.commit()
            try:
                yield taken
            finally:
                if taken:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()
