"""One send run over an edition's ledger: each (edition, subscriber) at most once.

A row moves queued -> sending -> sent | deferred | failed | unknown. ``sending`` is committed
(together with a re-check that the subscriber is still active) right before the message is
handed to the transport, so a crash leaves ``sending`` rows that the next run turns into
``unknown`` at once (digest.delivery.recovery) and never resends on its own -- the listmonk
lesson: a cursor is not a ledger.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from itertools import islice
from typing import Any

from digest.config import Settings
from digest.delivery.contents import NOTHING_FOR_THEM, Contents
from digest.delivery.failures import failure_of
from digest.delivery.ledger import LedgerWriter
from digest.delivery.recovery import recover_crashed
from digest.delivery.report import DeliveryReport, Progress
from digest.delivery.shown import ShownBatches
from digest.delivery.throttle import throttle_for
from digest.delivery.transports import (
    ConnectionFailure,
    PermanentFailure,
    TemporaryFailure,
    Transport,
    TransportError,
    UnknownOutcome,
)
from digest.errors import DigestError
from digest.logs import event
from digest.models import (
    DeliveryStatus,
    Edition,
    EditionStatus,
    FailureKind,
    Message,
    SubscriberStatus,
)
from digest.store import Store, utcnow
from digest.store.deliveries import Claim

__all__ = ["SendOptions", "SendRun", "batched"]

log = logging.getLogger(__name__)

# A worker's claim on a batch it has not finished; after this another worker may take the rows
# (harmless if the first is merely slow: the move to `sending` is a compare-and-set).
CLAIM_TTL = 120.0
OPEN = (DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED)
SENDING = (DeliveryStatus.SENDING,)


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """``items`` in lists of ``size`` (the last may be shorter)."""
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


def _backoff(attempts: int, base: float, cap: float) -> float:
    """Capped exponential backoff: base, 2*base, 4*base ... never more than cap."""
    return min(cap, base * 2 ** max(0, attempts - 1))


@dataclass(frozen=True)
class SendOptions:
    """How one send run behaves; defaults come from the settings (see ``deliver``)."""

    worker: bool = False  # share the edition with other workers through claims (PostgreSQL)
    retry_unknown: bool = False  # resend rows whose outcome is unknown after a crash
    retry_failed: bool = False  # queue failed rows again whose cause may be fixed (not 5.1.x)
    accept_unknown: bool = False  # count rows whose outcome is unknown as sent
    retry_delay: float = 30.0  # first wait before a deferred (4xx) row is retried
    retry_max_delay: float = 900.0  # the backoff doubles up to this
    pause_after: int = 3  # connection failures in a row that pause the run
    failure_pause: float = 0.5  # wait after a connection failure, times the failures so far
    # Rows claimed at a time. Between batches every connection idles (the next claim, its
    # readers' scores and follow-ups): 1,000 makes that five times rarer than 200 did.
    batch_size: int = 1000
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
    # Which subscribers get a row: queues theirs and returns how many (None: every active
    # subscriber of the edition's frequency). The subscribers' own hours pass the due ones.
    audience: Callable[[Store, Edition], int] | None = None


def _stale_after(transport: Transport) -> timedelta:
    """How old a ``sending`` row of no recorded holder must be before it counts as crashed."""
    return timedelta(seconds=2 * transport.message_timeout + 60)


def _queue(store: Store, edition: Edition, audience: Callable | None = None) -> int:
    """A queued row for every active subscriber of the edition's frequency (streamed).

    With ``audience`` (see SendOptions) only for the subscribers it picks.
    """
    if audience is not None:
        return audience(store, edition)
    added = 0
    for batch in batched(store.iter_active_subscribers(edition.frequency), 1000):
        added += store.queue_deliveries(edition.id, [s.id for s in batch])  # type: ignore[arg-type]
    return added


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
        self.failures = 0  # connection failures in a row
        self.shown = ShownBatches(store, contents)  # followups: what the emails show

    async def run(self) -> DeliveryReport:
        """Send every open row (or until the run pauses); the report says what happened."""
        self._prepare()
        batch_size = self.options.batch_size
        if self.settings.smtp_rate:  # claim no more than ~30 s of work at a time when rate-limited
            batch_size = max(self.concurrency, min(batch_size, int(self.settings.smtp_rate * 30)))
        await self._send_all(batch_size)
        await self._finish()
        return self.report

    def _prepare(self) -> None:
        """Mark dead runs' rows unknown, queue the new subscribers, start the progress display."""
        store, eid, report = self.store, self.edition_id, self.report
        unowned_before = utcnow() - _stale_after(self.transport)
        report.unknown += recover_crashed(store, self.holder, unowned_before=unowned_before).get(
            eid, 0
        )
        if report.unknown:
            event(log, "send.crashed_rows_unknown", edition=self.edition.key, rows=report.unknown,
                  level=logging.WARNING)  # fmt: skip
        if self.options.retry_unknown:
            report.retried_unknown = store.requeue_unknown(eid)
            report.unknown = 0
        elif self.options.accept_unknown:
            report.accepted_unknown = store.accept_unknown(eid)
            report.unknown = 0
        if self.options.retry_failed:
            report.retried_failed = store.requeue_failed(eid)
        queued = _queue(store, self.edition, self.options.audience)
        store.set_edition_status(eid, EditionStatus.SENDING)
        waiting, _, _ = store.open_deliveries(eid)
        event(log, "send.start", edition=self.edition.key, queued_new=queued, waiting=waiting)
        self.progress.start(waiting)

    async def _send_all(self, batch_size: int) -> None:
        """Claim batches and hand them to the senders until no row is open or the run pauses."""
        work: asyncio.Queue[Claim | None] = asyncio.Queue()
        ledger = LedgerWriter(self.store.send_ledger())
        senders = [asyncio.create_task(self._sender(work, ledger)) for _ in range(self.concurrency)]
        try:
            while not self.report.paused:
                claims = self.store.claim_deliveries(
                    self.edition_id, self.holder, batch_size,
                    ignore_claims=not self.options.worker, claim_ttl_seconds=CLAIM_TTL,
                )  # fmt: skip
                if not claims:
                    if not await self._wait_for_due_rows():
                        break
                    continue
                # Every claimed reader's likes scored at once, before their emails are built.
                self.contents.prepare([claim.subscriber for claim in claims])
                # followups: record what this batch is shown; its "Since you last saw it".
                self.shown.prepare([c.subscriber for c in claims])
                for claim in claims:
                    work.put_nowait(claim)
                # The whole batch is finished before the next claim, so no row is in flight twice.
                await _finished(work, senders)
        finally:
            for task in senders:
                if not task.done():
                    work.put_nowait(None)
            results = await asyncio.gather(*senders, return_exceptions=True)
            await ledger.aclose()
            self.store.release_claims(self.edition_id, self.holder)
        for result in results:
            if isinstance(result, BaseException):
                raise result

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
        while True:
            claim = await work.get()
            try:
                if claim is None:
                    return
                if not self.report.paused:
                    await self._send_one(claim, ledger)
            finally:
                work.task_done()

    def _finish_row(self, delivery_id: int, status: DeliveryStatus, **fields: Any) -> None:
        self.store.mark_delivery(delivery_id, status, **fields)
        self.progress.advance(status)

    def _skip(self, delivery_id: int, error: str) -> None:
        """Mark an open row skipped (if it still is open) and count it."""
        if self.store.mark_delivery(delivery_id, DeliveryStatus.SKIPPED, expect=OPEN, error=error):
            self.report.skipped += 1
            self.progress.advance(DeliveryStatus.SKIPPED)

    async def _send_one(self, claim: Claim, ledger: LedgerWriter) -> None:
        sub, did = claim.subscriber, claim.delivery_id
        if sub.status is not SubscriberStatus.ACTIVE:
            self._skip(did, str(sub.status))
            return
        if self.throttle.limited:  # the email waits for its turn before its row is marked
            message = self._message_for(claim, OPEN)
            if message is None:
                return
            await self.throttle.acquire()
            if self.report.paused:
                return
            # Committed before DATA; also the last check that they have not unsubscribed.
            moved = await ledger.begin(did)
        else:
            # The same mark, committed by the writer thread while the email is built here:
            # the commit's latency no longer leaves the connection idle.
            begun = ledger.begin_soon(did)
            built = self._build(claim)
            moved = await begun
            if not isinstance(built, Message):
                self._unbuilt(claim, built, SENDING if moved else OPEN)
                return
            message = built
            if moved and self.report.paused:  # marked, never handed over: back to the queue
                self.store.mark_delivery(did, DeliveryStatus.QUEUED, expect=SENDING)
                return
        if not moved:
            if self.store.delivery_status(did) in OPEN:
                self._skip(did, "no longer active")
            return  # else another worker has the row
        try:
            await self.transport.send(message)
        except (TemporaryFailure, PermanentFailure, ConnectionFailure, UnknownOutcome) as exc:
            if not await self._record_failure(claim, exc):
                return
        except Exception as exc:  # a bug in a transport: we cannot know what the server got
            self.report.unknown += 1
            self._finish_row(did, DeliveryStatus.UNKNOWN, expect=SENDING,
                             error=f"{type(exc).__name__}: {exc}")  # fmt: skip
            log.exception("send.transport_error")
        else:
            self.report.sent += 1
            ledger.sent(did, message.headers.get("Message-ID"))
            self.progress.advance(DeliveryStatus.SENT)
        self.failures = 0

    def _message_for(self, claim: Claim, expect: tuple[DeliveryStatus, ...]) -> Message | None:
        """The subscriber's email; None (the row recorded) when it is empty or cannot render."""
        built = self._build(claim)
        if isinstance(built, Message):
            return built
        self._unbuilt(claim, built, expect)
        return None

    def _build(self, claim: Claim) -> Message | DigestError | None:
        """The subscriber's email, None when it is empty, or why it cannot render."""
        try:
            return self.contents.message(claim.subscriber)
        except DigestError as exc:  # one broken record: reported, and the run goes on
            return exc

    def _unbuilt(
        self, claim: Claim, why: DigestError | None, expect: tuple[DeliveryStatus, ...]
    ) -> None:
        """Record a row whose email is empty (``why`` None: skipped) or cannot render (failed)."""
        if why is None:
            self.report.skipped += 1
            self._finish_row(claim.delivery_id, DeliveryStatus.SKIPPED, expect=expect,
                             error=NOTHING_FOR_THEM)  # fmt: skip
            return
        self.report.failed += 1
        self._finish_row(claim.delivery_id, DeliveryStatus.FAILED, expect=expect,
                         error=f"render: {why}", count_attempt=True,
                         failure=(FailureKind.RENDER, None))  # fmt: skip
        event(log, "send.render_failed", subscriber=claim.subscriber.id, error=str(why),
              level=logging.ERROR)  # fmt: skip

    async def _record_failure(self, claim: Claim, exc: TransportError) -> bool:
        """Put a failed send in the ledger; False when the row went back to the queue."""
        sub, did, report = claim.subscriber, claim.delivery_id, self.report
        if isinstance(exc, TemporaryFailure):
            attempts = claim.attempts + 1
            if attempts >= self.settings.smtp_max_attempts:
                report.failed += 1
                self._finish_row(did, DeliveryStatus.FAILED, expect=SENDING, error=str(exc),
                                 count_attempt=True, failure=failure_of(exc))  # fmt: skip
            else:
                wait = _backoff(attempts, self.options.retry_delay, self.options.retry_max_delay)
                self.store.mark_delivery(
                    did, DeliveryStatus.DEFERRED, expect=SENDING, error=str(exc),
                    count_attempt=True, next_attempt_at=utcnow() + timedelta(seconds=wait),
                )  # fmt: skip
            event(log, "send.deferred", subscriber=sub.id, attempt=attempts, error=str(exc))
        elif isinstance(exc, PermanentFailure):
            report.failed += 1
            self._finish_row(did, DeliveryStatus.FAILED, expect=SENDING, error=str(exc),
                             count_attempt=True, failure=failure_of(exc))  # fmt: skip
            if exc.suppress:
                report.suppressed += 1
                self.store.set_subscriber_status(sub.id, SubscriberStatus.BOUNCED)  # type: ignore[arg-type]
            event(log, "send.failed", subscriber=sub.id, error=str(exc), suppressed=exc.suppress)
        elif isinstance(exc, ConnectionFailure):
            await self._connection_failed(did, exc)
            return False
        else:  # UnknownOutcome: the server may have the message
            report.unknown += 1
            self._finish_row(did, DeliveryStatus.UNKNOWN, expect=SENDING, error=str(exc))
            event(log, "send.unknown", subscriber=sub.id, error=str(exc), level=logging.WARNING)
        return True

    async def _connection_failed(self, delivery_id: int, exc: ConnectionFailure) -> None:
        """Nothing reached the server: requeue the row; pause after ``pause_after`` in a row."""
        self.store.mark_delivery(delivery_id, DeliveryStatus.QUEUED, expect=SENDING, error=str(exc))
        self.failures += 1
        event(log, "send.connection_failed", error=str(exc), level=logging.WARNING)
        if self.failures >= self.options.pause_after:
            self._pause(
                f"{self.failures} connection failures in a row, last: {exc}. "
                "Fix the SMTP settings or server, then run `digest send` again"
            )
        else:
            await self.options.sleep(self.options.failure_pause * self.failures)

    def _pause(self, reason: str) -> None:
        if self.report.paused is None:
            self.report.paused = reason
            event(log, "send.paused", edition=self.edition.key, reason=reason, level=logging.ERROR)

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


async def _finished(work: asyncio.Queue, senders: list[asyncio.Task]) -> None:
    """Wait until every queued item is done; re-raise at once if a sender died of an error."""
    joined = asyncio.create_task(work.join())
    done, _ = await asyncio.wait([joined, *senders], return_when=asyncio.FIRST_COMPLETED)
    if joined not in done:
        joined.cancel()
        for task in done:
            task.result()
        raise RuntimeError("a sender stopped early")
