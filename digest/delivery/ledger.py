"""The send loop's ledger moves, group-committed off the connections' critical path.

Each message needs two ledger moves: ``sending`` committed before DATA, ``sent`` after the
server's reply. Committed one by one inside the event loop, every connection waited for each
commit (62% of the main thread's time on PostgreSQL). Here the moves that are waiting go in
one transaction: on PostgreSQL a writer thread commits them while the event loop goes on; on
SQLite the loop commits them itself, when a sender needs one (see LedgerWriter). The send
loop builds each email, and asks for its ``sending`` mark, while the message before it is
still on the wire (digest.delivery.run): the commit is done by the time DATA needs it.

Exactly once is kept: a sender awaits its ``sending`` mark before DATA, as before. A ``sent``
mark is not awaited; it rides with the next commit, at the latest the one of that sender's
next ``sending`` mark, asked for after it. So at any moment each connection has at most two
rows in ``sending``, the one on the wire and the one marked ahead of it: a crash leaves at
most 2 x connections of them, which the next run marks ``unknown`` (tests/test_crash.py).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from digest.store.ledger import SendLedger

__all__ = ["LedgerWriter"]


class LedgerWriter:
    """Group commits of ``sending`` and ``sent`` marks; one per send run, in its event loop.

    ``threaded`` (PostgreSQL): a writer thread commits as soon as a mark is waiting, and waits
    out the server's round trip while the event loop goes on.

    Not ``threaded`` (SQLite): a commit is a local call of about 60 us (WAL, synchronous=
    NORMAL), less than handing it to a thread costs (a wake-up, the GIL passed back and forth,
    a wake-up back). It runs on the event loop when a sender needs its mark (``begin``),
    with whatever other marks are waiting.
    """

    def __init__(self, ledger: SendLedger, *, threaded: bool = True) -> None:
        self._ledger = ledger
        self._loop = asyncio.get_running_loop()
        self._wake = threading.Condition()
        self._begins: list[tuple[int, asyncio.Future[bool]]] = []
        self._sent: list[tuple[int, str | None]] = []
        self._closing = False
        self._error: Exception | None = None
        self.commits = 0
        self._thread: threading.Thread | None = None
        if threaded:
            self._thread = threading.Thread(target=self._run, name="digest-ledger", daemon=True)
            self._thread.start()

    async def begin(self, delivery_id: int) -> bool:
        """Move the row to ``sending``, committed when this returns; False if it is not open
        any more or its subscriber is no longer active."""
        future: asyncio.Future[bool] = self._loop.create_future()
        with self._wake:
            if self._closing:
                raise RuntimeError("the ledger writer is closed")
            self._begins.append((delivery_id, future))
            if self._thread is not None:
                self._wake.notify()
        if self._thread is None:  # SQLite: commit it now, with whatever else is waiting
            self._commit_inline()
        return await future

    @property
    def failed(self) -> bool:
        """True once a commit failed: its error stops the run (``aclose`` raises it)."""
        return self._error is not None

    def sent(self, delivery_id: int, message_id: str | None) -> None:
        """Record ``sending`` -> ``sent`` in the next commit (not awaited).

        It does not wake the writer: the next ``sending`` mark (or the close) commits it, so a
        commit of sent marks alone costs nothing. That next mark comes before this sender's
        next message at the latest, which keeps the crash bound above.
        """
        with self._wake:
            self._sent.append((delivery_id, message_id))

    async def aclose(self) -> None:
        """Commit what is waiting, stop the thread, give the connection back."""
        if self._thread is None:
            self._closing = True
            try:
                self._commit_inline()
            finally:
                self._ledger.close()
            if self._error is not None:
                raise self._error
            return
        with self._wake:
            self._closing = True
            self._wake.notify()
        await asyncio.to_thread(self._thread.join)
        if self._error is not None:
            raise self._error

    def _commit_inline(self) -> None:
        begins, self._begins = self._begins, []
        sent, self._sent = self._sent, []
        if begins or sent:
            self._commit(begins, sent)

    def _run(self) -> None:
        try:
            while True:
                with self._wake:
                    while not (self._begins or self._closing):
                        self._wake.wait()
                    begins, self._begins = self._begins, []
                    sent, self._sent = self._sent, []
                    last = self._closing and not begins
                if begins or sent:
                    self._commit(begins, sent)
                if last:
                    return
        finally:
            self._ledger.close()

    def _commit(
        self, begins: list[tuple[int, asyncio.Future[bool]]], sent: list[tuple[int, str | None]]
    ) -> None:
        try:
            moved = self._ledger.commit(sent, [did for did, _ in begins])
        except Exception as exc:  # every waiting sender gets the error; the run stops
            self._error = exc
            for _, future in begins:
                self._loop.call_soon_threadsafe(_settle, future, None, exc)
            return
        self.commits += 1
        # One wake-up of the event loop per commit, not one per row (each is a write to its pipe).
        settled = [(future, did in moved) for did, future in begins]
        if not settled:
            return
        if self._thread is None:
            _settle_all(settled)
        else:
            self._loop.call_soon_threadsafe(_settle_all, settled)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the sender was cancelled meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _settle_all(settled: list[tuple[asyncio.Future[bool], bool]]) -> None:
    for future, moved in settled:
        _settle(future, moved, None)
