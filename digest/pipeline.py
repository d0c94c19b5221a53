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
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from digest.config import Settings
from digest.editions import build_edition, due_editions, may_send
from digest.errors import DigestError
from digest.logs import event
from digest.models import Edition, Frequency
from digest.periods import edition_key, local_day, local_today
from digest.sources import Skipped, Source
from digest.store import HourGroup, Store, utcnow
from digest.tokens import LINK_KEY_META, key_fingerprint

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
    "prepare",
    "refresh",
    "remember_link_key",
    "run",
    "run_scheduled",
    "send_due",
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


def refresh(
    store: Store,
    settings: Settings,
    today: date,
    *,
    names: Iterable[str] | None = None,
    client: object = None,
) -> SourceReport | None:
    """Bring the signals of papers recent emails showed up to date, for "since you last saw it".

    The papers of the editions sent in the last 30 days, from the hosts of the sources
    ``names`` (default DIGEST_SOURCES; see digest.sources.recent); None when there is
    nothing to ask. Merged, never new: no edition lists them again.
    """
    names = set(settings.sources if names is None else names)
    hf, arxiv = "hf" in names, "arxiv" in names
    if not (hf or arxiv):
        return None  # a papers file is refreshed by collecting a newer file
    # httpx and the HF and arXiv sources: only when there is something to ask them.
    from digest.sources.recent import RecentSignals
    from digest.themes.followups import FOLLOWUP_WINDOW

    watched = store.watched_papers(utcnow() - FOLLOWUP_WINDOW)
    if not watched:
        return None
    read = [today - timedelta(days=n) for n in range(settings.hf_lookback_days + 1)] if hf else []
    # arXiv versions for every watched paper, HF or arXiv-listed: both sources use the API.
    source = RecentSignals(settings, watched, hf=hf, arxiv=True, read_days=read, client=client)
    return collect(store, [source], today).sources[0]


@dataclass
class RunReport:
    """What one run of the whole job did."""

    collect: CollectReport
    edition: Edition | None
    reason: str
    delivery: DeliveryReport | None = None
    awaiting_approval: bool = False  # built, and stopped: DIGEST_APPROVAL=required
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


def prepare(
    settings: Settings,
    store: Store,
    *,
    frequency: Frequency = Frequency.DAILY,
    today: date | None = None,
    sources: Iterable[Source] | None = None,
    collect_first: bool = True,
) -> RunReport:
    """Collect (the daily edition's runs) and build the edition of ``today``; send nothing.

    `digest build` is this; `digest run` is this and then the delivery. The weekly edition
    gathers what the daily runs collected, so it does not collect again.
    """
    from digest.sources import make_source

    today = today or local_today(settings)
    collected = CollectReport()
    if collect_first and frequency is Frequency.DAILY:
        configured = sources is None
        if sources is None:
            known = store.ids_with_categories  # the arXiv details stored are not asked again
            sources = [make_source(name, settings, known=known) for name in settings.sources]
        collected = collect(store, sources, today)
        # followups: the configured sources' hosts refresh recently shown papers' signals.
        if configured and (refreshed := refresh(store, settings, today)) is not None:
            collected.sources.append(refreshed)
    edition, reason = build_edition(store, settings, frequency, today)
    event(log, "edition.ready" if edition else "edition.none", frequency=str(frequency),
          edition=edition.key if edition else None, reason=reason)  # fmt: skip
    return RunReport(collect=collected, edition=edition, reason=reason)


