"""Fresh signals for papers recent emails showed: code, project page, upvotes, arXiv version.

What collect refreshes, and how politely: only the papers of the editions sent in the last
30 days (the store names them; older ones are never followed up). Hugging Face: the daily
list of each day such a paper was listed on, once per run, skipping the days
the `hf` source itself just read (today and DIGEST_HF_LOOKBACK_DAYS before); a list is one
request for up to 100 papers. arXiv: the API's ``id_list`` (100 ids a request,
DIGEST_ARXIV_API_INTERVAL seconds apart) gives each paper's latest version. Each host keeps
its DIGEST_HTTP_MAX_REQUESTS budget. Only signals come back, and only for the papers asked
about: nothing is listed as new.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Collection, Mapping
from datetime import date

import httpx

from digest.config import Settings
from digest.errors import DigestError
from digest.models import Paper
from digest.sources.arxiv_api import ArxivApi
from digest.sources.base import Skipped, SourceResult
from digest.sources.hf import HfSource
from digest.sources.http import PoliteClient

log = logging.getLogger(__name__)

__all__ = ["RecentSignals", "signals_only"]


def signals_only(paper: Paper) -> Paper:
    """Only what a follow-up compares, so merging it changes nothing else of a stored paper."""
    return Paper(
        arxiv_id=paper.arxiv_id,
        title="",  # an empty value never overwrites a stored one (store.papers._merge)
        upvotes=paper.upvotes,
        comments=paper.comments,
        github_url=paper.github_url,
        github_stars=paper.github_stars,
        project_url=paper.project_url,
        version=paper.version,
    )


class RecentSignals:
    """Re-reads what can have changed about the papers readers may hear about again."""

    name = "refresh"

    def __init__(
        self,
        settings: Settings,
        watched: Mapping[str, date | None],
        *,
        hf: bool,
        arxiv: bool,
        read_days: Collection[date] = (),
        client: httpx.Client | None = None,
        api: ArxivApi | None = None,
    ) -> None:
        """``watched``: arXiv id -> the day a HF list showed the paper (None: not HF).

        ``hf``/``arxiv``: which hosts to ask (the configured sources'); ``read_days``: the HF
        lists this run read already.
        """
        self.settings, self.watched, self.client = settings, watched, client
        self.hf, self.arxiv, self.read_days = hf, arxiv, set(read_days)
        self.api = api or ArxivApi(settings)

    def fetch(self, day: date | None = None) -> SourceResult:
        """Fresh signals of the watched papers (``day`` is unused: their own days are known).

        Best effort: a host that fails leaves its papers as they are, and a note says so.
        """
        watched = self.watched
        found: dict[str, Paper] = {}
        result = SourceResult(papers=[])
        if self.hf:
            days = sorted({d for d in watched.values() if d} - self.read_days, reverse=True)
            self._hf_lists(days, watched, found, result)
        if self.arxiv and watched:
            self._versions(sorted(watched), found, result)
        result.papers = [signals_only(p) for p in found.values()]
        return result

    def _hf_lists(
        self, days: list[date], watched: Mapping[str, object], found: dict, result: SourceResult
    ) -> None:
        """The HF daily lists of ``days``: the watched papers' upvotes, code and project links."""
        if not days:
            return
        source = HfSource(self.settings, client=self.client)
        listed: list[Paper] = []
        skipped: list[Skipped] = []
        read = 0
        with PoliteClient.for_source("hf", self.settings, self.client) as http:
            try:
                for day in days:
                    source.read_day(http, day, listed, skipped)
                    read += 1
            except DigestError as exc:  # the budget, or HF answering badly: keep what came
                reason = str(exc).removeprefix("hf: ")
                result.notes.append(f"HF lists: {read} of {len(days)} days read ({reason})")
                log.warning("source=refresh hf=partial reason=%r", reason)
            else:
                result.notes.append(f"HF lists of {read} earlier days read")
            result.requests += http.requests
        for paper in listed:
            if paper.arxiv_id in watched and paper.arxiv_id not in found:
                found[paper.arxiv_id] = paper

    def _versions(self, ids: list[str], found: dict, result: SourceResult) -> None:
        """The arXiv API's latest version of each paper."""
        details: dict[str, Paper] = {}
        with PoliteClient.for_source("arxiv", self.settings, self.client) as http:
            try:
                self.api.lookup(http, ids, found=details)
                result.notes.append(f"arXiv versions of {len(details)} papers checked")
            except DigestError as exc:
                reason = str(exc).removeprefix("arxiv: ")
                result.notes.append(f"arXiv versions: {len(details)} checked ({reason})")
                log.warning("source=refresh arxiv=partial reason=%r", reason)
            result.requests += http.requests
        for arxiv_id, detail in details.items():
            if arxiv_id not in ids or detail.version is None:
                continue
            base = found.get(arxiv_id) or Paper(arxiv_id=arxiv_id, title="")
            found[arxiv_id] = dataclasses.replace(base, version=detail.version)
