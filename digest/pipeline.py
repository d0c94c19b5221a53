"""The whole job as one idempotent run: collect -> build the edition -> deliver.

Idempotent by construction: an edition's key names its schedule and period
(``daily-2026-11-26``, ``weekly-2026-W48``) and is UNIQUE in the store, and the delivery
ledger has one row per (edition, subscriber); running twice in a period sends nothing new.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING

from digest.config import EmptyEdition, Settings
from digest.errors import DigestError
from digest.logs import event
from digest.models import Edition, Frequency
from digest.periods import edition_key, local_day, local_today
from digest.sources import Skipped, Source
from digest.store import AlreadyExists, Store, utcnow
from digest.themes import rank
from digest.themes.embeddings import load_embedder

if TYPE_CHECKING:  # delivery loads rendering and SMTP: only a run that sends imports it
    from digest.delivery.report import DeliveryReport
    from digest.delivery.transports import Transport

__all__ = [
    "CollectReport",
    "RunReport",
    "SourceReport",
    "build_edition",
    "collect",
    "describe",
    "lock_name",
    "run",
    "run_scheduled",
]

log = logging.getLogger(__name__)


@dataclass
class SourceReport:
    """What collecting from one source did."""

    name: str
    fetched: int = 0
    new: int = 0
    merged: int = 0
    unchanged: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    requests: int = 0
    error: str | None = None


@dataclass
class CollectReport:
    """What collecting from every configured source did."""

    sources: list[SourceReport] = field(default_factory=list)

    @property
    def new(self) -> int:
        """Papers seen for the first time in this collect."""
        return sum(s.new for s in self.sources)

    @property
    def failed(self) -> list[SourceReport]:
        """Sources that could not be read at all."""
        return [s for s in self.sources if s.error]


def collect(store: Store, sources: Iterable[Source], day: date | None = None) -> CollectReport:
    """Fetch from each source and store what it returns; one failing source spares the others."""
    report = CollectReport()
    for source in sources:
        entry = SourceReport(name=source.name)
        report.sources.append(entry)
        try:
            result = source.fetch(day)
        except DigestError as exc:
            # Reported to the user through the CollectReport; the log only records it.
            entry.error = str(exc)
            event(log, "collect.failed", source=source.name, error=str(exc))
            continue
        except Exception as exc:  # a bug in one source must not stop the others
            entry.error = f"{source.name}: unexpected {type(exc).__name__}: {exc}"
            log.exception("collect.crashed", extra={"source": source.name})
            continue
        entry.fetched = len(result.papers) + len(result.skipped)
        entry.skipped = list(result.skipped)
        entry.notes, entry.requests = list(result.notes), result.requests
        stored = store.upsert_papers(result.papers)
        entry.new, entry.merged = len(stored.new), len(stored.merged)
        entry.unchanged = len(stored.unchanged)
        event(log, "collect.done", source=source.name, fetched=entry.fetched, new=entry.new,
              merged=entry.merged, skipped=len(entry.skipped))  # fmt: skip
    return report


def build_edition(
    store: Store,
    settings: Settings,
    frequency: Frequency,
    today: date,
    *,
    now: datetime | None = None,
) -> tuple[Edition | None, str]:
    """Return the edition for ``today`` (building it from newly listed papers if needed).

    Returns ``(edition, reason)``: the edition is None when there was nothing new and
    DIGEST_EMPTY_EDITION=skip, and ``reason`` says in words why.
    """
    key = edition_key(frequency, today)
    existing = store.get_edition(key)
    if existing is not None:
        return existing, f"edition {key} already exists"
    now = now or utcnow()
    previous = store.latest_edition(frequency)
    since = previous.created_at if previous else None
    papers = store.unpublished_papers(frequency, since=since)
    if not papers:
        after = f"since edition {previous.key}" if previous else "in the store"
        reason = f"nothing new {after}: no papers were listed (weekend, holiday or a source outage)"
        if settings.empty_edition is EmptyEdition.SKIP:
            return None, reason + "; DIGEST_EMPTY_EDITION=skip, so no edition"
    else:
        reason = f"built edition {key} from {len(papers)} new papers"
    grouped = []
    if papers:
        # scikit-learn loads in ~1 s: only building an edition needs it
        from digest.themes import grouping as themes

        embed = load_embedder() if settings.themes_embeddings else None
        grouped = rank.order_themes(themes.group(papers, embed=embed), now)
    edition = Edition(key=key, frequency=frequency, date=today, themes=tuple(grouped))
    try:
        return store.save_edition(edition), reason
    except AlreadyExists:
        # Another process built it between our check and our insert: use theirs.
        return store.get_edition(key), f"edition {key} already exists"


@dataclass
class RunReport:
    """What one run of the whole job did."""

    collect: CollectReport
    edition: Edition | None
    reason: str
    delivery: DeliveryReport | None = None
    # One line naming deliveries (of any edition) whose outcome is still unknown, if any.
    unresolved: str | None = None

    @property
    def ok(self) -> bool:
        """True unless a delivery failed, every source failed, or unknown outcomes are left."""
        if self.collect.sources and len(self.collect.failed) == len(self.collect.sources):
            return False
        if self.unresolved:
            return False
        return self.delivery.ok if self.delivery else True


def run(
    settings: Settings,
    store: Store,
    *,
    frequency: Frequency = Frequency.DAILY,
    today: date | None = None,
    sources: Iterable[Source] | None = None,
    transport: Transport | None = None,
    stopping: threading.Event | None = None,
    holder: str | None = None,
) -> RunReport:
    """Collect from the configured sources, build the edition of ``today``, deliver it.

    ``stopping`` is the stop hook of the transport made for the delivery (set on SIGTERM);
    ``holder`` names the run in the ledger (see digest.delivery.deliver).
    """
    from digest import delivery
    from digest.delivery.recovery import unresolved_unknown
    from digest.sources import make_source

    today = today or local_today(settings)
    if sources is None:
        sources = [make_source(name, settings) for name in settings.sources]
    collected = collect(store, sources, today) if frequency is Frequency.DAILY else CollectReport()
    edition, reason = build_edition(store, settings, frequency, today)
    event(log, "edition.ready" if edition else "edition.none", frequency=str(frequency),
          edition=edition.key if edition else None, reason=reason)  # fmt: skip
    report = RunReport(collect=collected, edition=edition, reason=reason)
    if edition is not None:
        report.delivery = delivery.send_edition(
            store, edition, settings, transport=transport, stopping=stopping, holder=holder
        )
        report.unresolved = report.delivery.unresolved
    else:
        report.unresolved = unresolved_unknown(store)
    return report


def lock_name(frequency: Frequency, today: date) -> str:
    """The database lock of one edition: ``run:daily-2026-11-26`` or ``run:weekly-2026-W48``."""
    return f"run:{edition_key(frequency, today)}"


def run_scheduled(
    settings: Settings,
    store: Store,
    frequency: Frequency,
    fire_time: datetime,
    *,
    holder: str,
    stopping: threading.Event | None = None,
) -> RunReport | None:
    """Run the edition ``fire_time`` is for, unless another process holds its lock.

    Returns the pipeline's RunReport, or None when the run was skipped. ``today`` is the local
    date of the fire time (not of "now"), so a run that starts late still makes the right
    edition. Once ``stopping`` is set no new message starts: the run pauses, the rest stays
    queued for the next run.
    """
    today = local_day(settings, fire_time)
    name = lock_name(frequency, today)
    day = today.isoformat()
    with store.run_lock(name, holder) as taken:
        if not taken:
            event(log, "run.skipped", frequency=str(frequency), day=day,
                  reason="another scheduler holds the lock", lock=name)  # fmt: skip
            return None
        event(log, "run.start", frequency=str(frequency), day=day,
              fire_time=fire_time.isoformat())  # fmt: skip
        with store.alive(holder):  # others can tell at once if this process dies mid-run
            run_id = store.start_run("schedule", edition_key(frequency, today), holder)
            try:
                report = run(settings, store, frequency=frequency, today=today,
                             stopping=stopping, holder=holder)  # fmt: skip
            except Exception as exc:
                store.finish_run(run_id, "failed", f"{type(exc).__name__}: {exc}"[:500])
                raise
        outcome, detail = describe(report)
        if outcome == "paused" and stopping is not None and stopping.is_set():
            summary = report.delivery.summary() if report.delivery else ""
            detail = f"digest serve was stopping (SIGTERM); the rest stays queued; {summary}"
        store.finish_run(run_id, outcome, detail)
        event(log, "run.finished", frequency=str(frequency), day=day, outcome=outcome,
              detail=detail)  # fmt: skip
        return report


def describe(report: RunReport) -> tuple[str, str]:
    """A RunReport as the runs table's (outcome, one-line detail): ok, nothing, paused, failed."""
    if report.edition is None:
        if report.unresolved:
            return "failed", f"{report.unresolved}; {report.reason}"[:500]
        return ("nothing" if report.ok else "failed"), report.reason
    summary = report.delivery.summary() if report.delivery else ""
    detail = "; ".join(part for part in (report.reason, summary) if part)
    if report.delivery and report.delivery.paused:
        return "paused", f"{report.delivery.paused}; {detail}"[:500]
    if report.unresolved:
        return "failed", f"{report.unresolved}; {detail}"[:500]
    return ("ok" if report.ok else "failed"), detail[:500]
