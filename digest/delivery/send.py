"""The ledger-driven send loop: each (edition, subscriber) at most once, through every fault.

A row moves queued -> sending -> sent | deferred | failed | unknown. ``sending`` is committed
(together with a re-check that the subscriber is still active) right before the message is
handed to the transport, so a crash leaves ``sending`` rows that the next run turns into
``unknown`` and never resends on its own -- the listmonk lesson: a cursor is not a ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable, Iterator
from datetime import timedelta
from itertools import islice
from typing import Any

from digest.config import Settings
from digest.delivery.contents import Contents
from digest.delivery.lease import new_holder, send_lease
from digest.delivery.report import DeliveryReport, NoProgress, Progress
from digest.delivery.throttle import throttle_for
from digest.delivery.transports import (
    ConnectionFailure,
    PermanentFailure,
    TemporaryFailure,
    Transport,
    UnknownOutcome,
    make_transport,
)
from digest.errors import DigestError
from digest.logs import event
from digest.models import DeliveryStatus, Edition, EditionStatus, SubscriberStatus
from digest.store import Store, utcnow
from digest.store.deliveries import Claim

__all__ = ["deliver", "send_edition"]

log = logging.getLogger(__name__)

# A worker's claim on a batch it has not finished; after this another worker may take the rows
# (harmless if the first is merely slow: the move to `sending` is a compare-and-set).
CLAIM_TTL = 120.0
OPEN = (DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED)


def _batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


def _backoff(attempts: int, base: float, cap: float) -> float:
    """Capped exponential backoff: base, 2*base, 4*base ... never more than cap."""
    return min(cap, base * 2 ** max(0, attempts - 1))


async def deliver(
    store: Store,
    edition: Edition,
    settings: Settings,
    *,
    transport: Transport,
    renderer: Any = None,
    taxonomy: Any = None,
    worker: bool = False,
    retry_unknown: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
    retry_delay: float | None = None,
    retry_max_delay: float | None = None,
    pause_after: int = 3,
    failure_pause: float = 0.5,
    batch_size: int = 200,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> DeliveryReport:
    """Send ``edition`` to every active subscriber who has not had it; returns what happened.

    ``worker=True`` (PostgreSQL) shares the edition with other workers by claiming batches;
    otherwise a lease in the database keeps a second sender out.
    """
    if edition.id is None:
        raise ValueError("deliver() needs a stored edition (with an id)")
    contents = Contents(edition, settings, renderer, taxonomy)
    report = DeliveryReport(edition_key=edition.key, dry_run=dry_run)
    if dry_run:
        return _dry_run(store, edition, contents, report)
    if worker and store.dialect != "postgresql":
        raise DigestError(
            "--worker needs PostgreSQL (DIGEST_DATABASE_URL=postgresql+psycopg://...)"
        )
    progress = progress or NoProgress()
    holder = new_holder()
    # Workers share the edition through claims; a lone sender keeps others out with the lease.
    async with contextlib.nullcontext() if worker else send_lease(store, holder):
        return await _run(
            store, edition, settings, transport, contents, report, progress,
            worker=worker, holder=holder, retry_unknown=retry_unknown,
            retry_delay=settings.smtp_retry_delay if retry_delay is None else retry_delay,
            retry_max_delay=(
                settings.smtp_retry_max_delay if retry_max_delay is None else retry_max_delay
            ),
            pause_after=pause_after, failure_pause=failure_pause, batch_size=batch_size,
            sleep=sleep,
        )  # fmt: skip


def _stale_after(settings: Settings, transport: Transport) -> timedelta:
    """How old a ``sending`` row must be before a worker may call it crashed."""
    return timedelta(seconds=2 * transport.message_timeout + 60)


def _queue(store: Store, edition: Edition) -> int:
    """A queued row for every active subscriber of the edition's frequency (streamed)."""
    added = 0
    for batch in _batched(store.iter_active_subscribers(edition.frequency), 1000):
        added += store.queue_deliveries(edition.id, [s.id for s in batch])  # type: ignore[arg-type]
    return added


