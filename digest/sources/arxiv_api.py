"""The arXiv API, ``{api}/api/query?id_list=...``: details of papers by id, asked politely.

Both web sources use it: `arxiv` for the submission date and the clean author lists its
listing feed lacks, `hf` for the arXiv categories (and any missing abstract) Hugging Face does
not give. Ids go API_BATCH per request, DIGEST_ARXIV_API_INTERVAL seconds apart, as arXiv's
API terms ask. XML is parsed with defusedxml (no external entities, no entity bombs).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Callable, Sequence
from xml.etree.ElementTree import Element  # type only; parsing is defusedxml

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from digest.config import Settings
from digest.errors import DigestError
from digest.models import Paper, normalize_arxiv_id
from digest.sources.http import PoliteClient, RequestFailed
from digest.sources.normalize import clean_abstract, clean_title, parse_datetime

log = logging.getLogger(__name__)

__all__ = ["API_BATCH", "NS", "ArxivApi", "parse_api_feed", "parse_xml", "with_details"]

NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "arxiv": "http://arxiv.org/schemas/atom",
    "dc": "http://purl.org/dc/elements/1.1/",
}
API_BATCH = 100  # ids per API query: short URLs, few requests
_VERSION = re.compile(r"v(\d+)$")  # an entry's id ends in its latest version: .../2104.12255v3


def _version(entry_id: str) -> int | None:
    match = _VERSION.search(entry_id.strip())
    return int(match.group(1)) if match else None


def parse_xml(body: bytes, what: str) -> Element:
    """The root of an arXiv XML document; raises DigestError for unsafe or broken XML."""
    try:
        return ElementTree.fromstring(body)
    except DefusedXmlException as exc:
        raise DigestError(f"arxiv: {what} uses forbidden XML ({type(exc).__name__})") from None
    except ElementTree.ParseError as exc:
        raise DigestError(f"arxiv: {what} is not valid XML: {exc}") from None


def _text(node: Element, path: str) -> str:
    found = node.find(path, NS)
    return (found.text or "") if found is not None else ""


def _categories(entry: Element) -> tuple[str, ...]:
    primary = entry.find("arxiv:primary_category", NS)
    terms = [primary.get("term", "")] if primary is not None else []
    terms += [c.get("term", "") for c in entry.findall("atom:category", NS)]
    return tuple(dict.fromkeys(t for t in terms if t))


def parse_api_feed(body: bytes) -> dict[str, Paper]:
    """Papers of an arXiv API response by version-less id.

    Raises DigestError with arXiv's own message for its error feed (served with HTTP 400).
    """
    root = parse_xml(body, "the API response")
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
            categories=_categories(entry),
            sources=("arxiv",),
            version=_version(entry_id),
        )
    return papers


def with_details(paper: Paper, details: Paper | None, *, api_authors: bool) -> Paper:
    """``paper`` with what the API adds: categories, submission date, version, a missing abstract.

    ``api_authors``: the API's author list replaces the paper's (the arXiv listing's one
    ``dc:creator`` string splits badly); otherwise it only fills an empty list (Hugging Face
    lists authors itself and hides some on purpose).
    """
    if details is None:
        return paper
    authors = paper.authors
    if details.authors and (api_authors or not authors):
        authors = details.authors
    return dataclasses.replace(
        paper,
        published_at=details.published_at or paper.published_at,
        authors=authors,
        categories=details.categories or paper.categories,
        abstract=paper.abstract or details.abstract,
        version=details.version or paper.version,
    )


class ArxivApi:
    """Looks papers up by id, API_BATCH at a time, ``interval`` seconds between requests.

    ``clock`` and ``sleep`` are injectable so tests see the pauses without waiting them out.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = str(settings.arxiv_api_url).rstrip("/") + "/api/query"
        self.interval = settings.arxiv_api_interval if interval is None else interval
        self.clock = clock
        self.sleep = sleep

    def lookup(
        self, http: PoliteClient, ids: Sequence[str], found: dict[str, Paper] | None = None
    ) -> dict[str, Paper]:
        """The papers the API knows of ``ids``; raises DigestError when it will not answer.

        Results go into ``found`` as they arrive, so a failing later batch keeps earlier ones.
        """
        found = {} if found is None else found
        last = None
        for start in range(0, len(ids), API_BATCH):
            batch = ids[start : start + API_BATCH]
            if last is not None:
                wait = self.interval - (self.clock() - last)
                if wait > 0:
                    self.sleep(wait)
            last = self.clock()
            response = http.get(
                self.url,
                params={"id_list": ",".join(batch), "start": 0, "max_results": len(batch)},
            )
            if response.status_code not in (200, 400):
                reason = f"HTTP {response.status_code}"
                raise RequestFailed(f"arxiv: GET {self.url} answered {reason}", reason)
            found.update(parse_api_feed(response.content))  # a 400 carries an error feed
            if response.status_code == 400:
                raise DigestError(f"arxiv: the API answered HTTP 400 for {self.url}")
        return found
