"""The edition lifecycle every command shares: build, pick by one rule, approve.

An edition is built as a ``draft``; with DIGEST_APPROVAL=required an admin releases it
(``approved``) before it may go out; sending moves it to ``sending`` and ``sent``. `build`,
`preview`, `send --dry-run`, `send`, `approve` and the scheduled runs all find their edition
through ``pick_edition``, so what a preview or a dry run shows is what `send` sends, and a
subscriber is only ever shown or sent an edition of their own frequency.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from digest.config import Approval, EmptyEdition, Settings
from digest.errors import DigestError
from digest.models import Edition, EditionStatus, Frequency
from digest.periods import (
    edition_key,
    local_today,
    release_time,
    schedule_time,
    slot_after,
    slot_before,
    zone,
    zone_named,
)
from digest.store import AlreadyExists, HourGroup, Store, utcnow
from digest.themes import rank

__all__ = [
    "Due",
    "Picked",
    "approve_edition",
    "build_edition",
    "coming_hours",
    "compose_edition",
    "due_editions",
    "group_slot",
    "may_send",
    "pick_edition",
    "waiting_for_approval",
]


def compose_edition(
    store: Store,
    settings: Settings,
    frequency: Frequency,
    today: date,
    *,
    now: datetime | None = None,
) -> tuple[Edition | None, str]:
    """The edition ``today`` would get from the papers listed since the previous one; not stored.

    Returns ``(edition, reason)``: None when there is nothing new and DIGEST_EMPTY_EDITION=skip,
    and ``reason`` says in words why.
    """
    key = edition_key(frequency, today)
    previous = store.latest_edition(frequency)
    since = previous.created_at if previous else None
    papers = store.unpublished_papers(frequency, since=since)
    if not papers:
        reason = (
            f"nothing new since edition {previous.key}: no papers were listed (weekend, "
            "holiday or a source outage)"
            if previous
            else "nothing new: no papers collected yet"
        )
        if settings.empty_edition is EmptyEdition.SKIP:
            return None, reason + "; DIGEST_EMPTY_EDITION=skip, so no edition"
    else:
        reason = f"{len(papers)} new papers"
    grouped = []
    if papers:
        # scikit-learn loads in ~1 s, numpy in 0.1 s: only building an edition needs them
        # (`digest collect` imports this module too, for the pipeline)
        from digest.themes import grouping as themes
        from digest.themes.embeddings import load_embedder

        embed = load_embedder() if settings.themes_embeddings else None
        grouped = rank.order_themes(themes.group(papers, embed=embed), now or utcnow())
    return Edition(key=key, frequency=frequency, date=today, themes=tuple(grouped)), reason


def build_edition(
    store: Store,
    settings: Settings,
    frequency: Frequency,
    today: date,
    *,
    now: datetime | None = None,
) -> tuple[Edition | None, str]:
    """Return the edition for ``today``, building and storing it from new papers if needed.

    Returns ``(edition, reason)`` as ``compose_edition``; an edition already built is returned
    as it is (its papers never change once built).
    """
    key = edition_key(frequency, today)
    existing = store.get_edition(key)
    if existing is not None:
        return existing, f"edition {key} already exists"
    edition, reason = compose_edition(store, settings, frequency, today, now=now)
    if edition is None:
        return None, reason
    if edition.papers:
        reason = f"built edition {key} from {reason}"
    try:
        return store.save_edition(edition), reason
    except AlreadyExists:
        # Another process built it between our check and our insert: use theirs.
        return store.get_edition(key), f"edition {key} already exists"


@dataclass(frozen=True)
class Picked:
    """The edition a command acts on, and whether it is stored or only composed to be looked at."""

    edition: Edition
    stored: bool  # False: composed from the collected papers for a preview or a dry run
    reason: str = ""  # why this one, in words, when it was not simply found stored


def pick_edition(
    store: Store,
    settings: Settings,
    *,
    frequency: Frequency | None = None,
    key: str | None = None,
    day: date | None = None,
    build: bool = False,
) -> Picked:
    """The one rule: ``key``; else the edition of ``day`` (default today) of ``frequency``.

    ``frequency`` defaults to daily; with ``key`` it is a check (a daily subscriber is never
    shown the weekly edition). The edition of the day is the stored one; else the one built
    now from collected papers (``build``, as `digest send` does) or composed without storing
    (a preview or dry run changes nothing); else, for today, the newest stored edition of the
    frequency. DigestError, in one line, when there is none.
    """
    if key:
        return Picked(_by_key(store, key, frequency), True)
    frequency = frequency or Frequency.DAILY
    wanted = day or local_today(settings)  # DIGEST_TIMEZONE's today, as the scheduled runs
    stored = store.get_edition(edition_key(frequency, wanted))
    if stored is not None:
        return Picked(stored, True)
    if build:
        edition, reason = build_edition(store, settings, frequency, wanted)
    elif day is None:
        edition, reason = compose_edition(store, settings, frequency, wanted)
    else:  # a past day's papers are not knowable any more: only a stored edition will do
        raise DigestError(f"no {frequency} edition for {wanted.isoformat()}")
    if edition is not None:
        return Picked(edition, build, reason)
    if day is not None:
        raise DigestError(f"no {frequency} edition for {wanted.isoformat()}: {reason}")
    newest = store.latest_edition(frequency)
    if newest is None:
        raise DigestError(
            f"no {frequency} edition yet and no new papers to build one from; "
            "`digest build` collects papers and builds it"
        )
    return Picked(newest, True, f"{reason}; the newest {frequency} edition is {newest.key}")


def _by_key(store: Store, key: str, frequency: Frequency | None) -> Edition:
    edition = store.get_edition(key)
    if edition is None:
        raise DigestError(f"no edition {key!r}; `digest status` lists them")
    if frequency is not None and edition.frequency is not frequency:
        raise DigestError(
            f"{key} is a {edition.frequency} edition; a {frequency} subscriber never gets it"
        )
    return edition


def may_send(edition: Edition, settings: Settings) -> bool:
    """Whether ``edition`` may go out: always, unless approval is required and it is a draft."""
    return settings.approval is Approval.NONE or edition.status is not EditionStatus.DRAFT


def approve_edition(store: Store, key: str) -> tuple[Edition, bool]:
    """Release a built edition so it may be sent; ``(edition, True)`` when this approved it.

    An edition approved, sending or sent already is left as it is: ``(edition, False)``.
    """
    edition = store.get_edition(key)
    if edition is None:
        raise DigestError(
            f"no edition {key!r}; `digest build` builds today's, `digest status` lists them"
        )
    if not store.approve_edition(edition.id):  # type: ignore[arg-type]
        return edition, False
    return store.get_edition(key), True  # type: ignore[return-value]


def waiting_for_approval(store: Store, settings: Settings) -> list[Edition]:
    """Drafts that wait for `digest approve` (none unless DIGEST_APPROVAL=required)."""
    if settings.approval is Approval.NONE:
        return []
    return store.editions_in(EditionStatus.DRAFT)


# --- the subscribers' own hours -------------------------------------------------------------


def _sending_time(settings: Settings, group: HourGroup) -> tuple[int, int] | None:
    """A group's local (hour, minute): its own hour, else the schedule's time of day."""
    if group.send_hour is not None:
        return group.send_hour, 0
    return schedule_time(settings)


def group_slot(settings: Settings, group: HourGroup, now: datetime) -> datetime:
    """The group's latest sending time at or before ``now``.

    Subscribers who chose nothing follow DIGEST_SCHEDULE in DIGEST_TIMEZONE; a time zone
    alone keeps the schedule's time of day there; an hour alone is that hour in
    DIGEST_TIMEZONE. A schedule with no single time of day (``* * * * *``) makes it now.
    """
    at = _sending_time(settings, group)
    if at is None:
        return now
    return slot_before(now, zone_named(group.timezone, settings), *at)


@dataclass(frozen=True)
class Due:
    """An edition and the groups of subscribers for whom it is the one due now."""

    edition: Edition  # without its papers (see Store.list_editions)
    groups: tuple[HourGroup, ...]


def _released(store: Store, settings: Settings, frequency: Frequency) -> list[Edition]:
    """Editions of ``frequency`` that may go out, newest release first (papers not loaded)."""
    editions = [
        e
        for e in store.list_editions(limit=50)
        if e.frequency is frequency and may_send(e, settings)
    ]
    return sorted(editions, key=lambda e: _release(settings, e), reverse=True)


def _release(settings: Settings, edition: Edition) -> datetime:
    return release_time(settings, edition.date, edition.created_at)


def due_editions(
    store: Store,
    settings: Settings,
    frequency: Frequency,
    now: datetime,
    groups: Iterable[HourGroup] | None = None,
) -> list[Due]:
    """For each group of subscribers, the edition due at their latest sending time.

    That is the newest edition released by then (see periods.release_time); whether each
    subscriber has had it already is the ledger's business (Store.queue_groups).
    """
    editions = _released(store, settings, frequency)
    found: dict[str, tuple[Edition, list[HourGroup]]] = {}
    for group in store.hour_groups(frequency) if groups is None else groups:
        slot = group_slot(settings, group, now)
        edition = next((e for e in editions if _release(settings, e) <= slot), None)
        if edition is not None:
            found.setdefault(edition.key, (edition, []))[1].append(group)
    return [Due(edition, tuple(groups)) for edition, groups in found.values()]


def coming_hours(
    store: Store,
    settings: Settings,
    now: datetime,
    scheduled: dict[Frequency, datetime | None],
    hours: int = 24,
) -> list[tuple[datetime, dict[str, int]]]:
    """How many subscribers' sending times fall in each of the coming ``hours`` hours.

    Each entry is the hour's start in DIGEST_TIMEZONE and the count per frequency; those who
    chose no hour come at their edition's next fire time (``scheduled``); the others get
    mail at their time when an edition they have not had is released by then.
    """
    tz = zone(settings)
    counts: dict[datetime, dict[str, int]] = {}
    for frequency in Frequency:
        for group in store.hour_groups(frequency):
            at = _sending_time(settings, group)
            if group.default:
                slot = scheduled.get(frequency)
            elif at is not None:
                slot = slot_after(now, zone_named(group.timezone, settings), *at)
            else:
                slot = None
            if slot is None:
                continue
            slot = slot.astimezone(tz)
            hour = slot.replace(minute=0, second=0, microsecond=0)
            if slot <= now + timedelta(hours=hours):
                per = counts.setdefault(hour, {})
                per[str(frequency)] = per.get(str(frequency), 0) + group.count
    return sorted(counts.items())