async def _run(
    store: Store,
    edition: Edition,
    settings: Settings,
    transport: Transport,
    contents: Contents,
    report: DeliveryReport,
    progress: Progress,
    *,
    worker: bool,
    holder: str,
    retry_unknown: bool,
    retry_delay: float,
    retry_max_delay: float,
    pause_after: int,
    failure_pause: float,
    batch_size: int,
    sleep: Callable[[float], Awaitable[Any]],
) -> DeliveryReport:
    eid: int = edition.id  # type: ignore[assignment]
    # Only a lone SQLite sender (it holds the lease) knows every `sending` row is a dead run's;
    # on PostgreSQL a worker may be mid-message, so only rows older than any message can be.
    shared = worker or store.dialect == "postgresql"
    older = utcnow() - _stale_after(settings, transport) if shared else None
    report.unknown += store.mark_stale_sending_unknown(eid, older_than=older)
    if report.unknown:
        event(log, "send.crashed_rows_unknown", edition=edition.key, rows=report.unknown,
              level=logging.WARNING)  # fmt: skip
    if retry_unknown:
        report.retried_unknown = store.requeue_unknown(eid)
        report.unknown = 0
    queued = _queue(store, edition)
    store.set_edition_status(eid, EditionStatus.SENDING)
    waiting, _, _ = store.open_deliveries(eid)
    event(log, "send.start", edition=edition.key, queued_new=queued, waiting=waiting)
    progress.start(waiting)

    limiter = throttle_for(settings, store)
    concurrency = max(1, transport.concurrency)
    if settings.smtp_rate:  # claim no more than ~30 s of work at a time when rate-limited
        batch_size = max(concurrency, min(batch_size, int(settings.smtp_rate * 30)))
    work: asyncio.Queue[Claim | None] = asyncio.Queue()
    state = {"failures": 0}

    async def pause(reason: str) -> None:
        if report.paused is None:
            report.paused = reason
            event(log, "send.paused", edition=edition.key, reason=reason, level=logging.ERROR)

    async def send_one(claim: Claim) -> None:
        sub = claim.subscriber
        did = claim.delivery_id

        def finish(status: DeliveryStatus, **kw: Any) -> None:
            store.mark_delivery(did, status, **kw)
            progress.advance(status)

        if sub.status is not SubscriberStatus.ACTIVE:
            if store.mark_delivery(did, DeliveryStatus.SKIPPED, expect=OPEN, error=str(sub.status)):
                report.skipped += 1
                progress.advance(DeliveryStatus.SKIPPED)
            return
        try:
            message = contents.message(sub)
        except DigestError as exc:  # one broken record: report it and go on
            report.failed += 1
            finish(DeliveryStatus.FAILED, expect=OPEN, error=f"render: {exc}", count_attempt=True)
            event(log, "send.render_failed", subscriber=sub.id, error=str(exc),
                  level=logging.ERROR)  # fmt: skip
            return
        if message is None:
            report.skipped += 1
            finish(DeliveryStatus.SKIPPED, expect=OPEN, error="nothing for this subscriber")
            return
        await limiter.acquire()
        if report.paused:
            return
        # Committed before DATA; also the last check that they have not unsubscribed.
        if not ledger.begin(did, sub.id):  # type: ignore[arg-type]
            if store.delivery_status(did) in OPEN and store.mark_delivery(
                did, DeliveryStatus.SKIPPED, expect=OPEN, error="no longer active"
            ):
                report.skipped += 1
                progress.advance(DeliveryStatus.SKIPPED)
            return  # else another worker has the row
        sending = (DeliveryStatus.SENDING,)
        try:
            await transport.send(message)
        except TemporaryFailure as exc:
            attempts = claim.attempts + 1
            if attempts >= settings.smtp_max_attempts:
                report.failed += 1
                finish(DeliveryStatus.FAILED, expect=sending, error=str(exc), count_attempt=True)
            else:
                wait = _backoff(attempts, retry_delay, retry_max_delay)
                store.mark_delivery(
                    did, DeliveryStatus.DEFERRED, expect=sending, error=str(exc),
                    count_attempt=True, next_attempt_at=utcnow() + timedelta(seconds=wait),
                )  # fmt: skip
            event(log, "send.deferred", subscriber=sub.id, attempt=attempts, error=str(exc))
        except PermanentFailure as exc:
            report.failed += 1
            finish(DeliveryStatus.FAILED, expect=sending, error=str(exc), count_attempt=True)
            if exc.suppress:
                report.suppressed += 1
                store.set_subscriber_status(sub.id, SubscriberStatus.BOUNCED)  # type: ignore[arg-type]
            event(log, "send.failed", subscriber=sub.id, error=str(exc), suppressed=exc.suppress)
        except ConnectionFailure as exc:
            # Nothing reached the server: the row goes back to the queue for the next run.
            store.mark_delivery(did, DeliveryStatus.QUEUED, expect=sending, error=str(exc))
            state["failures"] += 1
            event(log, "send.connection_failed", error=str(exc), level=logging.WARNING)
            if state["failures"] >= pause_after:
                await pause(
                    f"{state['failures']} connection failures in a row, last: {exc}. "
                    "Fix the SMTP settings or server, then run `digest send` again"
                )
            else:
                await sleep(failure_pause * state["failures"])
            return
        except UnknownOutcome as exc:
            report.unknown += 1
            finish(DeliveryStatus.UNKNOWN, expect=sending, error=str(exc))
            event(log, "send.unknown", subscriber=sub.id, error=str(exc), level=logging.WARNING)
        except Exception as exc:  # a bug in a transport: we cannot know what the server got
            report.unknown += 1
            finish(DeliveryStatus.UNKNOWN, expect=sending, error=f"{type(exc).__name__}: {exc}")
            log.exception("send.transport_error")
        else:
            report.sent += 1
            ledger.sent(did, message.headers.get("Message-ID"))
            progress.advance(DeliveryStatus.SENT)
        state["failures"] = 0

    async def sender() -> None:
        while True:
            claim = await work.get()
            try:
                if claim is None:
                    return
                if not report.paused:
                    await send_one(claim)
            finally:
                work.task_done()

    ledger = store.send_ledger()
    senders = [asyncio.create_task(sender()) for _ in range(concurrency)]
    try:
        while not report.paused:
            claims = store.claim_deliveries(
                eid, holder, batch_size, ignore_claims=not worker, claim_ttl_seconds=CLAIM_TTL
            )
            if not claims:
                waiting, _, earliest = store.open_deliveries(eid)
                if waiting == 0:
                    break
                # Deferred rows not yet due, or rows other workers hold: wait and look again.
                delay = 1.0
                if earliest is not None:
                    delay = max(0.01, min(30.0, (earliest - utcnow()).total_seconds()))
                await sleep(delay)
                continue
            for claim in claims:
                work.put_nowait(claim)
            # The whole batch is finished before the next claim, so no row is in flight twice.
            await _finished(work, senders)
    finally:
        for task in senders:
            if not task.done():
                work.put_nowait(None)
        results = await asyncio.gather(*senders, return_exceptions=True)
        ledger.close()
        store.release_claims(eid, holder)
    for result in results:
        if isinstance(result, BaseException):
            raise result

    waiting, sending, _ = store.open_deliveries(eid)
    # Other workers' last messages: wait for them so one of us can mark the edition sent.
    deadline = time.monotonic() + transport.message_timeout
    while worker and not report.paused and waiting == 0 and sending:
        if time.monotonic() > deadline:
            break
        await sleep(0.2)
        waiting, sending, _ = store.open_deliveries(eid)
    report.contents = contents.renders
    report.ledger = store.delivery_counts(eid)
    report.deferred = report.ledger.get(str(DeliveryStatus.DEFERRED), 0)
    if waiting == 0 and sending == 0:
        store.set_edition_status(eid, EditionStatus.SENT)
    event(log, "send.finished", edition=edition.key, sent=report.sent, failed=report.failed,
          unknown=report.unknown, deferred=report.deferred, paused=bool(report.paused))  # fmt: skip
    progress.finish(report)
    return report


