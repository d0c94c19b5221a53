"""The ledger-driven send loop: each (edition, subscriber) at most once, through every fault.

A row moves queued -> sending -> sent | deferred | failed | unknown. ``sending`` is committed
(together with a re-check that the subscriber is still active) right before the message is
handed to the transport, so a crash leaves ``sending`` rows that the next run turns into
``unknown`` and never resends on its own -- the listmonk lesson: a cursor is not a ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from itertools import islice
from typing import Any, Protocol

from digest.config import EmptyEdition, Settings
from digest.errors import DigestError
from digest.logs import event
from digest.models import DeliveryStatus, Edition, EditionStatus, Message, SubscriberStatus
from digest.store import Store, utcnow
from digest.store.deliveries import Claim
from digest.transports import (
    EDITION_HEADER,
    ConnectionFailure,
    PermanentFailure,
    TemporaryFailure,
    Transport,
    UnknownOutcome,
    make_transport,
)

__all__ = ["DeliveryReport", "Progress", "RateLimiter", "deliver", "send_edition"]

log = logging.getLogger(__name__)

LEASE = "send"
LEASE_TTL = timedelta(minutes=2)
# A worker's claim on a batch it has not finished; after this another worker may take the rows
# (harmless if the first is merely slow: the move to `sending` is a compare-and-set).
CLAIM_TTL = 120.0
OPEN = (DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED)


@dataclass
class DeliveryReport:
    """What one send did: counts of this run, the ledger after it, and why it paused if it did."""

    edition_key: str
    sent: int = 0
    deferred: int = 0  # rows still waiting for a retry when the run ended
    failed: int = 0
    unknown: int = 0  # outcomes this run could not know, plus crashed runs' rows it found
    skipped: int = 0  # unsubscribed mid-send, or nothing for their topics
    suppressed: int = 0  # addresses the server called bad (5.1.x), now bounced
    retried_unknown: int = 0
    contents: int = 0  # distinct renders (per selection, not per subscriber)
    paused: str | None = None
    dry_run: bool = False
    would_send: int = 0
    ledger: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """False when anything failed, is unknown, or the run paused."""
        return not (self.failed or self.unknown or self.paused)

    def summary(self) -> str:
        """One line for people: what happened to this edition."""
        if self.dry_run:
            return (
                f"dry run of {self.edition_key}: would send {self.would_send} emails "
                f"({self.contents} distinct contents); nothing was sent"
            )
        line = (
            f"{self.edition_key}: sent {self.sent}, deferred {self.deferred}, "
            f"failed {self.failed}, unknown {self.unknown}"
        )
        if self.skipped:
            line += f", skipped {self.skipped}"
        if self.suppressed:
            line += f" ({self.suppressed} bad addresses suppressed)"
        if self.paused:
            line += f"; PAUSED: {self.paused}"
        return line


class Progress(Protocol):
    """Where the loop reports as it goes (a rich bar, periodic log lines, or nothing)."""

    def start(self, total: int) -> None: ...
    def advance(self, status: DeliveryStatus) -> None: ...
    def finish(self, report: DeliveryReport) -> None: ...


class _NoProgress:
    def start(self, total: int) -> None:
        pass

    def advance(self, status: DeliveryStatus) -> None:
        pass

    def finish(self, report: DeliveryReport) -> None:
        pass


class RateLimiter:
    """At most ``per_second`` messages a second and ``per_hour`` in any sliding 60 minutes."""

    def __init__(
        self,
        per_second: float = 0,
        per_hour: int = 0,
        *,
        history: Iterable[float] = (),
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.interval = 1.0 / per_second if per_second else 0.0
        self.per_hour = per_hour
        self._clock, self._sleep = clock, sleep
        self._next = 0.0
        self._window: deque[float] = deque(history, maxlen=per_hour or None)
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait until one more message may go."""
        if not self.interval and not self.per_hour:
            return
        async with self._lock:
            now = self._clock()
            if self.per_hour and len(self._window) >= self.per_hour:
                wait = self._window[0] + 3600 - now
                if wait > 0:
                    event(log, "send.hourly_limit", wait_seconds=round(wait))
                    await self._sleep(wait)
                    now = self._clock()
            if self.interval:
                wait = self._next - now
                if wait > 0:
                    await self._sleep(wait)
                    now = self._clock()
                self._next = max(now, self._next) + self.interval
            if self.per_hour:
                self._window.append(now)


