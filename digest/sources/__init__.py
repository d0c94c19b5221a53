"""Where papers come from: one module per source and a small registry.

A source turns one listing (the HF daily list, the arXiv announcement, a file) into Papers,
reporting each record it had to skip. Only this package speaks HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from digest.errors import DigestError
from digest.models import Paper

if TYPE_CHECKING:
    import httpx

    from digest.config import Settings
    from digest.sources.http import PoliteClient

__all__ = ["SOURCE_NAMES", "Skipped", "Source", "SourceResult", "make_source"]

SOURCE_NAMES = ("hf", "arxiv", "file")


@dataclass(frozen=True, slots=True)
class Skipped:
    """A record a source could not use: which one (index, line or id) and why."""

    ref: str
    reason: str

    def __str__(self) -> str:
        return f"{self.ref}: {self.reason}"


@dataclass(slots=True)
class SourceResult:
    """What one fetch gave: the papers, the records skipped, and the HTTP requests it cost.

    ``notes`` are things the user should know that are not a skipped record (a request
    budget that ran out, an enrichment step that failed while the listing itself worked).
    """

    papers: list[Paper]
    skipped: list[Skipped] = field(default_factory=list)
    requests: int = 0
    notes: list[str] = field(default_factory=list)


@runtime_checkable
class Source(Protocol):
    """A place papers come from."""

    name: str

    def fetch(self, day: date | None) -> SourceResult:
        """The papers listed on ``day`` (None: the latest listing)."""
        ...


def make_source(
    name: str,
    settings: Settings,
    *,
    client: httpx.Client | PoliteClient | None = None,
    path: Path | str | None = None,
) -> Source:
    """Build the source called ``name`` (hf, arxiv or file) from settings.

    ``client`` lets tests and callers share an httpx client (or a configured PoliteClient);
    ``path`` is the papers file of the ``file`` source (default: DIGEST_PAPERS_FILE).
    """
    if name == "hf":
        from digest.sources.hf import HfSource

        return HfSource(settings, client=client)
    if name == "arxiv":
        from digest.sources.arxiv import ArxivSource

        return ArxivSource(settings, client=client)
    if name == "file":
        from digest.sources.jsonfile import FileSource

        chosen = path if path is not None else settings.papers_file
        if chosen is None:
            raise DigestError(
                "the file source needs a file: pass --file PATH or set DIGEST_PAPERS_FILE"
            )
        return FileSource(Path(chosen))
    raise DigestError(
        f"unknown source {name!r}: choose from {', '.join(SOURCE_NAMES)} (DIGEST_SOURCES)"
    )