async def _finished(work: asyncio.Queue, senders: list[asyncio.Task]) -> None:
    """Wait until every queued item is done; re-raise at once if a sender died of an error."""
    joined = asyncio.create_task(work.join())
    done, _ = await asyncio.wait([joined, *senders], return_when=asyncio.FIRST_COMPLETED)
    if joined not in done:
        joined.cancel()
        for task in done:
            task.result()
        raise RuntimeError("a sender stopped early")


def _dry_run(
    store: Store, edition: Edition, contents: Contents, report: DeliveryReport
) -> DeliveryReport:
    """Count who would get the edition and render each distinct content once; send nothing."""
    done = {DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.UNKNOWN,
            DeliveryStatus.SKIPPED, DeliveryStatus.SENDING}  # fmt: skip
    # Per content key: does it make an email? One real message per key catches template
    # errors; an empty selection (skipped) must not be counted for any subscriber sharing it.
    sends: dict[Hashable, bool] = {}
    for batch in _batched(store.iter_active_subscribers(edition.frequency), 1000):
        states = store.delivery_states(edition.id, [s.id for s in batch])  # type: ignore[arg-type]
        for sub in batch:
            if states.get(sub.id) in done:
                continue
            key = contents.key(sub)
            if key not in sends:
                sends[key] = contents.message(sub) is not None
            report.would_send += sends[key]
    report.contents = contents.renders
    report.ledger = store.delivery_counts(edition.id)
    return report


def send_edition(
    store: Store,
    edition: Edition,
    settings: Settings,
    *,
    transport: Transport | None = None,
    stopping: threading.Event | None = None,
    **kwargs: Any,
) -> DeliveryReport:
    """Blocking wrapper of ``deliver``: makes the configured transport and closes it after.

    ``stopping`` is the made transport's stop hook: once set, no new message starts.
    """

    async def main() -> DeliveryReport:
        tx = transport or make_transport(settings, edition_key=edition.key, stopping=stopping)
        try:
            return await deliver(store, edition, settings, transport=tx, **kwargs)
        finally:
            if transport is None:
                await tx.aclose()

    return asyncio.run(main())