def remember_link_key(store: Store, settings: Settings) -> None:
    """Record which key signs the links of the emails about to go out (a fingerprint only)."""
    if not settings.secret_key:
        return  # nothing is signed without one (the renderer refuses to make links)
    fingerprint = key_fingerprint(settings.secret_key)
    if store.get_meta(LINK_KEY_META) != fingerprint:
        store.set_meta(LINK_KEY_META, fingerprint)


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
    due_at: datetime | None = None,
) -> RunReport:
    """Collect from the configured sources, build the edition of ``today``, deliver it.

    Without ``due_at`` it goes to every active subscriber of the frequency who has not had it
    (`digest demo`); with it, to those who chose no hour of their own (DIGEST_SCHEDULE is
    theirs) and those whose own hour has come by ``due_at`` and for whom it is the newest.
    With DIGEST_APPROVAL=required a draft is built and the run stops there until an admin
    approves it. ``stopping`` is the stop hook of the transport made for the delivery (set on
    SIGTERM); ``holder`` names the run in the ledger (see digest.delivery.deliver).
    ``report.unresolved`` names deliveries of any edition whose outcome is still unknown.
    """
    from digest import delivery
    from digest.delivery.recovery import unresolved_unknown

    report = prepare(settings, store, frequency=frequency, today=today, sources=sources)
    edition = report.edition
    if edition is not None and not may_send(edition, settings):
        report.awaiting_approval = True
        report.reason += (
            f"; it awaits approval (DIGEST_APPROVAL=required): look at it with "
            f"`digest preview --edition {edition.key}`, then `digest approve {edition.key}`"
        )
        event(log, "edition.awaiting_approval", edition=edition.key)
    if edition is None or report.awaiting_approval:
        report.unresolved = unresolved_unknown(store)
        return report
    remember_link_key(store, settings)
    audience = None
    if due_at is not None:
        groups = [HourGroup(None, None)] + [
            g
            for due in due_editions(store, settings, frequency, due_at)
            if due.edition.key == edition.key
            for g in due.groups
            if not g.default
        ]
        audience = _queue_groups(groups)
    report.delivery = delivery.send_edition(
        store, edition, settings, transport=transport, stopping=stopping, holder=holder,
        audience=audience,
    )  # fmt: skip
    report.unresolved = report.delivery.unresolved
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
                             stopping=stopping, holder=holder, due_at=fire_time)  # fmt: skip
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


def _queue_groups(groups: list[HourGroup]):
    """The audience (see digest.delivery.deliver) of these groups of subscribers."""

    def queue(store: Store, edition: Edition) -> int:
        return store.queue_groups(edition.id, edition.frequency, groups)  # type: ignore[arg-type]

    return queue


def send_due(
    settings: Settings,
    store: Store,
    now: datetime,
    *,
    holder: str,
    frequencies: Iterable[Frequency] = tuple(Frequency),
    stopping: threading.Event | None = None,
    transport: Transport | None = None,
) -> list[RunReport]:
    """Send each subscriber whose hour has come the newest edition released by then.

    What the daemon does every 15 minutes and `digest run` each time it is called: the
    ledger keeps it to one email per subscriber and edition however often it runs, and a
    run missed (the machine slept, the clock jumped) is made up by the next. Returns a
    report per edition that had someone due; None-free. Skips if another process sends them.
    """
    from digest import delivery

    reports: list[RunReport] = []
    with store.run_lock("run:hours", holder) as taken:
        if not taken:
            event(log, "hours.skipped", reason="another process sends the due subscribers")
            return reports
        for frequency in frequencies:
            for due in due_editions(store, settings, frequency, now):
                lacking = store.count_lacking(due.edition.id, frequency, due.groups)  # type: ignore[arg-type]
                if not lacking and not store.open_deliveries(due.edition.id)[0]:  # type: ignore[arg-type]
                    continue
                if stopping is not None and stopping.is_set():
                    return reports
                edition = store.get_edition(due.edition.key)
                report = RunReport(CollectReport(), edition, f"{lacking} due at their hour")
                with store.alive(holder):
                    run_id = store.start_run("hours", due.edition.key, holder)
                    remember_link_key(store, settings)
                    report.delivery = delivery.send_edition(
                        store, edition, settings, transport=transport, stopping=stopping,  # type: ignore[arg-type]
                        holder=holder, audience=_queue_groups(list(due.groups)),
                    )  # fmt: skip
                    report.unresolved = report.delivery.unresolved
                    store.finish_run(run_id, *describe(report))
                event(log, "hours.sent", edition=due.edition.key, due=lacking,
                      summary=report.delivery.summary())  # fmt: skip
                reports.append(report)
    return reports


def describe(report: RunReport) -> tuple[str, str]:
    """A RunReport as the runs table's (outcome, one-line detail).

    The outcomes: ok, nothing, waiting (for approval), paused, failed.
    """
    if report.edition is None:
        if report.unresolved:
            return "failed", f"{report.unresolved}; {report.reason}"[:500]
        return ("nothing" if report.ok else "failed"), report.reason
    if report.awaiting_approval:
        return ("waiting" if report.ok else "failed"), report.reason[:500]
    summary = report.delivery.summary() if report.delivery else ""
    detail = "; ".join(part for part in (report.reason, summary) if part)
    if report.delivery and report.delivery.paused:
        return "paused", f"{report.delivery.paused}; {detail}"[:500]
    if report.unresolved:
        return "failed", f"{report.unresolved}; {detail}"[:500]
    return ("ok" if report.ok else "failed"), detail[:500]
