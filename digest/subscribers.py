"""Subscriber logic shared by the CLI and the web app: add, import, export, remove, delete.

Addresses are validated with email-validator and lower-cased, so one person is one row.
Deleted addresses survive only as a salted hash on the suppression list; the salt is derived
from DIGEST_SECRET_KEY with HMAC, so the hashes are useless without the key.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email

from digest.errors import DigestError
from digest.logs import event
from digest.models import Frequency, Message, Subscriber, SubscriberStatus

if TYPE_CHECKING:
    from digest.config import Settings
    from digest.store import Store

__all__ = [
    "ImportReport",
    "add",
    "delete",
    "email_hash",
    "export",
    "import_subscribers",
    "known_topics",
    "normalize_email",
    "remove",
    "request_subscription",
    "resolve_topics",
    "send_confirmation",
    "split_list",
]

log = logging.getLogger(__name__)

# Topics and keywords in one CSV cell: "agents; robotics" or "agents|robotics".
LIST_SEPARATORS = (";", "|")
EXPORT_FIELDS = (
    "email", "status", "topics", "keywords", "frequency", "max_papers", "min_score",
    "created_at", "confirmed_at",
)  # fmt: skip


class _Renderer(Protocol):
    def confirmation(self, subscriber: Subscriber, nonce: int) -> Message: ...


class _Transport(Protocol):
    async def send(self, message: Message) -> None: ...


def normalize_email(raw: str) -> str:
    """A valid address in lower case; DigestError when it is not an address.

    Lower-casing the local part too is what users expect ("Jane@X" and "jane@x" are one person).
    """
    text = (raw or "").strip()
    if not text:
        raise DigestError("no email address given")
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise DigestError(f"not a valid email address: {exc}") from None
    return result.normalized.lower()


def email_hash(secret_key: str, email: str) -> str:
    """The salted hash under which an address sits on the suppression list.

    salt = HMAC(secret, "digest.suppression"); hash = HMAC-SHA256(salt, address).
    """
    salt = hmac.new(secret_key.encode(), b"digest.suppression", hashlib.sha256).digest()
    return hmac.new(salt, email.strip().lower().encode(), hashlib.sha256).hexdigest()


def split_list(text: str | None) -> list[str]:
    """``"agents; vision|robotics"`` -> ``["agents", "vision", "robotics"]``."""
    if not text:
        return []
    for sep in LIST_SEPARATORS[1:]:
        text = text.replace(sep, LIST_SEPARATORS[0])
    return [part.strip() for part in text.split(LIST_SEPARATORS[0]) if part.strip()]


def known_topics(settings: Settings) -> list[str]:
    """The topic names subscribers can choose, from the taxonomy file."""
    from digest.taxonomy import load_taxonomy

    return list(load_taxonomy(settings.taxonomy_file).topics)


def resolve_topics(requested: Iterable[str], known: Sequence[str]) -> tuple[str, ...]:
    """Map requested topics to their taxonomy spelling (case-insensitive); DigestError if unknown."""
    by_key = {name.casefold(): name for name in known}
    chosen: list[str] = []
    unknown: list[str] = []
    for name in requested:
        match = by_key.get(name.strip().casefold())
        if match is None:
            unknown.append(name)
        elif match not in chosen:
            chosen.append(match)
    if unknown:
        raise DigestError(
            f"unknown topic {', '.join(map(repr, unknown))} (known: {', '.join(known) or 'none'})"
        )
    return tuple(chosen)


def parse_frequency(text: str | None) -> Frequency:
    """``daily`` or ``weekly`` (blank: daily); DigestError otherwise."""
    value = (text or "").strip().lower() or Frequency.DAILY.value
    try:
        return Frequency(value)
    except ValueError:
        raise DigestError(f"frequency must be daily or weekly, not {text!r}") from None


# --- one address -------------------------------------------------------------------------------


def add(
    store: Store,
    secret_key: str,
    email: str,
    *,
    topics: Sequence[str] = (),
    keywords: Sequence[str] = (),
    frequency: Frequency = Frequency.DAILY,
    confirmed: bool = True,
) -> Subscriber:
    """Add one subscriber as an admin: active, or unconfirmed when double opt-in is wanted.

    Refuses suppressed (deleted) addresses and addresses already on the list.
    """
    address = normalize_email(email)
    if store.is_suppressed(email_hash(secret_key, address)):
        raise DigestError(f"{address} was deleted and is on the suppression list")
    existing = store.find_subscriber(address)
    if existing is not None:
        raise DigestError(f"{address} is already on the list ({existing.status})")
    status = SubscriberStatus.ACTIVE if confirmed else SubscriberStatus.UNCONFIRMED
    subscriber = Subscriber(
        email=address,
        status=status,
        topics=tuple(topics),
        keywords=tuple(k.strip() for k in keywords if k.strip()),
        frequency=frequency,
    )
    try:
        added = store.add_subscriber(subscriber)
    except sa.exc.IntegrityError:  # added by someone else a moment ago
        raise DigestError(f"{address} is already on the list") from None
    event(log, "subscriber.added", subscriber=added.id, status=str(status))
    return added


def request_subscription(
    store: Store,
    secret_key: str,
    email: str,
    *,
    topics: Sequence[str] = (),
    frequency: Frequency = Frequency.DAILY,
) -> Subscriber | None:
    """A visitor asks to subscribe: the subscriber to send a confirmation to, or None.

    New addresses are added unconfirmed; unconfirmed and unsubscribed ones get a fresh
    confirmation; active, paused, bounced and suppressed ones get nothing (and their settings
    are not touched, since the visitor has not proved they own the address). The web page
    answers the same in every case.
    """
    address = normalize_email(email)
    if store.is_suppressed(email_hash(secret_key, address)):
        return None
    existing = store.find_subscriber(address)
    if existing is None:
        try:
            return store.add_subscriber(
                Subscriber(
                    email=address,
                    status=SubscriberStatus.UNCONFIRMED,
                    topics=tuple(topics),
                    frequency=frequency,
                )
            )
        except sa.exc.IntegrityError:  # a double submit raced us: the first one sends
            return None
    if existing.status in (SubscriberStatus.UNCONFIRMED, SubscriberStatus.UNSUBSCRIBED):
        return store.update_preferences(existing.id, topics=topics, frequency=frequency)
    return None


async def send_confirmation(
    store: Store, subscriber: Subscriber, *, renderer: _Renderer, transport: _Transport
) -> None:
    """Email a confirmation link carrying a fresh nonce (older links stop working)."""
    nonce = store.next_confirm_nonce(subscriber.id)
    await transport.send(renderer.confirmation(subscriber, nonce))
    event(log, "subscriber.confirmation_sent", subscriber=subscriber.id)


def remove(store: Store, email: str) -> Subscriber:
    """Unsubscribe an address (kept on the list as unsubscribed); DigestError if unknown."""
    address = normalize_email(email)
    subscriber = store.find_subscriber(address)
    if subscriber is None:
        raise DigestError(f"{address} is not on the list")
    store.unsubscribe(subscriber.id)
    event(log, "subscriber.removed", subscriber=subscriber.id)
    return store.get_subscriber(subscriber.id)


def delete(store: Store, secret_key: str, email: str) -> bool:
    """Wipe an address's data and suppress it; True if it was on the list.

    An address that was not on the list is suppressed all the same, so it is never added.
    """
    address = normalize_email(email)
    digest_ = email_hash(secret_key, address)
    subscriber = store.find_subscriber(address)
    if subscriber is None:
        store.suppress(digest_, "deleted")
        return False
    store.delete_subscriber(subscriber.id, digest_)
    event(log, "subscriber.deleted", subscriber=subscriber.id)
    return True


# --- import and export -------------------------------------------------------------------------


@dataclass
class ImportReport:
    """What an import did; ``problems`` are (where, reason) of rows that were skipped.

    ``where`` is a CSV line number (``"12"``) or a JSON list position (``"#3"``, from 0).
    """

    added: list[Subscriber] = field(default_factory=list)
    existing: int = 0
    suppressed: int = 0
    duplicates: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)


def _read_entries(path: Path) -> Iterable[tuple[str, object]]:
    """(where, entry) for each subscriber of a JSON list or a CSV file (told apart by content).

    A file whose first non-blank character is ``[`` or ``{`` is JSON, anything else CSV, so
    an export keeps working whatever it was renamed to.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DigestError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise DigestError(f"cannot read {path}: {exc.strerror or exc}") from None
    start = text.lstrip()[:1]
    if not start:
        raise DigestError(f"{path}: the file is empty")
    if start in "[{":
        return _json_entries(path, text)
    return _csv_entries(path, text)


def _json_entries(path: Path, text: str) -> list[tuple[str, object]]:
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DigestError(
            f"{path}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise DigestError(f"{path}: nested too deeply to be a subscriber list") from None
    except ValueError as exc:  # a number of over 4,300 digits
        raise DigestError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(entries, list):
        raise DigestError(f"{path}: expected a JSON list of subscribers, got an object")
    return [(f"#{i}", entry) for i, entry in enumerate(entries)]


def _csv_entries(path: Path, text: str) -> Iterable[tuple[str, object]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = [(name or "").strip().lower() for name in reader.fieldnames or []]
    except csv.Error as exc:
        raise DigestError(f"{path}: not a readable CSV file ({exc})") from None
    if "email" not in header:
        raise DigestError(f"{path}: the header row has no 'email' column")
    reader.fieldnames = header
    try:
        for row in reader:
            values = {k: (v or "").strip() for k, v in row.items() if k}
            if any(values.values()):  # not a blank line
                yield str(reader.line_num), values
    except csv.Error as exc:
        raise DigestError(f"{path}: not a readable CSV file ({exc})") from None


# Readers of one field of an entry; CSV gives text, JSON also numbers, lists and null.


def _scalar(entry: dict, key: str) -> str:
    value = entry.get(key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise DigestError(f"{key}: expected text or a number")
    return str(value).strip()


def _names(entry: dict, key: str) -> list[str]:
    value = entry.get(key)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    if value is None or isinstance(value, str):
        return split_list(value)
    raise DigestError(f"{key}: expected a list of text")


def _number(entry: dict, key: str, kind: type[int] | type[float]) -> int | float | None:
    text = _scalar(entry, key)
    try:
        value = kind(text) if text else None
    except ValueError:
        raise DigestError(f"{key} must be a number, not {text!r}") from None
    if value is not None and not 0 <= value < float("inf"):
        raise DigestError(f"{key} must be a number >= 0, not {text!r}")
    return value


def _moment(entry: dict, key: str) -> datetime | None:
    text = _scalar(entry, key)
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise DigestError(f"{key}: not an ISO 8601 date: {text!r:.40}") from None


def _import_status(text: str, double_opt_in: bool) -> SubscriberStatus:
    """The status an imported row starts in: the file's, except as --double-opt-in says."""
    try:
        status = SubscriberStatus(text.lower()) if text else SubscriberStatus.ACTIVE
    except ValueError:
        raise DigestError(f"unknown status {text!r}") from None
    if double_opt_in and status is SubscriberStatus.ACTIVE:
        return SubscriberStatus.UNCONFIRMED  # to be asked: they confirm with us first
    return status


def _row_to_subscriber(entry: object, known: Sequence[str], double_opt_in: bool) -> Subscriber:
    if not isinstance(entry, dict):
        raise DigestError(f"expected an object with an email, got {type(entry).__name__}")
    entry = {str(k).strip().lower(): v for k, v in entry.items()}
    max_papers = _number(entry, "max_papers", int)
    return Subscriber(
        email=normalize_email(_scalar(entry, "email")),
        status=_import_status(_scalar(entry, "status"), double_opt_in),
        topics=resolve_topics(_names(entry, "topics"), known),
        keywords=tuple(_names(entry, "keywords")),
        frequency=parse_frequency(_scalar(entry, "frequency")),
        max_papers=int(max_papers) if max_papers else None,  # 0: the site-wide default
        min_score=_number(entry, "min_score", float),
        created_at=_moment(entry, "created_at"),
        confirmed_at=_moment(entry, "confirmed_at"),
    )


def import_subscribers(
    store: Store,
    secret_key: str,
    path: Path,
    *,
    known: Sequence[str],
    double_opt_in: bool = False,
) -> ImportReport:
    """Add every valid, new, unsuppressed subscriber of a CSV or JSON file, in one transaction.

    The fields are `export`'s: ``email`` (required), ``status``, ``topics``, ``keywords``,
    ``frequency``, ``max_papers``, ``min_score``, ``created_at``, ``confirmed_at``. A status
    is kept as given (blank: active); with ``double_opt_in`` active rows start unconfirmed.
    Addresses already on the list are left as they are and deleted ones stay out, so an
    import never re-activates anyone. Bad rows are reported with their position and skipped.
    """
    report = ImportReport()
    candidates: dict[str, Subscriber] = {}
    for where, entry in _read_entries(path):
        try:
            subscriber = _row_to_subscriber(entry, known, double_opt_in)
        except DigestError as exc:
            report.problems.append((where, str(exc)))
            continue
        if subscriber.email in candidates:
            report.duplicates += 1
            continue
        candidates[subscriber.email] = subscriber
    hashes = {email_hash(secret_key, e): e for e in candidates}
    for h in store.suppressed_among(hashes):
        del candidates[hashes[h]]
        report.suppressed += 1
    existing = store.existing_emails(candidates)
    report.existing = len(existing)
    report.added = store.add_subscribers(s for e, s in candidates.items() if e not in existing)
    event(
        log,
        "subscribers.imported",
        added=len(report.added),
        existing=report.existing,
        suppressed=report.suppressed,
        problems=len(report.problems),
    )
    return report


def _export_row(s: Subscriber) -> dict[str, object]:
    return {
        "email": s.email,
        "status": str(s.status),
        "topics": list(s.topics),
        "keywords": list(s.keywords),
        "frequency": str(s.frequency),
        "max_papers": s.max_papers,
        "min_score": s.min_score,
        "created_at": s.created_at.isoformat() if s.created_at else None,
        "confirmed_at": s.confirmed_at.isoformat() if s.confirmed_at else None,
    }


def export(subscribers: Iterable[Subscriber], fmt: str = "csv") -> str:
    """Every subscriber as CSV (lists joined by ``;``) or a JSON list; both import back as is."""
    rows = [_export_row(s) for s in subscribers]
    if fmt == "json":
        return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        flat = dict(row)
        flat["topics"] = LIST_SEPARATORS[0].join(row["topics"])  # type: ignore[arg-type]
        flat["keywords"] = LIST_SEPARATORS[0].join(row["keywords"])  # type: ignore[arg-type]
        writer.writerow({k: "" if v is None else v for k, v in flat.items()})
    return out.getvalue()
