"""One `digest send` per database: a lease row, held and renewed while a send runs.

A sender that died (SIGKILL, out of memory) leaves its lease behind; it is taken over as soon
as ``Store.holder_gone`` says that process is gone, rather than after the lease expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from digest.errors import DigestError
from digest.logs import event
from digest.store import Store

__all__ = ["LEASE", "LEASE_TTL", "send_lease", "take_lease"]

log = logging.getLogger(__name__)

LEASE = "send"
LEASE_TTL = timedelta(minutes=2)


@contextlib.asynccontextmanager
async def send_lease(store: Store, holder: str) -> AsyncIterator[None]:
    """Hold the send lease for the block, renewing it; DigestError if another sender has it."""
    if not take_lease(store, holder):
        raise DigestError(
            "another `digest send` is running against this database; wait for it to finish "
            f"(its lease expires within {int(LEASE_TTL.total_seconds())} s if it crashed)"
        )
    renewal = asyncio.create_task(_renew_lease(store, holder))
    try:
        yield
    finally:
        renewal.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewal
        store.release_lease(LEASE, holder)


def take_lease(store: Store, holder: str) -> bool:
    """Take the send lease; also from a sender that died (e.g. SIGKILL)."""
    if store.acquire_lease(LEASE, holder, LEASE_TTL):
        return True
    other = store.lease_holder(LEASE) or ""
    if other and store.holder_gone(other):
        event(log, "send.lease_taken_over", level=logging.WARNING)
        store.release_lease(LEASE, other)
        return store.acquire_lease(LEASE, holder, LEASE_TTL)
    return False


async def _renew_lease(store: Store, holder: str) -> None:
    while True:
        await asyncio.sleep(LEASE_TTL.total_seconds() / 4)
        store.acquire_lease(LEASE, holder, LEASE_TTL)
