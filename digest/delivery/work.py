"""The send loop's claims of rows, its queue of them, and the waits on its senders."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from digest.store import Store
from digest.store.deliveries import Claim

__all__ = ["PIECE", "WorkQueue", "claimed", "finished", "taken"]

# Rows per awaited store call of a batch's claim and records. The event loop gets its turn
# between pieces, so the connections go on: a whole batch of 1,000 at once held it for tens of
# milliseconds on SQLite, long after the server had taken the four messages it was given.
PIECE = 200


async def claimed(
    store: Store, edition_id: int, worker: str, limit: int, after: int | None, **options: Any
) -> list[Claim]:
    """Up to ``limit`` open rows past ``after`` (None: from the first), claimed by ``worker``
    in pieces of PIECE rows, in id order (``options``: as ``Store.claim_deliveries``')."""
    claims: list[Claim] = []
    while len(claims) < limit:
        want = min(PIECE, limit - len(claims))
        piece = await store.claim_deliveries_async(edition_id, worker, want, after=after, **options)
        claims += piece
        if len(piece) < want:  # past the last open row (or a reader deleted meanwhile)
            break
        after = piece[-1].delivery_id
    return claims


class WorkQueue(asyncio.Queue):
    """The senders' queue of claimed rows (None: stop); ``drained`` is set while it is empty."""

    def _init(self, maxsize: int) -> None:
        super()._init(maxsize)
        self.drained = asyncio.Event()
        self.drained.set()

    def _put(self, item: Claim | None) -> None:
        self.drained.clear()
        super()._put(item)

    def _get(self) -> Claim | None:
        item = super()._get()
        if not self._queue:
            self.drained.set()
        return item


async def taken(work: WorkQueue, senders: list[asyncio.Task]) -> None:
    """Wait until the senders took every queued row (and so built its email); re-raise at
    once if a sender died of an error. (Polling for it cost 5% of a core in wake-ups.)"""
    await _unless_a_sender_stops(work.drained.wait(), senders)


async def finished(work: asyncio.Queue, senders: list[asyncio.Task]) -> None:
    """Wait until every queued item is done; re-raise at once if a sender died of an error."""
    await _unless_a_sender_stops(work.join(), senders)


async def _unless_a_sender_stops(wait: Awaitable[object], senders: list[asyncio.Task]) -> None:
    waiting = asyncio.ensure_future(wait)
    done, _ = await asyncio.wait([waiting, *senders], return_when=asyncio.FIRST_COMPLETED)
    if waiting not in done:
        waiting.cancel()
        for task in done:
            task.result()
        raise RuntimeError("a sender stopped early")
