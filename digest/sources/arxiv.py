"""The `arxiv` source: the daily announcement feed, enriched through the arXiv API.

The listing feed ``{feed}/atom/cs.AI+cs.CL`` carries the latest announcement only: entries of
announce type ``new`` are kept (and ``cross`` with DIGEST_ARXIV_CROSS_LISTS), ``replace*``
dropped. The API ``{api}/api/query?id_list=...`` then adds the submission date and clean author
lists, in batches. XML is parsed with defusedxml (no external entities, no entity bombs).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from datetime import date
from xml.etree.ElementTree import Element  # type only; parsing is defusedxml

import httpx
from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from digest.config import Settings
from digest.errors import DigestError
from digest.models import Paper, normalize_arxiv_id
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

__all__ = ["API_BATCH", "ArxivSource", "parse_api_feed", "parse_listing"]

NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "arxiv": "http://arxiv.org/schemas/atom",
    "dc": "http://purl.org/dc/elements/1.1/",
}
API_BATCH = 100  # ids per API query: short URLs, few requests
API_INTERVAL = 3.0  # seconds between API calls, as arXiv's API terms ask


def _parse(body: bytes, what: str) -> Element:
    try:
        return ElementTree.fromstring(body)
    except DefusedXmlException as exc:
        raise DigestError(f"arxiv: {what} uses forbidden XML ({type(exc).__name__})") from None
    except ElementTree.ParseError as exc:
        raise DigestError(f"arxiv: {what} is not valid XML: {exc}") from None


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
    root = _parse(body, "the listing feed")
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


def parse_api_feed(body: bytes) -> dict[str, Paper]:
    """Papers of an arXiv API response by version-less id.

    Raises DigestError with arXiv's own message for its error feed (served with HTTP 400).
    """
    root = _parse(body, "the API response")
    papers: dict[str, Paper] = {}
    for entry in root.findall("atom:entry", NS):
        entry_id = _text(entry, "atom:id")
        if "/api/errors" in entry_id or _text(entry, "atom:title").strip() == "Error":
            reason = clean_title(_text(entry, "atom:summary")) or entry_id
            raise DigestError(f"arxiv: the API refused the query: {reason}")
        try:
            arxiv_id = normalize_arxiv_id(entry_id)
            published_at = parse_datetime(_text(entry, "atom:published"), "published")
        except ValueError as exc:  # BadRecord too: the listing keeps the paper, unenriched
            log.warning("source=arxiv enrichment_skipped=%r reason=%r", entry_id[-40:], str(exc))
            continue
        primary = entry.find("arxiv:primary_category", NS)
        terms = [primary.get("term", "")] if primary is not None else []
        terms += [c.get("term", "") for c in entry.findall("atom:category", NS)]
        papers[arxiv_id] = Paper(
            arxiv_id=arxiv_id,
            title=clean_title(_text(entry, "atom:title")),
            abstract=clean_abstract(_text(entry, "atom:summary")),
            authors=tuple(
                n
                for a in entry.findall("atom:author", NS)
                if (n := clean_title(_text(a, "atom:name")))
            ),
            published_at=published_at,
            categories=tuple(dict.fromkeys(t for t in terms if t)),
            sources=("arxiv",),
        )
    return papers


def _enriched(paper: Paper, extra: Paper | None) -> Paper:
    if extra is None:
        return paper
    return dataclasses.replace(
        paper,
        published_at=extra.published_at or paper.published_at,
        authors=extra.authors or paper.authors,  # the API lists authors one by one
        categories=extra.categories or paper.categories,
        abstract=paper.abstract or extra.abstract,
    )


class ArxivSource:
    """New papers of the configured arXiv categories from the latest announcement."""

    name = "arxiv"

    def __init__(
        self,
        settings: Settings,
        *,
        client: httpx.Client | PoliteClient | None = None,
        api_interval: float = API_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.client = client
        self.api_interval = api_interval
        self.clock = clock
        self.feed_url = f"{str(settings.arxiv_feed_url).rstrip('/')}/atom/" + "+".join(
            settings.arxiv_categories
        )
        self.api_url = str(settings.arxiv_api_url).rstrip("/") + "/api/query"

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
                self.enrich(http, [p.arxiv_id for p in papers], found=extra)
            except DigestError as exc:
                # The listing alone is a usable result; say what is missing rather than fail.
                notes.append(f"kept the listing without enrichment: {exc}")
                log.warning("source=arxiv partial=true reason=%r", notes[-1])
            papers = [_enriched(p, extra.get(p.arxiv_id)) for p in papers]
            return SourceResult(
                papers=papers, skipped=skipped, requests=http.requests - before, notes=notes
            )

    def enrich(
        self, http: PoliteClient, ids: Sequence[str], found: dict[str, Paper] | None = None
    ) -> dict[str, Paper]:
        """Look ``ids`` up in the arXiv API, API_BATCH at a time; raises DigestError on refusal.

        Results go into ``found`` as they arrive, so a failing later batch keeps earlier ones.
        """
        found = {} if found is None else found
        last = None
        for start in range(0, len(ids), API_BATCH):
            batch = ids[start : start + API_BATCH]
            if last is not None:
                wait = self.api_interval - (self.clock() - last)
                if wait > 0:
                    http.sleep(wait)
            last = self.clock()
            response = http.get(
                self.api_url,
                params={"id_list": ",".join(batch), "start": 0, "max_results": len(batch)},
            )
            if response.status_code not in (200, 400):
                raise DigestError(f"arxiv: GET {self.api_url} answered HTTP {response.status_code}")
            found.update(parse_api_feed(response.content))  # a 400 carries an error feed
            if response.status_code == 400:
                raise DigestError(f"arxiv: the API answered HTTP 400 for {self.api_url}")
        return found
