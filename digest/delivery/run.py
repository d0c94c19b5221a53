"""One send run over an edition's ledger: each (edition, subscriber) at most once.

A row moves queued -> sending -> sent | deferred | failed | unknown. ``sending`` is committed
(together with a re-check that the subscriber is still active) before the message's data goes
out: the transport sends DATA once it took. So a crash leaves ``sending`` rows that the next
run turns into ``unknown`` at once (digest.delivery.recovery) and never resends on its own --
the listmonk lesson: a cursor is not a ledger.

Each sender builds its next email, and starts its ``sending`` mark, while the message before
it is on the wire, so a connection goes on at once when the server replies and the marks'
commits stay off its path (``SendRun._send_ahead``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass

from digest.config import Settings
from digest.delivery.contents import Contents
from digest.delivery.ledger import LedgerWriter
from digest.delivery.options import SendOptions
from digest.delivery.outcomes import OPEN, SENDING, Outcomes
from digest.delivery.report import DeliveryReport, Progress
from digest.delivery.shown import ShownBatches
from digest.delivery.start import start_run
from digest.delivery.throttle import throttle_for
from digest.delivery.transports import (
    ConnectionFailure,
    PermanentFailure,
    TemporaryFailure,
    Transport,
    UnknownOutcome,
    Withdrawn,
)
from digest.delivery.transports.base import Mark
from digest.delivery.work import WorkQueue, claimed, finished, taken
from digest.errors import DigestError
from digest.logs import event
from digest.models import DeliveryStatus, Edition, EditionStatus, Message, SubscriberStatus
from digest.store import Store, utcnow
from digest.store.deliveries import Claim

__all__ = ["SendOptions", "SendRun"]

log = logging.getLogger(__name__)

# A worker's claim on a batch it has not finished; after this another worker may take the rows
# (harmless if the first is merely slow: the move to `sending` is a compare-and-set).
CLAIM_TTL = 120.0
# Seconds a row marked ahead stays ``sending`` while the message before it awaits its reply
# (usually milliseconds): only a crash in that time leaves it ``unknown`` unsent.
AHEAD_HOLD = 1.0


@dataclass(frozen=True)
class _Ready:
    """A claimed row, its email built (None: nothing for them, or the reader is no longer
    active; a DigestError: it cannot render) and, when built, its ``sending`` mark under way."""

    claim: Claim
    built: Message | DigestError | None
    marking: asyncio.Future[bool] | None = None
    ledger: LedgerWriter | None = None  # where the mark waits until it is wanted

    def mark(self) -> asyncio.Future[bool]:
        """The started mark, wanted now: the transport's ``mark``, awaited before DATA."""
        assert self.marking is not None and self.ledger is not None
        self.ledger.want()
        return self.marking


