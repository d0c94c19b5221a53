"""The `hf` source: the Hugging Face Daily Papers API, ``GET {base}/api/daily_papers``.

Query: ``date=YYYY-MM-DD``, ``sort=trending``, ``limit`` (1-100) and ``p`` (0-based page).
Pages are read until one comes back short, within the request budget. Hugging Face gives no
arXiv categories, so the papers are then looked up in the arXiv API (best effort, with a
request budget of its own), skipping those whose details the store already holds.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta

import httpx

from digest.config import Settings
from digest.errors import DigestError
from digest.models import Paper
from digest.sources.arxiv_api import ArxivApi, with_details
from digest.sources.base import Skipped, SourceResult
from digest.sources.http import BudgetExhausted, PoliteClient, RequestFailed
from digest.sources.jsonfile import from_hf_items, load_json

log = logging.getLogger(__name__)

__all__ = ["PAGE_SIZE", "HfSource"]

PAGE_SIZE = 100  # the API's largest page: fewest requests for a busy day


class HfSource:
    """Papers from the Hugging Face daily list of one day."""

    name = "hf"

    def __init__(
        self,
        settings: Settings,
        *,
        client: httpx.Client | PoliteClient | None = None,
        api: ArxivApi | None = None,
        known: Callable[[Sequence[str]], set[str]] | None = None,
    ):
        """``known(ids)`` names the ids whose arXiv details are stored already (the cache)."""
        self.settings = settings
        self.client = client
        self.api = api or ArxivApi(settings)
        self.known = known
        self.endpoint = str(settings.hf_base_url).rstrip("/") + "/api/daily_papers"

    def fetch(self, day: date | None = None) -> SourceResult:
        """Every paper of the daily lists of ``day`` (None: today, UTC) and the lookback days.

        HF adds papers to a day's list all day long, after a morning run has read it; reading
        the previous DIGEST_HF_LOOKBACK_DAYS lists again picks those up (the store keeps
        each paper once, so the ones already seen are not new).
        """
        anchor = day or datetime.now(UTC).date()
        days = [anchor - timedelta(days=n) for n in range(self.settings.hf_lookback_days + 1)]
        found: list[Paper] = []
        skipped: list[Skipped] = []
        notes: list[str] = []
        with PoliteClient.for_source(self.name, self.settings, self.client) as http:
            before = http.requests  # an injected client may have served earlier fetches
            for listed in days:  # the asked day first: it matters most if the budget runs out
                try:
                    self.read_day(http, listed, found, skipped)
                except BudgetExhausted as exc:
                    if http.requests == before:  # nothing read at all: the source failed
                        raise
                    notes.append(f"{exc}; kept the {len(found)} papers read so far")
                    log.warning("source=hf partial=true reason=%r", notes[-1])
                    break
            requests = http.requests - before
        # A paper on two days' lists (or moving between pages while we read) is one paper.
        first: dict[str, Paper] = {}
        for paper in found:
            first.setdefault(paper.arxiv_id, paper)
        papers = list(first.values())
        if papers:
            papers = self._with_arxiv_details(papers, notes)
        return SourceResult(papers=papers, skipped=skipped, requests=requests, notes=notes)

    def _with_arxiv_details(self, papers: list[Paper], notes: list[str]) -> list[Paper]:
        """``papers`` with arXiv categories (and missing abstracts); a note says how it went.

        Best effort: whatever the API does, the papers are kept; the note says what is missing.
        """
        ids = [p.arxiv_id for p in papers if not p.categories]
        if not ids:
            return papers
        stored = self.known(ids) if self.known else set()
        asked = [i for i in ids if i not in stored]
        found: dict[str, Paper] = {}
        failure = None
        if asked:
            # The API is another host: its own client and budget, the HF client's connection pool.
            shared = (
                self.client.httpx_client if isinstance(self.client, PoliteClient) else self.client
            )
            with PoliteClient.for_source("arxiv", self.settings, shared) as http:
                try:
                    self.api.lookup(http, asked, found=found)
                except DigestError as exc:
                    failure = exc.reason if isinstance(exc, RequestFailed) else str(exc)
                    failure = failure.removeprefix("arxiv: ")
        found = {i: found[i] for i in asked if i in found}  # only what was asked counts
        notes.append(_details_note(len(found), len(stored), len(asked), failure))
        if failure:
            log.warning("source=hf arxiv_details=partial reason=%r", failure)
        return [with_details(p, found.get(p.arxiv_id), api_authors=False) for p in papers]

    def read_day(
        self, http: PoliteClient, listed: date, found: list[Paper], skipped: list[Skipped]
    ) -> None:
        """Page through one day's list, appending its papers and skipped records."""
        page = 0
        while True:
            params = {"date": listed.isoformat(), "sort": "trending", "limit": PAGE_SIZE, "p": page}
            items = self._page(http, params)
            result = from_hf_items(
                items, source=self.name, ref=lambda i, p=page: f"{listed} p{p}#{i}"
            )
            found.extend(result.papers)
            # Within one page a repeated id is a bad record; across pages it is paging drift.
            skipped.extend(result.skipped)
            if len(items) < PAGE_SIZE:
                return
            page += 1

    def _page(self, http: PoliteClient, params: dict[str, str | int]) -> list:
        response = http.get(self.endpoint, params=params)
        if response.status_code != 200:
            raise DigestError(
                f"hf: GET {self.endpoint} answered HTTP {response.status_code}: {_gist(response)}"
            )
        body = response.content
        try:
            # As httpx's response.json() decodes (UTF-8, -16 or -32), but with load_json's limits.
            items = load_json(body.decode(json.detect_encoding(body)))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise DigestError(
                f"hf: {self.endpoint} did not answer JSON: {_gist(response)}"
            ) from None
        except ValueError as exc:  # nested too deep
            raise DigestError(f"hf: {self.endpoint} answered JSON {exc}") from None
        if not isinstance(items, list):
            raise DigestError(
                f"hf: {self.endpoint} answered a JSON {type(items).__name__}, expected a list"
            )
        return items


def _details_note(enriched: int, stored: int, asked: int, failure: str | None) -> str:
    """The collect line's words on arXiv details, e.g. ``arXiv details: 48 enriched``."""
    if failure and not enriched:
        return f"arXiv details unavailable ({failure}), papers kept as they are"
    parts = [f"arXiv details: {enriched} enriched"]
    if stored:
        parts.append(f"{stored} already stored")
    if failure:
        return ", ".join(parts) + f"; the rest unavailable ({failure}), kept as they are"
    if asked - enriched:
        parts.append(f"{asked - enriched} unknown to arXiv")
    return ", ".join(parts)


def _gist(response: httpx.Response) -> str:
    """The start of a response body on one line, for an error message."""
    text = " ".join(response.text.split())
    return (text[:120] + "...") if len(text) > 120 else text or "(empty body)"
