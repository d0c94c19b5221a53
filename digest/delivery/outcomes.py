"""What a send run records for each row it does not send, or whose send failed.

Skipped, failed, deferred with backoff, unknown, or back in the queue after a connection
failure; enough connection failures in a row pause the run (``report.paused``).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from digest.delivery.contents import NOTHING_FOR_THEM
from digest.delivery.failures import failure_of
from digest.delivery.report import DeliveryReport, Progress
from digest.delivery.transports import (
    ConnectionFailure,
    PermanentFailure,
    TemporaryFailure,
    TransportError,
)
from digest.errors import DigestError
from digest.logs import event
from digest.models import DeliveryStatus, FailureKind, SubscriberStatus
from digest.store import Store, utcnow
from digest.store.deliveries import Claim

if TYPE_CHECKING:
    from digest.config import Settings
    from digest.delivery.options import SendOptions

__all__ = ["OPEN", "SENDING", "Outcomes"]

log = logging.getLogger("digest.delivery.run")  # the send run's events, as before the split
OPEN = (DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED)
SENDING = (DeliveryStatus.SENDING,)


def _backoff(attempts: int, base: float, cap: float) -> float:
    """Capped exponential backoff: base, 2*base, 4*base ... never more than cap."""
    return min(cap, base * 2 ** max(0, attempts - 1))


class Outcomes:
    """The ledger moves and report counts of rows that are not simply sent."""

    def __init__(
        self,
        store: Store,
        report: DeliveryReport,
        progress: Progress,
        settings: Settings,
        options: SendOptions,
        edition_key: str,
    ) -> None:
        self.store, self.report, self.progress = store, report, progress
        self.settings, self.options, self.edition_key = settings, options, edition_key
        self.failures = 0  # connection failures in a row

    def finish_row(self, delivery_id: int, status: DeliveryStatus, **fields: Any) -> None:
        """Move a row to ``status`` and count it on the progress display."""
        self.store.mark_delivery(delivery_id, status, **fields)
        self.progress.advance(status)

    def skip(self, delivery_id: int, error: str) -> None:
        """Mark an open row skipped (if it still is open) and count it."""
        if self.store.mark_delivery(delivery_id, DeliveryStatus.SKIPPED, expect=OPEN, error=error):
            self.report.skipped += 1
            self.progress.advance(DeliveryStatus.SKIPPED)

    def unbuilt(
        self, claim: Claim, why: DigestError | None, expect: tuple[DeliveryStatus, ...]
    ) -> None:
        """Record a row whose email is empty (``why`` None: skipped) or cannot render (failed)."""
        if why is None:
            self.report.skipped += 1
            self.finish_row(claim.delivery_id, DeliveryStatus.SKIPPED, expect=expect,
                             error=NOTHING_FOR_THEM)  # fmt: skip
            return
        self.report.failed += 1
        self.finish_row(claim.delivery_id, DeliveryStatus.FAILED, expect=expect,
                         error=f"render: {why}", count_attempt=True,
                         failure=(FailureKind.RENDER, None))  # fmt: skip
        event(log, "send.render_failed", subscriber=claim.subscriber.id, error=str(why),
              level=logging.ERROR)  # fmt: skip

    async def record_failure(self, claim: Claim, exc: TransportError) -> bool:
        """Put a failed send in the ledger; False when the row went back to the queue."""
        sub, did, report = claim.subscriber, claim.delivery_id, self.report
        if isinstance(exc, TemporaryFailure):
            attempts = claim.attempts + 1
            if attempts >= self.settings.smtp_max_attempts:
                report.failed += 1
                self.finish_row(did, DeliveryStatus.FAILED, expect=SENDING, error=str(exc),
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
            self.finish_row(did, DeliveryStatus.FAILED, expect=SENDING, error=str(exc),
                             count_attempt=True, failure=failure_of(exc))  # fmt: skip
            if exc.suppress:
                report.suppressed += 1
                self.store.set_subscriber_status(sub.id, SubscriberStatus.BOUNCED)  # type: ignore[arg-type]
            event(log, "send.failed", subscriber=sub.id, error=str(exc), suppressed=exc.suppress)
        elif isinstance(exc, ConnectionFailure):
            await self.connection_failed(did, exc)
            return False
        else:  # UnknownOutcome: the server may have the message
            report.unknown += 1
            self.finish_row(did, DeliveryStatus.UNKNOWN, expect=SENDING, error=str(exc))
            event(log, "send.unknown", subscriber=sub.id, error=str(exc), level=logging.WARNING)
        return True

    async def connection_failed(self, delivery_id: int, exc: ConnectionFailure) -> None:
        """Nothing reached the server: requeue the row; pause after ``pause_after`` in a row."""
        self.store.mark_delivery(delivery_id, DeliveryStatus.QUEUED, expect=SENDING, error=str(exc))
        self.failures += 1
        event(log, "send.connection_failed", error=str(exc), level=logging.WARNING)
        if self.failures >= self.options.pause_after:
            self.pause(
                f"{self.failures} connection failures in a row, last: {exc}. "
                "Fix the SMTP settings or server, then run `digest send` again"
            )
        else:
            await self.options.sleep(self.options.failure_pause * self.failures)

    def pause(self, reason: str) -> None:
        """Stop taking new rows; the first reason is the one reported."""
        if self.report.paused is None:
            self.report.paused = reason
            event(log, "send.paused", edition=self.edition_key, reason=reason, level=logging.ERROR)
