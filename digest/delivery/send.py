"""Sending an edition: ``deliver`` (async) and ``send_edition`` (blocking), and the dry run.

The run itself, row by row through the ledger, is digest.delivery.run.SendRun.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Iterable, Iterator
from itertools import islice
from typing import Any, TypeVar

from digest.config import Settings
from digest.delivery.contents import Contents
from digest.delivery.heap import steady_heap
from digest.delivery.lease import send_lease
from digest.delivery.recovery import unresolved_unknown
from digest.delivery.report import DeliveryReport, NoProgress, Progress, handed_over
from digest.delivery.run import SendOptions, SendRun
from digest.delivery.transports import Transport, make_transport
from digest.errors import DigestError
from digest.mail.render import Renderer
from digest.models import DeliveryStatus, Edition, Message
from digest.store import Store, new_holder
from digest.themes.taxonomy import Taxonomy

__all__ = ["deliver", "run_loop", "send_edition", "send_message"]

_T = TypeVar("_T")


def run_loop(main: Coroutine[Any, Any, _T]) -> _T:
    """``asyncio.run(main)`` on uvloop where it is installed (not on Windows).

    A send's event loop is its busiest part: every SMTP reply, write and timer goes through
    it while it also builds the emails. uvloop's loop (libuv, in C) took 10-12% less CPU
    per email than asyncio's own (`digest send` to a loopback sink, on SQLite and on
    PostgreSQL), CPU the machine shares with the SMTP server or the database.
    """
    try:
        import uvloop
    except ImportError:  # Windows, or a build without it: asyncio's own loop is correct too
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


async def deliver(
    store: Store,
    edition: Edition,
    settings: Settings,
    *,
    transport: Transport,
    renderer: Renderer | None = None,
    taxonomy: Taxonomy | None = None,
    worker: bool = False,
    retry_unknown: bool = False,
    retry_failed: bool = False,
    accept_unknown: bool = False,
    holder: str | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    retry_delay: float | None = None,
    retry_max_delay: float | None = None,
    pause_after: int = 3,
    failure_pause: float = 0.5,
    batch_size: int = 1000,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    audience: Callable[[Store, Edition], int] | None = None,
) -> DeliveryReport:
    """Send ``edition`` to every active subscriber who has not had it; returns what happened.

    ``audience`` queues the rows of only the subscribers it picks (the due ones, at their
    own hours) and returns how many; rows queued earlier are sent either way.
    ``worker=True`` (PostgreSQL) shares the edition with other workers by claiming batches;
    otherwise a lease in the database keeps a second sender out. A dry run also takes an
    edition not stored yet (what `digest send` would build), which has no ledger rows.
    ``holder`` names this run in the ledger and runs table (default: new), kept alive meanwhile.
    ``report.unresolved`` names any delivery, of any edition, whose outcome is unknown after.
    """
    size = max(256, batch_size)  # a claimed batch's selections, from follow-ups to emails
    contents = Contents(edition, settings, renderer, taxonomy, size, store.get_papers, store)
    report = DeliveryReport(edition_key=edition.key, dry_run=dry_run, outbox=transport.outbox)
    if dry_run:
        return _dry_run(store, edition, contents, report)
    _refuse_impossible(store, edition, worker=worker, both=retry_unknown and accept_unknown)
    options = SendOptions(
        worker=worker, retry_unknown=retry_unknown, retry_failed=retry_failed,
        accept_unknown=accept_unknown,
        retry_delay=settings.smtp_retry_delay if retry_delay is None else retry_delay,
        retry_max_delay=(
            settings.smtp_retry_max_delay if retry_max_delay is None else retry_max_delay
        ),
        pause_after=pause_after, failure_pause=failure_pause, batch_size=batch_size, sleep=sleep,
        audience=audience,
    )  # fmt: skip
    holder = holder or new_holder()
    run = SendRun(
        store, edition, settings, transport, contents, report, progress or NoProgress(), options,
        holder,
    )  # fmt: skip
    with store.alive(holder):
        # Workers share the edition through claims; a lone sender keeps others out with the lease.
        async with contextlib.nullcontext() if worker else send_lease(store, holder):
            await run.run()
    report.unresolved = unresolved_unknown(store)
    return report


def _batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """``items`` in lists of ``size`` (the last may be shorter)."""
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


def _refuse_impossible(store: Store, edition: Edition, *, worker: bool, both: bool) -> None:
    """Stop before anything is sent when the options cannot work together."""
    if edition.id is None:
        raise ValueError("deliver() needs a stored edition (with an id)")
    if worker and store.dialect != "postgresql":
        raise DigestError(
            "--worker needs PostgreSQL (DIGEST_DATABASE_URL=postgresql+psycopg://...)"
        )
    if both:
        raise DigestError("--retry-unknown and --accept-unknown exclude each other; pick one")


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
        states = (
            store.delivery_states(edition.id, [s.id for s in batch])  # type: ignore[arg-type]
            if edition.id is not None
            else {}
        )
        contents.prepare(batch)
        for sub in batch:
            if states.get(sub.id) in done:
                continue
            key = contents.key(sub)
            if key not in sends:
                sends[key] = contents.message(sub) is not None
            report.would_send += sends[key]
    report.contents = contents.renders
    report.ledger = store.delivery_counts(edition.id) if edition.id is not None else {}
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

    with steady_heap():
        return run_loop(main())


def send_message(settings: Settings, message: Message, *, folder: str = "messages") -> str:
    """Send one message outside any edition (a test copy): the configured transport, no ledger.

    ``folder`` names the file transport's subfolder. Returns how it left ("sent", or "written
    to ./outbox"); raises a TransportError when it fails.
    """

    async def main() -> str:
        transport = make_transport(settings, edition_key=folder)
        try:
            await transport.send(message)
        finally:
            await transport.aclose()
        return handed_over(transport.outbox)

    return run_loop(main())
