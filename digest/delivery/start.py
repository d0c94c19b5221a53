"""Before a send run's first message: crashed rows reported, unknowns resolved as asked, and
every active subscriber of the edition queued."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from digest.delivery.options import SendOptions
from digest.delivery.recovery import recover_crashed
from digest.delivery.report import DeliveryReport, Progress
from digest.delivery.transports import Transport
from digest.logs import event
from digest.models import Edition, EditionStatus
from digest.store import Store, utcnow

__all__ = ["start_run"]

log = logging.getLogger("digest.delivery.run")  # the send run's events, as before the split


def _stale_after(transport: Transport) -> timedelta:
    """How old a ``sending`` row of no recorded holder must be before it counts as crashed."""
    return timedelta(seconds=2 * transport.message_timeout + 60)


def _queue(store: Store, edition: Edition, audience: Callable | None = None) -> int:
    """A queued row for every active subscriber of the edition's frequency.

    With ``audience`` (see SendOptions) only for the subscribers it picks.
    """
    if audience is not None:
        return audience(store, edition)
    return store.queue_active(edition.id, edition.frequency)  # type: ignore[arg-type]


def start_run(
    store: Store,
    edition: Edition,
    transport: Transport,
    holder: str,
    options: SendOptions,
    report: DeliveryReport,
    progress: Progress,
) -> None:
    """Mark dead runs' rows unknown, queue the new subscribers, start the progress display."""
    eid: int = edition.id  # type: ignore[assignment]
    unowned_before = utcnow() - _stale_after(transport)
    report.unknown += recover_crashed(store, holder, unowned_before=unowned_before).get(eid, 0)
    if report.unknown:
        event(log, "send.crashed_rows_unknown", edition=edition.key, rows=report.unknown,
              level=logging.WARNING)  # fmt: skip
    if options.retry_unknown:
        report.retried_unknown = store.requeue_unknown(eid)
        report.unknown = 0
    elif options.accept_unknown:
        report.accepted_unknown = store.accept_unknown(eid)
        report.unknown = 0
    if options.retry_failed:
        report.retried_failed = store.requeue_failed(eid)
    queued = _queue(store, edition, options.audience)
    store.set_edition_status(eid, EditionStatus.SENDING)
    waiting, _, _ = store.open_deliveries(eid)
    event(log, "send.start", edition=edition.key, queued_new=queued, waiting=waiting)
    progress.start(waiting)
