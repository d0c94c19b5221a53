"""Subscribers in bulk: import a CSV file (bad rows reported, nothing duplicated), export all.

``export`` writes what ``import_csv`` reads back unchanged.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from digest.errors import DigestError
from digest.logs import event
from digest.models import Subscriber, SubscriberStatus
from digest.subscribers.lifecycle import (
    email_hash,
    normalize_email,
    parse_frequency,
    resolve_topics,
    split_list,
)

if TYPE_CHECKING:
    from digest.store import Store

__all__ = ["EXPORT_FIELDS", "ImportReport", "export", "import_csv"]

log = logging.getLogger(__name__)

EXPORT_FIELDS = (
    "email", "status", "topics", "keywords", "frequency", "max_papers", "created_at",
    "confirmed_at",
)  # fmt: skip
# Statuses an import keeps from a `status` column; anything else follows --double-opt-in.
# Statuses an import keeps from a `status` column; anything else follows --double-opt-in.
KEPT_STATUSES = {SubscriberStatus.PAUSED, SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED}


@dataclass
class ImportReport:
    """What an import did; ``problems`` are (line, reason) of rows that were skipped."""

    added: list[Subscriber] = field(default_factory=list)
    existing: int = 0
    suppressed: int = 0
    duplicates: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)


def _read_rows(path: Path) -> Iterable[tuple[int, dict[str, str]]]:
    """(line number, row with lower-case keys) for each data row of a CSV file."""
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise DigestError(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        reader = csv.DictReader(handle)
        try:
            header = [(name or "").strip().lower() for name in reader.fieldnames or []]
        except (UnicodeDecodeError, csv.Error) as exc:
            raise DigestError(f"{path}: not a readable CSV file ({exc})") from None
        if "email" not in header:
            raise DigestError(f"{path}: the header row has no 'email' column")
        reader.fieldnames = header
        try:
            for row in reader:
                yield reader.line_num, {k: (v or "").strip() for k, v in row.items() if k}
        except (UnicodeDecodeError, csv.Error) as exc:
            raise DigestError(f"{path}: not a readable CSV file ({exc})") from None


def _row_to_subscriber(
    row: dict[str, str], known: Sequence[str], double_opt_in: bool
) -> Subscriber:
    address = normalize_email(row.get("email", ""))
    status = SubscriberStatus.UNCONFIRMED if double_opt_in else SubscriberStatus.ACTIVE
    if row.get("status"):
        try:
            given = SubscriberStatus(row["status"].lower())
        except ValueError:
            raise DigestError(f"unknown status {row['status']!r}") from None
        if given in KEPT_STATUSES:
            status = given
    max_papers = None
    if row.get("max_papers"):
        try:
            max_papers = int(row["max_papers"])
        except ValueError:
            raise DigestError(f"max_papers must be a number, not {row['max_papers']!r}") from None
    return Subscriber(
        email=address,
        status=status,
        topics=resolve_topics(split_list(row.get("topics")), known),
        keywords=tuple(split_list(row.get("keywords"))),
        frequency=parse_frequency(row.get("frequency")),
        max_papers=max_papers if max_papers and max_papers > 0 else None,
    )


def import_csv(
    store: Store,
    secret_key: str,
    path: Path,
    *,
    known: Sequence[str],
    double_opt_in: bool = False,
) -> ImportReport:
    """Add every valid, new, unsuppressed row of a CSV file, in one transaction.

    Columns: ``email`` (required), ``topics`` (``;`` or ``|`` between names), ``frequency``;
    also ``keywords``, ``max_papers`` and ``status`` as ``export`` writes them. Bad rows are
    reported with their line number and skipped; an address is never added twice.
    """
    report = ImportReport()
    candidates: dict[str, Subscriber] = {}
    for line, row in _read_rows(path):
        if not any(row.values()):
            continue  # blank line
        try:
            subscriber = _row_to_subscriber(row, known, double_opt_in)
        except DigestError as exc:
            report.problems.append((line, str(exc)))
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
        "created_at": s.created_at.isoformat() if s.created_at else None,
        "confirmed_at": s.confirmed_at.isoformat() if s.confirmed_at else None,
    }


def export(subscribers: Iterable[Subscriber], fmt: str = "csv") -> str:
    """Every subscriber as CSV (the import format, lists joined by ``;``) or a JSON list."""
    rows = [_export_row(s) for s in subscribers]
    if fmt == "json":
        return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        flat = dict(row)
        flat["topics"] = ";".join(row["topics"])  # type: ignore[arg-type]
        flat["keywords"] = ";".join(row["keywords"])  # type: ignore[arg-type]
        writer.writerow({k: "" if v is None else v for k, v in flat.items()})
    return out.getvalue()
