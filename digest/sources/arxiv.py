"""The `arxiv` source: the daily announcement feed, enriched through the arXiv API.

The listing feed ``{feed}/atom/cs.AI+cs.CL`` carries the latest announcement only: entries of
announce type ``new`` are kept (and ``cross`` with DIGEST_ARXIV_CROSS_LISTS), ``replace*``
dropped. The API (digest.sources.arxiv_api) then adds the submission date and clean author
lists, in batches.
"""

from __future__ import annotations

import logging
from datetime import date
from xml.etree.ElementTree import Element  # type only; parsing is defusedxml

import httpx

from digest.config import Settings
from digest.errors import DigestError
from digest.models import Paper, normalize_arxiv_id
from digest.sources.arxiv_api import NS, ArxivApi, parse_xml, with_details
from digest.sources.base import Skipped, SourceResult
from digest.sources.http import PoliteClient
from digest.sources.normalize import (
    BadRecord,
    clean_abstract,
    clean_title,
    dedupe,
    parse_datetime,
)

log = logging.getLogger(__name__)

__all__ = ["ArxivSource", "parse_listing"]


def _text(node: Element, path: str) -> str:
    found = node.find(path, NS)
    return (found.text or "") if found is not None else ""


def _split_creators(text: str) -> tuple[str, ...]:
    """``A, B and C`` (the feed's one dc:creator string) as separate names."""
    names = []
    for part in text.replace(" and ", ", ").split(","):
        if name := clean_title(part):
            names.append(name)
    return tuple(names)


def _abstract(summary: str) -> str:
    # The feed's summary starts "arXiv:2508.13426v1 Announce Type: new \nAbstract: ...".
    head, sep, rest = summary.partition("Abstract:")
    return clean_abstract(rest if sep and "Announce Type" in head else summary)


def parse_listing(body: bytes, *, cross_lists: bool) -> tuple[list[Paper], list[Skipped], int]:
    """Papers of a listing feed; returns (papers, skipped, entries dropped as replacements).

    Raises DigestError for the feed arXiv sends when a category does not exist.
    """
    root = parse_xml(body, "the listing feed")
    title = _text(root, "atom:title")
    if "feed error for query" in title.lower():
        raise DigestError(f"arxiv: the listing feed rejected the query: {clean_title(title)}")
    keep = {"new", "cross"} if cross_lists else {"new"}
    found: list[tuple[str, Paper]] = []
    skipped: list[Skipped] = []
    dropped = 0
    for index, entry in enumerate(root.findall("atom:entry", NS)):
        raw_id = _text(entry, "atom:id").removeprefix("oai:arXiv.org:")
        kind = _text(entry, "arxiv:announce_type").strip() or "new"
        if kind not in keep:
            dropped += 1  # replacements and (unless asked) cross-lists are not new papers
            continue
        ref = f"#{index} ({raw_id})" if raw_id else f"#{index}"
        try:
            arxiv_id = normalize_arxiv_id(raw_id)
        except ValueError:
            skipped.append(Skipped(ref, "not an arXiv id"))
            continue
        title_text = clean_title(_text(entry, "atom:title"))
        if not title_text:
            skipped.append(Skipped(ref, "title: missing"))
            continue
        try:
            listed_at = parse_datetime(_text(entry, "atom:published"), "published")
        except BadRecord as exc:
            skipped.append(Skipped(ref, str(exc)))
            continue
        paper = Paper(
            arxiv_id=arxiv_id,
            title=title_text,
            abstract=_abstract(_text(entry, "atom:summary")),
            authors=_split_creators(_text(entry, "dc:creator")),
            listed_at=listed_at,
            categories=tuple(
                dict.fromkeys(
                    c.get("term", "") for c in entry.findall("atom:category", NS) if c.get("term")
                )
            ),
            sources=("arxiv",),
        )
        found.append((ref, paper))
    papers, duplicates = dedupe(found)
    skipped.extend(Skipped(r, why) for r, why in duplicates)
    return papers, skipped, dropped


class ArxivSource:
    """New papers of the configured arXiv categories from the latest announcement."""

    name = "arxiv"

    def __init__(
        self,
        settings: Settings,
        *,
        client: httpx.Client | PoliteClient | None = None,
        api: ArxivApi | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.api = api or ArxivApi(settings)
        self.feed_url = f"{str(settings.arxiv_feed_url).rstrip('/')}/atom/" + "+".join(
            settings.arxiv_categories
        )

    def fetch(self, day: date | None = None) -> SourceResult:
        """The latest announcement's new papers, enriched from the API where it answers.

        ``day`` is not used: the listing feed only carries the newest announcement.
        """
        with PoliteClient.for_source(self.name, self.settings, self.client) as http:
            before = http.requests  # an injected client may have served earlier fetches
            response = http.get(self.feed_url)
            if response.status_code != 200:
                if b"<feed" in response.content[:2000]:
                    # An Atom error feed says more than the status code does.
                    parse_listing(response.content, cross_lists=False)
                raise DigestError(
                    f"arxiv: GET {self.feed_url} answered HTTP {response.status_code}"
                )
            papers, skipped, _dropped = parse_listing(
                response.content, cross_lists=self.settings.arxiv_cross_lists
            )
            notes: list[str] = []
            extra: dict[str, Paper] = {}
            try:
                self.api.lookup(http, [p.arxiv_id for p in papers], found=extra)
            except DigestError as exc:
                # The listing alone is a usable result; say what is missing rather than fail.
                notes.append(f"kept the listing without enrichment: {exc}")
                log.warning("source=arxiv partial=true reason=%r", notes[-1])
            papers = [with_details(p, extra.get(p.arxiv_id), api_authors=True) for p in papers]
            return SourceResult(
                papers=papers, skipped=skipped, requests=http.requests - before, notes=notes
            )
