"""The edition lifecycle every command shares: build, pick by one rule, approve.

An edition is built as a ``draft``; with DIGEST_APPROVAL=required an admin releases it
(``approved``) before it may go out; sending moves it to ``sending`` and ``sent``. `build`,
`preview`, `send --dry-run`, `send`, `approve` and the scheduled runs all find their edition
through ``pick_edition``, so what a preview or a dry run shows is what `send` sends, and a
subscriber is only ever shown or sent an edition of their own frequency.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from digest.config import Approval, EmptyEdition, Settings
from digest.errors import DigestError
from digest.models import Edition, EditionStatus, Frequency
from digest.periods import edition_key, local_today
from digest.store import AlreadyExists, Store, utcnow
from digest.themes import rank
from digest.themes.embeddings import load_embedder

__all__ = [
    "Picked",
    "approve_edition",
    "build_edition",
    "compose_edition",
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
        # scikit-learn loads in ~1 s: only building an edition needs it
        from digest.themes import grouping as themes

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
