"""Seed a reader's likes from what they already read: pasted ids or URLs, BibTeX, CSL-JSON.

A Zotero, JabRef or arXiv BibTeX export and a Zotero (CSL-JSON) export name an arXiv paper in
one of a few places: ``eprint`` with ``archivePrefix``/``eprinttype`` arXiv, the URL, the
DOI 10.48550/arXiv.X, or a note such as ``arXiv:2104.12255 [cs]``. BibTeX is read with
bibtexparser (braces nested in titles, ``@string`` macros and ``@comment`` blocks are where
hand-rolled readers go wrong; an entry it cannot read is skipped and the rest go on).

The ids found are looked up among stored papers and, when missing, in the arXiv API, in
batches, best effort and within a bounded time: an id arXiv says nothing about is left out;
one it could not be asked about is kept (it has the form of an arXiv id, and nothing a
reader gave is dropped for an outage). Looked-up papers are not stored: a paper stored now
would be listed as new in the next edition of every subscriber.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import bibtexparser
from bibtexparser.model import Entry

from digest.config import Settings
from digest.errors import DigestError
from digest.models import Paper
from digest.sources.arxiv_api import API_BATCH, ArxivApi
from digest.sources.http import PoliteClient
from digest.store import Store
from digest.subscribers.profile import ProfileError, parse_arxiv_id

__all__ = [
    "LOOKUP_SECONDS",
    "MAX_PASTE_CHARS",
    "MAX_RATINGS",
    "MAX_SEED_IDS",
    "MAX_UPLOAD_BYTES",
    "Found",
    "SeedError",
    "SeedReport",
    "ids_in_bibtex",
    "ids_in_csl_json",
    "ids_in_library",
    "ids_in_paste",
    "seed_likes",
]

MAX_UPLOAD_BYTES = 2_000_000  # a 1,500-entry Zotero library with abstracts is about 1.5 MB
MAX_PASTE_CHARS = 20_000  # about 500 URLs
MAX_SEED_IDS = 500  # ids taken from one paste or file
MAX_RATINGS = 1_000  # likes and dislikes one reader keeps
LOOKUP_SECONDS = 30.0  # the arXiv look-up gives up after this; what is left is kept unchecked
_LOOKUP_TIMEOUT = 10.0  # per request: the reader waits for the page

# An arXiv id where free text names it: "arXiv:2104.12255 [cs]", "arXiv preprint
# arXiv:1706.03762", a URL or a DOI inside a note.
_ID = r"(\d{4}\.\d{4,5}|[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?"
_IN_TEXT = re.compile(
    r"(?:arxiv\.org/(?:abs|pdf|html)/|huggingface\.co/papers/|10\.48550/arxiv\.|arxiv:\s*)" + _ID,
    re.IGNORECASE,
)
# Where each format keeps it, most specific first (BibTeX field names lower-cased).
_BIBTEX_FIELDS = ("arxivid", "doi", "url", "note", "journal", "howpublished", "number")
_CSL_FIELDS = ("DOI", "URL", "number", "note", "container-title", "archive_location", "id")


class SeedError(DigestError):
    """A paste or file that gives no ids to like; the message says why in one line."""


@dataclass
class Found:
    """The arXiv ids found in a paste or file, in order, and what was passed over."""

    ids: list[str] = field(default_factory=list)
    entries: int = 0  # entries (or words) read
    without_id: int = 0  # entries naming no arXiv paper (a journal article, a book)
    unreadable: list[str] = field(default_factory=list)  # one line per entry not read
    left_out: int = 0  # ids past MAX_SEED_IDS

    def add(self, arxiv_id: str | None) -> None:
        """Count one entry and keep its id (once)."""
        self.entries += 1
        if arxiv_id is None:
            self.without_id += 1
        elif arxiv_id not in self.ids:
            self.ids.append(arxiv_id)


def _id_in(value: object) -> str | None:
    """The arXiv id a field value names, if any."""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return None
    text = str(value).strip()
    try:
        return parse_arxiv_id(text)
    except ProfileError:
        match = _IN_TEXT.search(text)
        return parse_arxiv_id(match[1]) if match else None


def _checked(found: Found, what: str) -> Found:
    if not found.ids:
        entries = f"{found.entries} entr{'y' if found.entries == 1 else 'ies'}"
        detail = f" ({entries}, none naming an arXiv paper)" if found.entries else ""
        raise SeedError(f"no arXiv ids found in {what}{detail}")
    found.left_out = max(0, len(found.ids) - MAX_SEED_IDS)
    del found.ids[MAX_SEED_IDS:]  # a big library still seeds; the page says how many were left
    return found


def ids_in_paste(text: str) -> Found:
    """Ids from pasted ids or URLs, one per line (or separated by spaces or commas).

    A word that is neither is a SeedError naming it: the reader fixes the paste.
    """
    if len(text) > MAX_PASTE_CHARS:
        raise SeedError(f"paste at most {MAX_PASTE_CHARS:,} characters (got {len(text):,})")
    found = Found()
    for word in re.split(r"[\s,]+", text.strip()):
        if word:
            found.add(parse_arxiv_id(word))
    return _checked(found, "the pasted text")


def _bibtex_id(fields: dict[str, str]) -> str | None:
    prefix = (fields.get("archiveprefix") or fields.get("eprinttype") or "arxiv").lower()
    if fields.get("eprint") and prefix == "arxiv":
        found = _id_in(fields["eprint"])
        if found:
            return found
    for name in _BIBTEX_FIELDS:
        found = _id_in(fields.get(name))
        if found:
            return found
    return None


def ids_in_bibtex(text: str, what: str = "the file") -> Found:
    """Ids from a BibTeX (or BibLaTeX) file: one per entry that names an arXiv paper."""
    library = bibtexparser.parse_string(text)
    entries = list(library.entries)
    found = Found()
    for block in library.failed_blocks:
        if isinstance(getattr(block, "ignore_error_block", None), Entry):
            entries.append(block.ignore_error_block)  # a repeated key: still a paper
            continue
        error = getattr(block, "error", None)
        reason = getattr(error, "abort_reason", "") or str(error or "") or "cannot be read"
        found.unreadable.append(f"line {block.start_line + 1}: {reason.strip()[:120]}")
    for entry in entries:
        found.add(_bibtex_id({f.key.lower(): str(f.value).strip("{}") for f in entry.fields}))
    return _checked(found, what)


def ids_in_csl_json(text: str, what: str = "the file") -> Found:
    """Ids from a CSL-JSON list of items (Zotero's "CSL JSON" export, Better BibTeX's too)."""
    try:
        items = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise SeedError(f"{what} is not valid JSON: {str(exc)[:120]}") from None
    if isinstance(items, dict) and isinstance(items.get("items"), list):
        items = items["items"]
    if not isinstance(items, list):
        raise SeedError(f"{what} is JSON but not a CSL-JSON list of items")
    found = Found()
    for item in items:
        if not isinstance(item, dict):
            found.unreadable.append(f"#{found.entries}: not an item")
            found.entries += 1
            continue
        found.add(next(filter(None, (_id_in(item.get(name)) for name in _CSL_FIELDS)), None))
    return _checked(found, what)


def ids_in_library(data: bytes, filename: str = "") -> Found:
    """Ids from an uploaded BibTeX or CSL-JSON file; JSON when it starts with ``[`` or ``{``."""
    what = repr(filename[-80:]) if filename else "the file"
    if len(data) > MAX_UPLOAD_BYTES:
        raise SeedError(f"{what} is {len(data):,} bytes; at most {MAX_UPLOAD_BYTES:,}")
    # BibTeX from old tools may be Latin-1; ids are ASCII, so a replaced letter costs nothing.
    text = data.decode("utf-8-sig", errors="replace")
    if not text.strip():
        raise SeedError(f"{what} is empty")
    if text.lstrip()[:1] in "[{":
        return ids_in_csl_json(text, what)
    return ids_in_bibtex(text, what)


@dataclass
class SeedReport:
    """What seeding did: liked, already there, unknown to arXiv, unchecked, over the cap."""

    liked: list[str] = field(default_factory=list)
    already: int = 0
    not_found: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)
    unchecked_reason: str = ""
    over_cap: int = 0


def _on_arxiv(
    settings: Settings, ids: Sequence[str], clock: Callable[[], float]
) -> tuple[dict[str, Paper], list[str], str]:
    """(the papers arXiv knows, ids not asked about, why not) within LOOKUP_SECONDS."""
    known: dict[str, Paper] = {}
    api = ArxivApi(settings)
    deadline = clock() + LOOKUP_SECONDS
    batches = [ids[i : i + API_BATCH] for i in range(0, len(ids), API_BATCH)]
    timeout = min(settings.http_timeout, _LOOKUP_TIMEOUT)
    contact = str(settings.base_url)
    with PoliteClient(
        name="arxiv", timeout=timeout, retries=0, max_requests=len(batches), contact=contact
    ) as http:
        for done, batch in enumerate(batches):
            if done and clock() + api.interval > deadline:
                return known, [i for b in batches[done:] for i in b], "it took too long"
            if done:
                api.sleep(api.interval)  # arXiv's API terms: a pause between requests
            try:
                api.lookup(http, batch, known)
            except DigestError as exc:
                reason = getattr(exc, "reason", None) or str(exc).removeprefix("arxiv: ")
                return known, [i for b in batches[done:] for i in b], reason
    return known, [], ""


def seed_likes(
    store: Store,
    settings: Settings,
    subscriber_id: int,
    ids: Iterable[str],
    *,
    clock: Callable[[], float] = time.monotonic,
) -> SeedReport:
    """Like ``ids`` for this subscriber: the stored ones and those arXiv knows (or could not say).

    Papers already liked or disliked keep their rating; past MAX_RATINGS the rest are left.
    """
    report = SeedReport()
    subscriber = store.get_subscriber(subscriber_id)
    if subscriber is None:
        return report
    rated = set(subscriber.likes) | set(subscriber.dislikes)
    wanted = [i for i in dict.fromkeys(ids) if i not in rated]
    report.already = len(dict.fromkeys(ids)) - len(wanted)
    room = max(0, MAX_RATINGS - len(rated))
    report.over_cap = max(0, len(wanted) - room)
    wanted = wanted[:room]
    missing = [i for i in wanted if store.get_paper(i) is None]
    if missing:
        known, report.unchecked, report.unchecked_reason = _on_arxiv(settings, missing, clock)
        asked = set(missing) - set(report.unchecked)
        report.not_found = [i for i in missing if i in asked and i not in known]
        # Their text makes the like count in "for me"; kept apart, never listed as new.
        store.save_reference_papers(known.values())
    gone = set(report.not_found)
    for arxiv_id in wanted:
        if arxiv_id not in gone:
            store.set_rating(subscriber_id, arxiv_id, 1)
            report.liked.append(arxiv_id)
    return report
