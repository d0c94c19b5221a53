"""The send loop's ledger moves, group-committed off the connections' critical path.

Each message needs two ledger moves: ``sending`` committed before DATA, ``sent`` after the
server's reply. Committed one by one inside the event loop, every connection waited for each
commit (62% of the main thread's time on PostgreSQL). Here the moves that are waiting go in
one transaction: on PostgreSQL a task awaits each commit's round trip while the senders go
on; on SQLite the loop commits them itself, when a sender needs one (see LedgerWriter). The
send loop builds each email, and asks for its ``sending`` mark, while the message before it
is still on the wire (digest.delivery.run): the commit is done by the time DATA needs it.

On PostgreSQL a mark asked for ahead (``begin(..., ahead=True)``) is not committed at once: it
waits until the send loop says it is wanted (``want``: its envelope goes out, two round trips
before DATA), and then goes with every other mark waiting. Marks are asked for as each message's
data is written and wanted as the server's reply to it comes, so the marks of the connections
whose messages the server is still taking in ride together: half as many commits, each a round
trip to a server process that must be woken: 0.59 -> 0.34 commits per message, PostgreSQL's CPU
per message 0.54 -> 0.37 ms and digest's 1.75 -> 1.57 ms, with no more waits for a mark at DATA
(bench/send.py's 5,000 readers, on a 2-core machine where a loopback round trip costs 130 us).

Exactly once is kept: a sender awaits its ``sending`` mark before DATA, as before. A ``sent``
mark is not awaited; it rides with the next commit, at the latest the one of that sender's
next ``sending`` mark, asked for after it. So at any moment each connection has at most two
rows in ``sending``, the one on the wire and the one marked ahead of it: a crash leaves at
most 2 x connections of them, which the next run marks ``unknown`` (tests/test_crash.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

from digest.store.ledger import SendLedger

__all__ = ["LedgerWriter"]

# The longest a mark asked for ahead waits for ``want`` (only a path that never says it is
# wanted, say a row handed back, would wait this long; the send loop says so before awaiting).
AHEAD_WAIT = 0.02


class LedgerWriter:
    """Group commits of ``sending`` and ``sent`` marks; one per send run, in its event loop.

    PostgreSQL: a task commits whatever marks are waiting and awaits the server's round trip
    on the loop; the marks asked for meanwhile go in its next commit. (A writer thread doing
    the same sent about 2% fewer messages a second: the GIL and the wake-ups passed between
    the threads.)

    SQLite: a commit is a local call of about 60 us (WAL, synchronous=NORMAL). It runs on the
    event loop when a sender needs its mark (``begin``), with whatever other marks are waiting.
    """

    def __init__(self, ledger: SendLedger) -> None:
        self._ledger = ledger
        self._loop = asyncio.get_running_loop()
        self._begins: list[tuple[int, asyncio.Future[bool]]] = []
        self._sent: list[tuple[int, str | None]] = []
        self._closing = False
        self._error: Exception | None = None
        self.commits = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._due: asyncio.TimerHandle | None = None  # commits marks asked for ahead, at the latest
        if ledger.asynchronous:
            self._task = asyncio.ensure_future(self._run())

    async def begin(self, delivery_id: int, *, ahead: bool = False) -> bool:
        """Move the row to ``sending``, committed when this returns; False if it is not open
        any more or its subscriber is no longer active.

        ``ahead``: asked for before it is needed. On PostgreSQL it then goes with the next
        commit, one that ``want`` or another mark starts (after AHEAD_WAIT at the latest).
        """
        if self._closing:
            raise RuntimeError("the ledger writer is closed")
        future: asyncio.Future[bool] = self._loop.create_future()
        self._begins.append((delivery_id, future))
        if self._task is None:  # SQLite: commit it now, with whatever else is waiting
            self._commit_now()
        elif not ahead:
            self._wake.set()
        elif self._due is None:
            self._due = self._loop.call_later(AHEAD_WAIT, self.want)
        return await future

    def want(self) -> None:
        """A mark asked for ahead is needed soon: commit the marks waiting now."""
        if self._begins:
            self._wake.set()

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
        self._sent.append((delivery_id, message_id))

    async def aclose(self) -> None:
        """Commit what is waiting, stop the writer, give the connection back."""
        self._closing = True
        try:
            if self._task is None:
                self._commit_now()
            else:
                self._wake.set()
                await self._task
        finally:
            self._ledger.close()
            await self._ledger.aclose()
        if self._error is not None:
            raise self._error

    def _take(self) -> tuple[list[tuple[int, asyncio.Future[bool]]], list[tuple[int, str | None]]]:
        if self._due is not None:
            self._due.cancel()
            self._due = None
        begins, self._begins = self._begins, []
        sent, self._sent = self._sent, []
        return begins, sent

    def _commit_now(self) -> None:
        begins, sent = self._take()
        if not (begins or sent):
            return
        try:
            moved = self._ledger.commit(sent, [did for did, _ in begins])
        except Exception as exc:  # every waiting sender gets the error; the run stops
            self._failed(begins, exc)
            return
        self._settle(begins, moved)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            last = self._closing  # then every sender is done: this take is the last
            begins, sent = self._take()
            if begins or sent:
                try:
                    moved = await self._ledger.commit_async(sent, [did for did, _ in begins])
                except Exception as exc:  # every waiting sender gets the error; the run stops
                    self._failed(begins, exc)
                else:
                    self._settle(begins, moved)
            if last:
                return

    def _failed(self, begins: list[tuple[int, asyncio.Future[bool]]], exc: Exception) -> None:
        self._error = exc
        for _, future in begins:
            _settle(future, None, exc)

    def _settle(self, begins: list[tuple[int, asyncio.Future[bool]]], moved: set[int]) -> None:
        self.commits += 1
        for did, future in begins:
            _settle(future, did in moved, None)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the sender was cancelled meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
