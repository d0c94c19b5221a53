"""Subscribers in bulk: import a CSV or JSON file (bad rows reported, nobody re-activated), export all.

``export`` writes what ``import_subscribers`` reads back unchanged.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from digest.errors import DigestError
from digest.logs import event
from digest.models import Subscriber, SubscriberStatus
from digest.subscribers.lifecycle import (
    LIST_SEPARATORS,
    check_keywords,
    check_max_papers,
    email_hash,
    normalize_email,
    parse_frequency,
    resolve_topics,
    split_list,
)
from digest.subscribers.profile import (
    check_follows,
    parse_arxiv_id,
    parse_blend,
    parse_empty_days,
    parse_hour,
    parse_timezone,
)

if TYPE_CHECKING:
    from digest.store import Store

__all__ = ["EXPORT_FIELDS", "ImportReport", "export", "import_subscribers"]

log = logging.getLogger(__name__)

EXPORT_FIELDS = (
    "email", "status", "topics", "keywords", "frequency", "max_papers", "min_score",
    "created_at", "confirmed_at", "likes", "dislikes", "blend", "follow_authors",
    "follow_orgs", "timezone", "send_hour", "empty_days", "followups",
)  # fmt: skip
# Columns that hold lists: joined by ";" in CSV, JSON lists in JSON.
_LISTS = ("topics", "keywords", "likes", "dislikes", "follow_authors", "follow_orgs")


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


def _flag(entry: dict, key: str) -> bool:
    """A yes/no column: JSON true/false, CSV true/false (yes/no, 1/0); blank or missing: true."""
    value = entry.get(key)
    if isinstance(value, bool):
        return value
    text = _scalar(entry, key).lower()
    if text in ("", "true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off"):
        return False
    raise DigestError(f"{key} must be true or false, not {text!r:.40}")


def _profile(entry: dict) -> dict:
    """The reader's profile columns of an entry, checked as the CLI checks them.

    Liked papers need not be stored yet: an import into a fresh database keeps them, and
    they are excluded from every later edition as they would have been.
    """
    likes = tuple(dict.fromkeys(parse_arxiv_id(a) for a in _names(entry, "likes")))
    dislikes = tuple(dict.fromkeys(parse_arxiv_id(a) for a in _names(entry, "dislikes")))
    if set(likes) & set(dislikes):
        raise DigestError(f"{sorted(set(likes) & set(dislikes))[0]} is both liked and disliked")
    return {
        "likes": likes,
        "dislikes": dislikes,
        "blend": parse_blend(_scalar(entry, "blend")),
        "follow_authors": check_follows(_names(entry, "follow_authors"), "author"),
        "follow_orgs": check_follows(_names(entry, "follow_orgs"), "organisation"),
        "timezone": parse_timezone(_scalar(entry, "timezone")),
        "send_hour": parse_hour(_scalar(entry, "send_hour")),
        "empty_days": parse_empty_days(_scalar(entry, "empty_days")),
        "followups": _flag(entry, "followups"),
    }


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
        keywords=check_keywords(_names(entry, "keywords")),
        frequency=parse_frequency(_scalar(entry, "frequency")),
        # 0: the site-wide default
        max_papers=check_max_papers(int(max_papers)) if max_papers else None,
        min_score=_number(entry, "min_score", float),
        created_at=_moment(entry, "created_at"),
        confirmed_at=_moment(entry, "confirmed_at"),
        **_profile(entry),
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

    The fields are `export`'s (EXPORT_FIELDS): ``email`` (required), ``status``, ``topics``,
    ``keywords``, ``frequency``, ``max_papers``, ``min_score``, the dates, and the reader's
    profile (likes, dislikes, blend, follows, time zone, hour, empty days, follow-ups). A status
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
        "likes": list(s.likes),
        "dislikes": list(s.dislikes),
        "blend": s.blend,
        "follow_authors": list(s.follow_authors),
        "follow_orgs": list(s.follow_orgs),
        "timezone": s.timezone,
        "send_hour": s.send_hour,
        "empty_days": s.empty_days,
        "followups": s.followups,
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
        for name in _LISTS:
            flat[name] = LIST_SEPARATORS[0].join(row[name])  # type: ignore[arg-type]
        flat["followups"] = "true" if row["followups"] else "false"
        writer.writerow({k: "" if v is None else v for k, v in flat.items()})
    return out.getvalue()
