"""What every source is and gives: the Source protocol, its SourceResult, a Skipped record."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Protocol, runtime_checkable

from digest.models import Paper

__all__ = ["Skipped", "Source", "SourceResult"]


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