class _Contents:
    """Renders once per distinct selection; a small LRU keeps memory flat at any list size."""

    def __init__(
        self, edition: Edition, settings: Settings, renderer: Any, taxonomy: Any, size: int = 256
    ) -> None:
        from digest import rank

        self._rank = rank
        self.edition, self.settings = edition, settings
        self.renderer, self.taxonomy = renderer, taxonomy
        # Selections must not depend on when (or by which worker) the row is sent.
        self.now = edition.created_at or datetime.combine(edition.date, dtime(), tzinfo=UTC)
        self._cache: OrderedDict[Hashable, Any] = OrderedDict()
        self._size = size
        self.renders = 0

    def message(self, subscriber: Any) -> Message | None:
        """The subscriber's email, or None when their selection is empty and empties are skipped."""
        key = self._rank.selection_key(subscriber)
        if key in self._cache:
            self._cache.move_to_end(key)
            prepared = self._cache[key]
        else:
            selection = self._rank.select(
                self.edition,
                subscriber,
                taxonomy=self.taxonomy,
                default_max=self.settings.max_papers,
                now=self.now,
            )
            prepared = None
            if selection.count or self.settings.empty_edition is EmptyEdition.SEND:
                prepared = self.renderer.prepare_digest(self.edition, selection)
                self.renders += 1
            self._cache[key] = prepared
            if len(self._cache) > self._size:
                self._cache.popitem(last=False)
        if prepared is None:
            return None
        message = prepared.for_subscriber(subscriber)
        if EDITION_HEADER not in message.headers:
            headers = {**message.headers, EDITION_HEADER: self.edition.key}
            message = dataclasses.replace(message, headers=headers)
        return message


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
    renderer, taxonomy = _defaults(settings, renderer, taxonomy)
    contents = _Contents(edition, settings, renderer, taxonomy)
    report = DeliveryReport(edition_key=edition.key, dry_run=dry_run)
    if dry_run:
        return _dry_run(store, edition, contents, report)
    if worker and store.dialect != "postgresql":
        raise DigestError(
            "--worker needs PostgreSQL (DIGEST_DATABASE_URL=postgresql+psycopg://...)"
        )
    progress = progress or _NoProgress()
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    if not worker and not _take_lease(store, holder):
        raise DigestError(
            "another `digest send` is running against this database; wait for it to finish "
            f"(its lease expires within {int(LEASE_TTL.total_seconds())} s if it crashed)"
        )
    lease_task = None if worker else asyncio.create_task(_renew_lease(store, holder))
    try:
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
    finally:
        if lease_task is not None:
            lease_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lease_task
            store.release_lease(LEASE, holder)


def _take_lease(store: Store, holder: str) -> bool:
    """Take the send lease; also from a sender on this machine that died (e.g. SIGKILL)."""
    if store.acquire_lease(LEASE, holder, LEASE_TTL):
        return True
    other = store.lease_holder(LEASE) or ""
    host, _, rest = other.partition(":")
    pid = rest.partition(":")[0]
    if host == socket.gethostname() and pid.isdigit() and not _alive(int(pid)):
        event(log, "send.lease_taken_over", dead_pid=int(pid), level=logging.WARNING)
        store.release_lease(LEASE, other)
        return store.acquire_lease(LEASE, holder, LEASE_TTL)
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


async def _renew_lease(store: Store, holder: str) -> None:
    while True:
        await asyncio.sleep(LEASE_TTL.total_seconds() / 4)
        store.acquire_lease(LEASE, holder, LEASE_TTL)


def _stale_after(settings: Settings, transport: Transport) -> timedelta:
    """How old a ``sending`` row must be before a worker may call it crashed."""
    per_message = getattr(transport, "message_timeout", settings.smtp_timeout * 4)
    return timedelta(seconds=2 * per_message + 60)


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
    contents: _Contents,
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

    since = utcnow() - timedelta(hours=1)
    history: list[float] = []
    if settings.smtp_hourly_limit:
        mono, wall = time.monotonic(), utcnow()
        history = [
            mono - (wall - t).total_seconds()
            for t in store.sent_times_since(since, settings.smtp_hourly_limit)
        ]
    limiter = RateLimiter(settings.smtp_rate, settings.smtp_hourly_limit, history=history)
    concurrency = max(1, int(getattr(transport, "concurrency", 1)))
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
    deadline = time.monotonic() + getattr(transport, "message_timeout", settings.smtp_timeout)
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
    store: Store, edition: Edition, contents: _Contents, report: DeliveryReport
) -> DeliveryReport:
    """Count who would get the edition and render each distinct content once; send nothing."""
    done = {DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.UNKNOWN,
            DeliveryStatus.SKIPPED, DeliveryStatus.SENDING}  # fmt: skip
    seen: set[Hashable] = set()
    for batch in _batched(store.iter_active_subscribers(edition.frequency), 1000):
        states = store.delivery_states(edition.id, [s.id for s in batch])  # type: ignore[arg-type]
        for sub in batch:
            if states.get(sub.id) in done:
                continue
            key = contents._rank.selection_key(sub)
            if key not in seen:  # build one real message per content to catch template errors
                seen.add(key)
                if contents.message(sub) is None:
                    continue
            report.would_send += 1
    report.contents = contents.renders
    report.ledger = store.delivery_counts(edition.id)
    return report


def _defaults(settings: Settings, renderer: Any, taxonomy: Any) -> tuple[Any, Any]:
    if renderer is None:
        from digest.render import Renderer

        renderer = Renderer(settings)
    if taxonomy is None:
        from digest.taxonomy import load_taxonomy

        taxonomy = load_taxonomy(settings.taxonomy_file)
    return renderer, taxonomy


def send_edition(
    store: Store,
    edition: Edition,
    settings: Settings,
    *,
    transport: Transport | None = None,
    **kwargs: Any,
) -> DeliveryReport:
    """Blocking wrapper of ``deliver``: makes the configured transport and closes it after."""

    async def main() -> DeliveryReport:
        tx = transport or make_transport(settings, edition_key=edition.key)
        try:
            return await deliver(store, edition, settings, transport=tx, **kwargs)
        finally:
            if transport is None:
                await tx.aclose()

    return asyncio.run(main())