class SendRun:
    """One run over an edition's ledger: claim rows in batches, send each through the transport.

    ``concurrency`` senders take claims from one queue; each row's outcome goes to the ledger
    as it happens. Repeated connection failures pause the run (``report.paused``).
    """

    def __init__(
        self,
        store: Store,
        edition: Edition,
        settings: Settings,
        transport: Transport,
        contents: Contents,
        report: DeliveryReport,
        progress: Progress,
        options: SendOptions,
        holder: str,
    ) -> None:
        self.store, self.edition, self.settings = store, edition, settings
        self.transport, self.contents, self.progress = transport, contents, progress
        self.report, self.options = report, options
        self.edition_id: int = edition.id  # type: ignore[assignment]
        self.holder = holder  # kept alive by the caller (Store.alive); stamped on our rows
        self.concurrency = max(1, transport.concurrency)
        self.throttle = throttle_for(settings, store)
        self.shown = ShownBatches(store, contents)  # followups: what the emails show
        # Rows not simply sent (skipped, failed, deferred ...); counts connection failures.
        self.outcomes = Outcomes(store, report, progress, settings, options, edition.key)

    async def run(self) -> DeliveryReport:
        """Send every open row (or until the run pauses); the report says what happened."""
        start_run(self.store, self.edition, self.transport, self.holder, self.options,
                  self.report, self.progress)  # fmt: skip
        batch_size = self.options.batch_size
        if self.settings.smtp_rate:  # claim no more than ~30 s of work at a time when rate-limited
            batch_size = max(self.concurrency, min(batch_size, int(self.settings.smtp_rate * 30)))
        await self._send_all(batch_size)
        await self._finish()
        return self.report

    async def _send_all(self, batch_size: int) -> None:
        """Claim batches and hand them to the senders until no row is open or the run pauses.

        The next batch is claimed past the last row of the one on the wire, and prepared, while
        that one is sent (its round trips awaited on PostgreSQL); it goes to the senders once they
        took every row before it: at most two batches claimed, no row in flight twice.
        """
        work, ledger = WorkQueue(), LedgerWriter(self.store.send_ledger())
        senders = [asyncio.create_task(self._sender(work, ledger)) for _ in range(self.concurrency)]
        after = None  # the last batch's last row: the next claim starts past it
        try:
            claims = await self._claimed(batch_size, None)
            while not self.report.paused:
                if not claims:  # past the last row; then rows below it (deferred, now due)
                    await finished(work, senders)
                    if after is None and not await self._wait_for_due_rows():
                        break
                    after, claims = None, await self._claimed(batch_size, None)
                    continue
                after = claims[-1].delivery_id  # claims come in id order
                for claim in claims:
                    work.put_nowait(claim)
                claims = await self._claimed(batch_size, after)
                await taken(work, senders)
            await finished(work, senders)
        finally:
            for task in senders:
                if not task.done():
                    work.put_nowait(None)
            results = await asyncio.gather(*senders, return_exceptions=True)
            try:
                await ledger.aclose()
            finally:  # the batch queries' connections, also after the ledger's error
                await self.store.aclose()
            self.store.release_claims(self.edition_id, self.holder)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _claimed(self, batch_size: int, after: int | None) -> list[Claim]:
        """The next batch of rows, claimed in pieces, with their selections and follow-ups chosen."""
        claims = await claimed(self.store, self.edition_id, self.holder, batch_size, after,
                               ignore_claims=not self.options.worker, claim_ttl_seconds=CLAIM_TTL)  # fmt: skip
        readers = [claim.subscriber for claim in claims]
        if readers:  # every reader's likes scored at once; what they are shown recorded
            self.contents.prepare(readers)
            await self.shown.prepare_async(readers)
        return claims

    async def _wait_for_due_rows(self) -> bool:
        """Wait for deferred rows not yet due, or rows other workers hold; False when none are left."""
        waiting, _, earliest = self.store.open_deliveries(self.edition_id)
        if waiting == 0:
            return False
        delay = 1.0
        if earliest is not None:
            delay = max(0.01, min(30.0, (earliest - utcnow()).total_seconds()))
        await self.options.sleep(delay)
        return True

    async def _sender(self, work: asyncio.Queue[Claim | None], ledger: LedgerWriter) -> None:
        """Send claimed rows from ``work`` one after another, until it hands over None."""
        if self.throttle.limited:
            while (claim := await work.get()) is not None:
                try:
                    if not self.report.paused:
                        await self._send_throttled(claim, ledger)
                finally:
                    work.task_done()
            work.task_done()
            return
        await self._send_ahead(work, ledger)

    async def _send_ahead(self, work: asyncio.Queue[Claim | None], ledger: LedgerWriter) -> None:
        """Rows one after another, each next one built and marked while this one is on the wire.

        Once a message's data is written and only the server's reply is awaited, the next row's
        email is built and its ``sending`` mark started. The mark's commit then has the reply,
        MAIL and RCPT round trips to land in before the transport needs it at DATA, and the
        writer gathers the marks of all connections into fewer commits. A connection has at
        most two rows in ``sending``: one on the wire and the next one, marked ahead (the
        ``sent`` record of the one before rides with that mark's commit). Only a crash leaves
        a row marked ahead in ``sending``; a run that stops hands it back to the queue.
        """
        loop = asyncio.get_running_loop()
        upcoming: _Ready | None = None
        last = False  # None came from ``work`` while a row was on the wire
        while not (last and upcoming is None):
            if upcoming is None:
                claim = await work.get()
                if claim is None:
                    work.task_done()
                    return
                if self.report.paused:
                    work.task_done()
                    continue
                upcoming = self._ready(claim, ledger)
            ready, upcoming = upcoming, None
            try:
                message = await self._sendable(ready)
                if message is None:
                    continue
                written: asyncio.Future[None] = loop.create_future()
                sending = asyncio.ensure_future(
                    self._hand_over(ready.claim, message, ledger, written, ready.mark)
                )
                try:
                    await written
                    if not (self.report.paused or last or work.empty()):
                        claim = work.get_nowait()
                        if claim is None:
                            work.task_done()
                            last = True
                        else:
                            upcoming = self._ready(claim, ledger)
                finally:
                    if upcoming is not None and upcoming.marking is not None:
                        upcoming = await self._hold_ahead(sending, upcoming, ledger)
                    await sending
            finally:
                work.task_done()

    def _ready(self, claim: Claim, ledger: LedgerWriter) -> _Ready:
        """Build the row's email now and start its ``sending`` mark."""
        if claim.subscriber.status is not SubscriberStatus.ACTIVE:
            return _Ready(claim, None)
        built = self._build(claim)
        if not isinstance(built, Message):
            return _Ready(claim, built)
        return self._marked(_Ready(claim, built), ledger)

    def _marked(self, ready: _Ready, ledger: LedgerWriter) -> _Ready:
        """The row with its ``sending`` mark asked for now, committed once wanted (``mark``)."""
        marking = asyncio.ensure_future(self._mark(ready.claim.delivery_id, ledger, ahead=True))
        # A run stopped by the ledger's error (raised by ``aclose``) leaves marks nobody awaits:
        # their error is taken here, so asyncio does not report it again as never retrieved.
        marking.add_done_callback(lambda done: done.cancelled() or done.exception())
        return _Ready(ready.claim, ready.built, marking, ledger)

    async def _hold_ahead(
        self, sending: asyncio.Task, ahead: _Ready, ledger: LedgerWriter
    ) -> _Ready:
        """Wait for the message on the wire. When its reply is slow, the row marked ahead goes
        back to the queue until the reply comes (then marked again), so that a crash while the
        server takes its time leaves only the message it holds ``unknown``."""
        if (await asyncio.wait([sending], timeout=AHEAD_HOLD))[0]:
            return ahead
        if not await self._hand_back(ahead):
            return ahead  # its mark did not take: the transport withdraws it
        await asyncio.wait([sending])
        return self._marked(ahead, ledger)

    async def _hand_back(self, ready: _Ready) -> bool:
        """Back to the queue if its mark took (it was never handed over); True if it did."""
        if ready.marking is None or not await ready.mark():
            return False
        self.store.mark_delivery(ready.claim.delivery_id, DeliveryStatus.QUEUED, expect=SENDING)
        return True

    async def _sendable(self, ready: _Ready) -> Message | None:
        """The row's email; None (the row recorded, or back in the queue) when it is not to
        be sent now."""
        claim, built = ready.claim, ready.built
        if self._inactive(claim):
            return None
        if self.report.paused:  # not handed over: back to the queue if its mark took
            await self._hand_back(ready)
            return None
        if not isinstance(built, Message):
            self.outcomes.unbuilt(claim, built, OPEN)
            return None
        return built

    async def _mark(self, delivery_id: int, ledger: LedgerWriter, ahead: bool = False) -> bool:
        """The row's ``sending`` mark, committed when this returns True; the transport awaits it
        before DATA. It is also the last check that the reader has not unsubscribed."""
        if self.report.paused:  # never marked: it stays queued
            return False
        if not await ledger.begin(delivery_id, ahead=ahead):
            self._not_moved(delivery_id)
            return False
        if self.report.paused:  # marked, never handed over: back to the queue
            self.store.mark_delivery(delivery_id, DeliveryStatus.QUEUED, expect=SENDING)
            return False
        return True

    def _inactive(self, claim: Claim) -> bool:
        """True (the row skipped) when the reader was no longer active at the claim."""
        if claim.subscriber.status is SubscriberStatus.ACTIVE:
            return False
        self.outcomes.skip(claim.delivery_id, str(claim.subscriber.status))
        return True

    def _not_moved(self, delivery_id: int) -> None:
        """A row whose ``sending`` mark did not take: skipped if it is still open (the reader
        left meanwhile); else another worker has it."""
        if self.store.delivery_status(delivery_id) in OPEN:
            self.outcomes.skip(delivery_id, "no longer active")

    async def _send_throttled(self, claim: Claim, ledger: LedgerWriter) -> None:
        """One row under a rate limit: the email waits for its turn before its row is marked."""
        did = claim.delivery_id
        if self._inactive(claim):
            return
        message = self._message_for(claim, OPEN)
        if message is None:
            return
        await self.throttle.acquire()
        await self._hand_over(
            claim, message, ledger, mark=functools.partial(self._mark, did, ledger)
        )

    async def _hand_over(
        self,
        claim: Claim,
        message: Message,
        ledger: LedgerWriter,
        written: asyncio.Future[None] | None = None,
        mark: Mark | None = None,
    ) -> None:
        """Send a row once ``mark`` moved it to ``sending`` (the transport awaits it before
        DATA) and record the outcome; ``written`` is resolved at the latest when this returns
        (see Transport.send)."""
        did = claim.delivery_id
        try:
            await self.transport.send(message, written, mark)
        except Withdrawn:  # not marked: recorded by the mark, or left in the queue
            return
        except (TemporaryFailure, PermanentFailure, ConnectionFailure, UnknownOutcome) as exc:
            if not await self.outcomes.record_failure(claim, exc):
                return
        except Exception as exc:  # a bug in a transport: we cannot know what the server got
            if ledger.failed:  # the ledger's own error (through the mark) stops the run
                raise
            self.report.unknown += 1
            # Also when it raised before the mark: an open row would be claimed again, forever.
            self.outcomes.finish_row(did, DeliveryStatus.UNKNOWN, expect=SENDING + OPEN,
                             error=f"{type(exc).__name__}: {exc}")  # fmt: skip
            log.exception("send.transport_error")
        else:
            self.report.sent += 1
            ledger.sent(did, message.headers.get("Message-ID"))
            self.progress.advance(DeliveryStatus.SENT)
        finally:
            if written is not None and not written.done():
                written.set_result(None)
        self.outcomes.failures = 0

    def _message_for(self, claim: Claim, expect: tuple[DeliveryStatus, ...]) -> Message | None:
        """The subscriber's email; None (the row recorded) when it is empty or cannot render."""
        built = self._build(claim)
        if isinstance(built, Message):
            return built
        self.outcomes.unbuilt(claim, built, expect)
        return None

    def _build(self, claim: Claim) -> Message | DigestError | None:
        """The subscriber's email, None when it is empty, or why it cannot render."""
        try:
            return self.contents.message(claim.subscriber)
        except DigestError as exc:  # one broken record: reported, and the run goes on
            return exc

    async def _finish(self) -> None:
        """Wait for other workers' last messages, record the ledger, mark the edition sent."""
        store, eid, report = self.store, self.edition_id, self.report
        waiting, sending, _ = store.open_deliveries(eid)
        # Other workers' last messages: wait for them so one of us can mark the edition sent.
        deadline = time.monotonic() + self.transport.message_timeout
        while self.options.worker and not report.paused and waiting == 0 and sending:
            if time.monotonic() > deadline:
                break
            await self.options.sleep(0.2)
            waiting, sending, _ = store.open_deliveries(eid)
        report.contents = self.contents.renders
        report.ledger = store.delivery_counts(eid)
        report.deferred = report.ledger.get(str(DeliveryStatus.DEFERRED), 0)
        if waiting == 0 and sending == 0:
            store.set_edition_status(eid, EditionStatus.SENT)
        event(log, "send.finished", edition=self.edition.key, sent=report.sent,
              failed=report.failed, unknown=report.unknown, deferred=report.deferred,
              paused=bool(report.paused))  # fmt: skip
        self.progress.finish(report)
