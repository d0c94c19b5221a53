"""The `hf` source: the Hugging Face Daily Papers API, ``GET {base}/api/daily_papers``.

Query: ``date=YYYY-MM-DD``, ``sort=trending``, ``limit`` (1-100) and ``p`` (0-based page).
Pages are read until one comes back short, within the request budget.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, timedelta

import httpx

from digest.config import Settings
from digest.errors import DigestError
from digest.models import Paper
from digest.sources.base import Skipped, SourceResult
from digest.sources.http import BudgetExhausted, PoliteClient
from digest.sources.jsonfile import from_hf_items, load_json

log = logging.getLogger(__name__)

__all__ = ["PAGE_SIZE", "HfSource"]

PAGE_SIZE = 100  # the API's largest page: fewest requests for a busy day


class HfSource:
    """Papers from the Hugging Face daily list of one day."""

    name = "hf"

    def __init__(self, settings: Settings, *, client: httpx.Client | PoliteClient | None = None):
        self.settings = settings
        self.client = client
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
                    self._read_day(http, listed, found, skipped)
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
        return SourceResult(papers=papers, skipped=skipped, requests=requests, notes=notes)

    def _read_day(
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


def _gist(response: httpx.Response) -> str:
    """The start of a response body on one line, for an error message."""
    text = " ".join(response.text.split())
    return (text[:120] + "...") if len(text) > 120 else text or "(empty body)"
